/**
 * The plain-HTTP listener isched runs on port 80 when it gets its certificates by HTTP-01: it answers
 * the CA's challenge requests (RFC 8555 §8.3) and sends everything else to HTTPS, because iSchedule
 * runs only over HTTPS (draft §10) and nothing isched serves is meant to be read in clear.
 *
 * - `GET /.well-known/acme-challenge/TOKEN`: from the challenge store, whatever the Host (the CA asks
 *   for the name it validates, which is one of ours, but there is nothing to gain from checking).
 * - A request for one of our names: 308 Permanent Redirect to the same path on https (308 keeps the
 *   method and body, so a misconfigured peer's POST is not turned into a GET).
 * - Any other Host (an IP address, a stranger's name): 404, so the listener is not an open redirect.
 */
import type { HttpChallenges } from "./http-challenges.ts";

export interface AcmeHttpListenerOptions {
  host: string;
  /** 80 in production; tests use a free port. */
  port: number;
  challenges: HttpChallenges;
  /** The names the endpoint answers to (lower-case): only these are redirected. */
  names: readonly string[];
  /** The HTTPS port to redirect to (or where to read it once known); 443 is left out of the URL. */
  httpsPort: number | (() => number);
}

export interface AcmeHttpListener {
  readonly port: number;
  stop(): Promise<void>;
}

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

export function startAcmeHttpListener(o: AcmeHttpListenerOptions): AcmeHttpListener {
  const names = new Set(o.names.map((n) => n.toLowerCase().replace(/\.$/, "")));
  const portPart = () => {
    const port = typeof o.httpsPort === "number" ? o.httpsPort : o.httpsPort();
    return port === 443 ? "" : `:${port}`;
  };
  const server = Bun.serve({
    hostname: o.host,
    port: o.port,
    // Nothing here reads a body: a small cap and a short idle time keep strangers cheap.
    maxRequestBodySize: 16 * 1024,
    idleTimeout: 10,
    fetch(request) {
      const challenge = o.challenges.respond(request);
      if (challenge) return challenge;
      const name = hostName(request.headers.get("host"));
      if (name === undefined || !names.has(name)) {
        return new Response("Not found. This server answers only over HTTPS.\n", {
          status: 404,
          headers: TEXT,
        });
      }
      const url = new URL(request.url, "http://host.invalid");
      const location = `https://${name}${portPart()}${url.pathname}${url.search}`;
      return new Response(`Moved to ${location}\n`, {
        status: 308,
        headers: { ...TEXT, Location: location },
      });
    },
  });
  return {
    port: server.port!,
    async stop() {
      await server.stop(true);
    },
  };
}

/** The host name of a Host header (RFC 9110 §7.2), lower-case and without port; undefined if odd. */
function hostName(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /^([A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(header.trim());
  return m ? m[1]!.toLowerCase().replace(/\.$/, "") : undefined;
}
