/**
 * An HTTPS listener whose certificate can be replaced while it runs, without refusing or breaking a
 * connection: the TLS front (src/acme/tls-front.ts) holds the public port, and each certificate gets
 * its own Bun.serve backend on a loopback port.
 *
 * `setCertificate()` starts a backend with the new certificate, sends new connections to it, and
 * retires the old one: its answers from then on carry `Connection: close` (RFC 9112 §9.6), so a
 * client's kept-alive connection ends cleanly after its next response instead of being cut between
 * two requests; the old backend stops once the front counts no connection to it (a connection left
 * idle ends by the idle timeout, as it would anyway).
 *
 * The request handler gets Bun's server of the backend; the client's real address comes from
 * `clientAddress(request, server)`, because the backend sees the front's loopback connections.
 */
import type { Server } from "bun";
import type { AlpnResponder } from "./tls-alpn.ts";
import { type ClientAddress, startTlsFront } from "./tls-front.ts";

export interface TlsPair {
  cert: string;
  key: string;
}

export type RequestHandler = (request: Request, server: Server<undefined>) => Response | Promise<Response>;

export interface HotTlsListenerOptions {
  host: string;
  port: number;
  tls: TlsPair;
  fetch: RequestHandler;
  /** TLS-ALPN-01 challenges answered on the same port. */
  alpn?: AlpnResponder;
  maxRequestBodySize?: number;
  /** Seconds a kept-alive connection may sit idle (Bun.serve's idleTimeout). Default 10. */
  idleTimeoutS?: number;
  /** Bun.serve's static routes (an HTML bundle), served before `fetch`. */
  routes?: Record<string, Bun.HTMLBundle>;
}

export interface HotTlsListener {
  readonly port: number;
  /** Serves `tls` to new connections; resolves when the previous backend has stopped. */
  setCertificate(tls: TlsPair): Promise<void>;
  /** The client's address and port, as Bun.serve's requestIP() would give without the front; null when the front has no record of the connection. */
  clientAddress(request: Request, server: Server<undefined>): ClientAddress | null;
  stop(): Promise<void>;
}

interface Backend {
  server: Server<undefined>;
  retiring: boolean;
}

export function startHotTlsListener(o: HotTlsListenerOptions): HotTlsListener {
  const start = (tls: TlsPair): Backend => {
    const backend: Backend = { server: undefined as unknown as Server<undefined>, retiring: false };
    backend.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: tls.cert, key: tls.key },
      maxRequestBodySize: o.maxRequestBodySize,
      idleTimeout: o.idleTimeoutS ?? 10,
      development: false,
      ...(o.routes && { routes: o.routes }),
      async fetch(request, server) {
        const response = await o.fetch(request, server);
        return backend.retiring ? closing(response) : response;
      },
    });
    return backend;
  };
  let current = start(o.tls);
  const front = startTlsFront({
    host: o.host,
    port: o.port,
    backendPort: current.server.port!,
    alpnPortFor: o.alpn ? (name) => (o.alpn!.has(name) ? o.alpn!.port : undefined) : undefined,
  });
  const retiring = new Set<Promise<void>>();

  return {
    port: front.port,
    async setCertificate(tls) {
      const next = start(tls);
      const old = current;
      current = next;
      old.retiring = true;
      const done = front.switchBackend(next.server.port!).then(() => old.server.stop());
      retiring.add(done);
      await done;
      retiring.delete(done);
    },
    clientAddress(request, server) {
      const seen = server.requestIP(request);
      if (seen === null) return null;
      // Without the front's record the address seen is the front's own loopback connection: saying
      // "unknown" (null) keeps a `--trust D=unsigned:127.0.0.1` rule from matching a stranger.
      return front.clientAddress(seen.port) ?? null;
    },
    async stop() {
      front.stop();
      await current.server.stop(true);
      await Promise.all(retiring);
    },
  };
}

/** The response with `Connection: close`, copied when its headers cannot be changed. */
function closing(response: Response): Response {
  try {
    response.headers.set("Connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("Connection", "close");
    return copy;
  }
}
