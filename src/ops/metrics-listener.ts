/**
 * `--metrics-listen HOST:PORT`: a listener of its own for Prometheus, serving `/metrics` (without the
 * API token: the operator chose where it listens, metrics/access.ts) and `/healthz`, `/readyz`;
 * anything else is a plain 404. Plain HTTP, GET only, no body read.
 */
import type { PlainRoute } from "../http/plain-route.ts";

export interface MetricsListenerHandle {
  readonly port: number;
  readonly url: string;
  /** Whether it still listens (/readyz). */
  readonly up: () => boolean;
  stop(): Promise<void>;
}

const TEXT = { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" };

export function startMetricsListener(o: {
  host: string;
  port: number;
  routes: readonly PlainRoute[];
}): MetricsListenerHandle {
  const byPath = new Map(o.routes.map((r) => [r.path, r]));
  let listening = true;
  const server = Bun.serve({
    hostname: o.host,
    port: o.port,
    reusePort: false,
    development: false,
    idleTimeout: 10,
    fetch(request) {
      const route = byPath.get(new URL(request.url, "http://host.invalid").pathname);
      if (!route) return new Response("Not found.\n", { status: 404, headers: TEXT });
      if (request.method !== "GET" && request.method !== "HEAD")
        return new Response("Only GET.\n", { status: 405, headers: { ...TEXT, allow: "GET, HEAD" } });
      return route.handle(request);
    },
    error: () => new Response("The server could not answer.\n", { status: 500, headers: TEXT }),
  });
  const host = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    port: server.port!,
    url: `http://${host}:${server.port}`,
    up: () => listening,
    async stop() {
      listening = false;
      await server.stop(true);
    },
  };
}
