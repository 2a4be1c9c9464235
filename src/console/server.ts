/**
 * The console listener (`--console HOST:PORT`): the admin page at `/` (web/index.html with its
 * scripts and styles, bundled by Bun's HTML import, so `bun build --compile` puts them inside the
 * executable) and the JSON API under /api/v1 (mount.ts), both on one Elysia app. On a loopback
 * address it speaks plain HTTP and answers only to loopback names; elsewhere it uses the endpoint's
 * TLS certificate, and then the session cookie is Secure.
 */
import page from "../../web/index.html";
import type { PlainRoute } from "../http/plain-route.ts";
import { serveApp } from "../http/serve-app.ts";
import { type Api, type ApiOptions, createApi } from "./api.ts";
import { isLoopbackHost } from "./guard.ts";

export interface ConsoleListener {
  readonly url: string;
  readonly port: number;
  readonly api: Api;
  /** With TLS: a new certificate for new connections, without dropping any (src/http/serve-app.ts). */
  readonly setCertificate?: (tls: { cert: string; key: string }) => Promise<void>;
  stop(): Promise<void>;
}

export type StartConsoleOptions = Omit<ApiOptions, "secure" | "loopbackOnly" | "listeners"> & {
  /** Listeners to show on the Overview besides the console itself. */
  listeners?: () => readonly { name: string; url: string }[];
  /** GET routes outside the API (`/healthz`, `/readyz`, `/metrics`), each deciding who may read it. */
  plainRoutes?: readonly PlainRoute[];
};

const hostForUrl = (host: string): string => (host.includes(":") ? `[${host}]` : host);

/** Bun.serve's default, kept from before the console ran on Elysia (whose default is 30 s). */
const IDLE_TIMEOUT_S = 10;

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
  for (const r of o.plainRoutes ?? []) api.app.get(r.path, (c) => r.handle(c.request as Request));
  // Behind the TLS front the page is one of Bun's static routes (app.handle() does not serve it).
  const app = tls ? api.app : api.app.get("/", page);
  const served = serveApp(app, { host, port, tls, idleTimeoutS: IDLE_TIMEOUT_S, routes: { "/": page } });
  url = `${scheme}://${hostForUrl(host)}:${served.port}`;
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
    port: served.port,
    api,
    setCertificate: served.setCertificate,
    async stop() {
      api.stop();
      await served.stop(true);
    },
  };
}
