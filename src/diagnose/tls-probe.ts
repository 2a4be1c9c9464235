/**
 * What a peer's TLS client sees at host:port: connects to an address isched resolved itself, with the
 * host name as SNI (as peerFetch does), and reports the certificate instead of only refusing it: is
 * the chain trusted (the default store plus --ca-file), does it name the host (RFC 6125 through
 * node's checkServerIdentity), and when does it expire.
 */
import tls from "node:tls";

export interface TlsFacts {
  /** The chain leads to a trusted root. */
  readonly trusted: boolean;
  /** Why it does not, in OpenSSL's words (`unable to verify the first certificate`). */
  readonly trustError?: string;
  /** Why the certificate does not name the host; undefined when it does. */
  readonly nameError?: string;
  readonly protocol: string;
  readonly subject: string;
  readonly names: readonly string[];
  readonly issuer: string;
  readonly validFromMs: number;
  readonly validToMs: number;
}

export interface TlsProbeOptions {
  host: string;
  port: number;
  /** The address to connect to (resolved and checked by the caller). */
  address: string;
  /** PEM CA certificates trusted besides the default store. */
  ca?: string;
  timeoutMs?: number;
}

const isIp = (host: string) => host.includes(":") || /^[\d.]+$/.test(host);

export function probeTls(o: TlsProbeOptions): Promise<TlsFacts> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: o.address,
      port: o.port,
      // RFC 6066 §3: no SNI for an address.
      servername: isIp(o.host) ? undefined : o.host,
      // Verified below, so that a bad certificate is described rather than only refused.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      ca: o.ca === undefined ? undefined : [...tls.getCACertificates("default"), o.ca],
      ALPNProtocols: ["http/1.1"],
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS handshake within ${o.timeoutMs ?? 10_000} ms`));
    }, o.timeoutMs ?? 10_000);
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate(false);
      const nameError = tls.checkServerIdentity(o.host, cert);
      const authorizationError = socket.authorizationError as Error | string | null | undefined;
      resolve({
        trusted: socket.authorized,
        trustError: socket.authorized
          ? undefined
          : String(
              typeof authorizationError === "object" && authorizationError !== null
                ? authorizationError.message
                : (authorizationError ?? "not trusted"),
            ),
        nameError: nameError?.message,
        protocol: socket.getProtocol() ?? "?",
        subject: cert.subject?.CN ? `CN=${cert.subject.CN}` : JSON.stringify(cert.subject ?? {}),
        names: (cert.subjectaltname ?? "")
          .split(",")
          .map((n) => n.trim().replace(/^(DNS|IP Address):/, ""))
          .filter((n) => n !== ""),
        issuer: cert.issuer?.CN ? `CN=${cert.issuer.CN}` : JSON.stringify(cert.issuer ?? {}),
        validFromMs: Date.parse(cert.valid_from),
        validToMs: Date.parse(cert.valid_to),
      });
      socket.end();
    });
  });
}
