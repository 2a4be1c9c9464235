/**
 * Certificates from an ACME CA for `isched serve` (--acme-email; the parts are src/acme, the design
 * docs/acme.md). At start: the saved certificate in DATA/acme when it is usable, else one order now,
 * with the challenge listener up (HTTP-01 on --acme-http-listen, or TLS-ALPN-01 on the endpoint's
 * port through a temporary TLS front). Once the listeners run: each renewal is swapped into them
 * without dropping a connection, failures are retried with backoff and shown as problems (the
 * console's Overview, the start-up summary), and a certificate within 7 days of its end is logged
 * hourly (src/acme/manager.ts).
 *
 * When no certificate can be had at start, the caller decides: a loopback-only endpoint runs in
 * plain HTTP with a warning while the manager keeps trying; any other refuses to start.
 */
import { join } from "node:path";
import { createAcmeClient } from "../acme/client.ts";
import { createHttpChallenges } from "../acme/http-challenges.ts";
import { startAcmeHttpListener } from "../acme/http-listener.ts";
import { httpSolver } from "../acme/http-solver.ts";
import { type CertificateStatus, createCertificateManager } from "../acme/manager.ts";
import { nearExpiry } from "../acme/schedule.ts";
import { openAcmeStore } from "../acme/store.ts";
import { type AlpnResponder, startAlpnResponder, tlsAlpnSolver } from "../acme/tls-alpn.ts";
import { startTlsFront } from "../acme/tls-front.ts";
import { listenError } from "../config/ports.ts";
import type { AcmeSettings } from "../config/serve-config.ts";
import type { Health } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";

type TlsPair = { cert: string; key: string };

export interface ServerAcme {
  /** The certificate to serve from the start, when there is one. */
  readonly tls?: TlsPair & { readonly certFile: string };
  /** The TLS-ALPN-01 responder the endpoint's front passes `acme-tls/1` connections to. */
  readonly alpn?: AlpnResponder;
  status(): CertificateStatus;
  /** Swaps each new certificate in through `install` (undefined: the endpoint is plain HTTP); starts renewals. */
  start(install: ((tls: TlsPair) => void) | undefined): void;
  stop(): Promise<void>;
}

/** Problem ids (log/health.ts); /readyz reports `acme:...` problems as warnings (ops/health-checks.ts). */
const ORDER_PROBLEM = "acme:order";
const EXPIRY_PROBLEM = "acme:expiry";

export async function startAcme(o: {
  settings: AcmeSettings;
  dataDir: string;
  /** The endpoint's address: TLS-ALPN-01 at start is answered there. */
  listen: { host: string; port: number };
  /** The endpoint's port once it listens (for redirects to https). */
  httpsPort: () => number;
  health: Health;
  log: Logger;
  nowMs: () => number;
}): Promise<ServerAcme> {
  const { settings, log } = o;
  const store = openAcmeStore(o.dataDir);
  const client = createAcmeClient({
    directoryUrl: settings.directoryUrl,
    accountKeyPem: store.accountKey(),
    email: settings.email,
    caPem: settings.caPem,
  });
  const challenges = createHttpChallenges();
  const http =
    settings.httpListen &&
    (() => {
      const at = settings.httpListen;
      try {
        return startAcmeHttpListener({
          ...at,
          challenges,
          names: settings.names,
          httpsPort: o.httpsPort,
        });
      } catch (e) {
        throw listenError({ flag: "--acme-http-listen", ...at }, e);
      }
    })();
  const alpn = settings.challenge === "tls-alpn-01" ? await startAlpnResponder() : undefined;
  let install: ((tls: TlsPair) => void) | undefined;
  let listening = false;
  const manager = createCertificateManager({
    store,
    client,
    names: settings.names,
    solver: alpn ? tlsAlpnSolver(alpn) : httpSolver(challenges),
    log,
    nowMs: o.nowMs,
    onCertificate(c) {
      if (!listening) return;
      if (install) install({ cert: c.chainPem, key: c.keyPem });
      else
        log.log("warn", "obtained a certificate; restart isched to serve the endpoint over HTTPS", {
          names: c.names.join(","),
        });
    },
    onStatus(s) {
      if (s.state === "failing" && s.lastError)
        o.health.report(
          ORDER_PROBLEM,
          `Cannot get a certificate from ${settings.directoryUrl}: ${s.lastError.message} (${s.failures} failed attempts; next ${new Date(s.nextAttemptMs ?? 0).toISOString()})`,
        );
      else if (s.state === "valid")
        o.health.resolve(ORDER_PROBLEM, "a certificate was obtained from the ACME CA");
      const end = s.certificate?.notAfterMs;
      if (end !== undefined && nearExpiry(end, o.nowMs()))
        o.health.report(EXPIRY_PROBLEM, `The certificate expires at ${new Date(end).toISOString()}`);
      else o.health.resolve(EXPIRY_PROBLEM, "the certificate is no longer near its end");
    },
  });

  if (!manager.current) {
    // The first certificate, before the endpoint listens: TLS-ALPN-01 needs its port meanwhile.
    const front =
      alpn &&
      (() => {
        try {
          return startTlsFront({
            ...o.listen,
            backendPort: alpn.port,
            alpnPortFor: (name) => (alpn.has(name) ? alpn.port : undefined),
          });
        } catch (e) {
          throw listenError({ flag: "--listen", ...o.listen }, e);
        }
      })();
    try {
      await manager.check();
    } finally {
      front?.stop();
    }
  }
  const current = manager.current;
  return {
    tls: current && {
      cert: current.chainPem,
      key: current.keyPem,
      certFile: join(store.dir, "certificate.pem"),
    },
    alpn,
    status: () => manager.status(),
    start(i) {
      install = i;
      listening = true;
      manager.start();
    },
    async stop() {
      manager.stop();
      await http?.stop();
      await alpn?.stop();
    },
  };
}
