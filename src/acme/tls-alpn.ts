/**
 * TLS-ALPN-01 (RFC 8737): while the CA validates a name, a TLS client that offers ALPN `acme-tls/1`
 * with that name in SNI must get a self-signed certificate for the name carrying the
 * acmeIdentifier extension (the SHA-256 of the key authorization, §3), negotiate `acme-tls/1`, and
 * then nothing more: the CA closes the connection after the handshake.
 *
 * The responder is a small node:tls server on a loopback port that presents, by SNI, the challenge
 * certificate of each name under validation; the TLS front (src/acme/tls-front.ts) sends it the
 * connections that ask for `acme-tls/1`, so the endpoint's port answers the CA without the endpoint's
 * own TLS stack knowing about it (Bun.serve cannot choose a certificate by ALPN).
 */
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import * as acme from "acme-client";
import type { ChallengeSolver } from "./client.ts";

export const ACME_TLS_ALPN = "acme-tls/1";

export interface AlpnResponder {
  /** The loopback port the TLS front sends `acme-tls/1` connections to. */
  readonly port: number;
  /** True while a challenge for `name` is waiting for the CA. */
  has(name: string): boolean;
  add(name: string, certificate: { certPem: string; keyPem: string }): void;
  remove(name: string): void;
  stop(): Promise<void>;
}

export async function startAlpnResponder(): Promise<AlpnResponder> {
  const contexts = new Map<string, tls.SecureContext>();
  const server = tls.createServer(
    {
      ALPNProtocols: [ACME_TLS_ALPN],
      SNICallback: (name, done) => {
        const context = contexts.get(name.toLowerCase());
        if (context) done(null, context);
        else done(new Error(`no TLS-ALPN-01 challenge for ${name}`));
      },
    },
    // §3: no application data on this connection.
    (socket) => socket.end(),
  );
  server.on("tlsClientError", () => undefined); // a client without SNI or for another name
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    has: (name) => contexts.has(name.toLowerCase()),
    add(name, c) {
      contexts.set(name.toLowerCase(), tls.createSecureContext({ cert: c.certPem, key: c.keyPem }));
    },
    remove(name) {
      contexts.delete(name.toLowerCase());
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The TLS-ALPN-01 solver: a challenge certificate per name, presented by the responder. */
export function tlsAlpnSolver(responder: AlpnResponder): ChallengeSolver {
  return {
    type: "tls-alpn-01",
    async present(c) {
      // An RSA key: the package marks the certificate keyCertSign/cRLSign only, and BoringSSL (Bun's
      // TLS) refuses an EC certificate without digitalSignature as a server certificate.
      const authz = { identifier: { type: "dns", value: c.name } } as acme.Authorization;
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, c.keyAuthorization);
      responder.add(c.name, { certPem: cert.toString(), keyPem: key.toString() });
    },
    cleanUp: (c) => responder.remove(c.name),
  };
}
