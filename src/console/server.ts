/**
 * The console listener (`--console HOST:PORT`): the admin page at `/` (web/index.html with its
 * scripts and styles, bundled by Bun's HTML import, so `bun build --compile` puts them inside the
 * executable) and the JSON API under /api/v1. On a loopback address it speaks plain HTTP and answers
 * only to loopback names; elsewhere it uses the endpoint's TLS certificate, and then the session
 * cookie is Secure.
 */
import page from "../../web/index.html";
import { idleSecondsWhileReading, UNCAPPED_AT_LISTENER } from "../http/read-body.ts";
import { clientAddress } from "../net/client-address.ts";
import { type Api, type ApiOptions, createApi } from "./api.ts";
import { isLoopbackHost } from "./guard.ts";
import { API_HEADERS, API_PREFIX, BODY_TIMEOUT_MS, requestUrl } from "./http.ts";

export interface ConsoleListener {
  readonly url: string;
  readonly port: number;
  readonly api: Api;
  stop(): Promise<void>;
}

export type StartConsoleOptions = Omit<ApiOptions, "secure" | "loopbackOnly" | "listeners"> & {
  /** Listeners to show on the Overview besides the console itself. */
  listeners?: () => readonly { name: string; url: string }[];
};

const hostForUrl = (host: string): string => (host.includes(":") ? `[${host}]` : host);

export function startConsole(o: StartConsoleOptions): ConsoleListener {
  const { host, port } = o.config.console;
  const loopback = isLoopbackHost(host);
  const tls = !loopback && o.config.tls ? { cert: o.config.tls.cert, key: o.config.tls.key } : undefined;
  const scheme = tls ? "https" : "http";
  let url = "";
  const api = createApi({
    ...o,
    secure: tls !== undefined,
    loopbackOnly: loopback,
    listeners: () => [...(o.listeners?.() ?? []), { name: "Console and API", url }],
  });
  const notFound = () =>
    new Response("Not found.\n", {
      status: 404,
      headers: { ...API_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
    });
  const server = Bun.serve({
    hostname: host,
    port,
    tls,
    // Never share the port with another process (src/config/ports.ts).
    reusePort: false,
    // Each route reads its body through the capped reader and answers 413 in JSON (http.ts).
    maxRequestBodySize: UNCAPPED_AT_LISTENER,
    development: false,
    routes: { "/": page },
    async fetch(request, srv) {
      // request.url is a bare path when the Host header is empty or not a host (Bun): no 500 for that.
      const path = requestUrl(request).pathname;
      if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) return notFound();
      // The routes time their bodies themselves and answer 408: Bun must not cut them off first.
      srv.timeout(request, idleSecondsWhileReading(BODY_TIMEOUT_MS));
      return api.handle(request, {
        address: clientAddress({
          peer: srv.requestIP(request)?.address ?? "",
          headers: request.headers,
          trustedProxies: o.config.trustedProxies ?? [],
        }),
        keepOpen: () => srv.timeout(request, 0),
      });
    },
  });
  url = `${scheme}://${hostForUrl(host)}:${server.port}`;
  if (!loopback && !tls) {
    o.log.log(
      "warn",
      "the console listens on a non-loopback address without TLS: passwords cross the network in clear",
      {
        address: host,
      },
    );
  }
  api.start();
  return {
    url,
    port: server.port!,
    api,
    async stop() {
      api.stop();
      await server.stop(true);
    },
  };
}
