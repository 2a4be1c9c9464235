/**
 * Serves an Elysia app (the endpoint's or the console's) on its address: plain HTTP through
 * Elysia's own `listen`, HTTPS behind the TLS front (src/acme/hot-tls-listener.ts), so that the
 * certificate can be replaced while the server runs (a SIGHUP after a renewal by hand, or ACME)
 * without refusing or breaking a connection: Bun.serve's `reload()` keeps its first certificate,
 * and a second listener on the port resets the connections waiting in the first one's accept queue
 * (docs/acme.md).
 *
 * Behind the front each certificate has its own Bun.serve backend on a loopback port, and the app
 * runs through `app.handle()`. The routes' handlers keep asking `app.server` for a request's client
 * address and idle timeout, as under `listen`: `app.server` is a view that answers from the backend
 * that took the request, with the real client's address (the backend sees the front's loopback
 * connection), so address-based trust and throttles keep working.
 */
import type { Server } from "bun";
import type { AnyElysia } from "elysia";
import { startHotTlsListener, type TlsPair } from "../acme/hot-tls-listener.ts";
import type { AlpnResponder } from "../acme/tls-alpn.ts";
import { type ListenAt, listenOptions } from "./listen-options.ts";

export interface ServeAppOptions extends ListenAt {
  /** Bun's static routes (the console's HTML bundle), which `app.handle()` does not serve. */
  readonly routes?: Record<string, Bun.HTMLBundle>;
  /** TLS-ALPN-01 challenges (RFC 8737) answered on the same port. */
  readonly alpn?: AlpnResponder;
}

export interface ServedApp {
  readonly port: number;
  /** HTTPS only: serves `tls` to new connections; resolves when the previous certificate's backend has stopped. */
  readonly setCertificate?: (tls: TlsPair) => Promise<void>;
  /** Stops listening; `closeActive` also ends connections in progress. */
  stop(closeActive?: boolean): Promise<void>;
}

/** What the routes ask of `app.server`. */
type ServerView = Pick<Server<undefined>, "requestIP" | "timeout" | "port">;

export function serveApp(app: AnyElysia, o: ServeAppOptions): ServedApp {
  if (!o.tls) {
    app.listen(listenOptions(o));
    return {
      port: app.server!.port!,
      async stop(closeActive) {
        await app.stop(closeActive);
      },
    };
  }
  const backendOf = new WeakMap<Request, Server<undefined>>();
  const options = listenOptions(o);
  const listener = startHotTlsListener({
    host: o.host,
    port: o.port,
    tls: o.tls,
    alpn: o.alpn,
    routes: o.routes,
    maxRequestBodySize: options.maxRequestBodySize,
    idleTimeoutS: o.idleTimeoutS,
    fetch(request, server) {
      backendOf.set(request, server);
      return app.handle(request);
    },
  });
  const view: ServerView = {
    port: listener.port,
    requestIP(request) {
      const backend = backendOf.get(request);
      const client = backend && listener.clientAddress(request, backend);
      return client ? { ...client, family: client.address.includes(":") ? "IPv6" : "IPv4" } : null;
    },
    timeout(request, seconds) {
      backendOf.get(request)?.timeout(request, seconds);
    },
  };
  app.server = view as Server<undefined>;
  return {
    port: listener.port,
    setCertificate: (tls) => listener.setCertificate(tls),
    stop: () => listener.stop(),
  };
}
