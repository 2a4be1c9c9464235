/**
 * The operations routes a listener serves besides its own: `/healthz` and `/readyz` (health-checks.ts,
 * without authentication on every listener, since a load balancer has no token), and `/metrics`
 * (metrics/access.ts decides who may read it on which listener). A refused /metrics is a one-line
 * plain-text 401 that says what to send.
 */
import type { PlainRoute } from "../http/plain-route.ts";
import { type MetricsListener, metricsAccess } from "../metrics/access.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics/registry.ts";
import { healthResponse, type Readiness } from "./health-checks.ts";

export function healthRoutes(readiness: Readiness): PlainRoute[] {
  return [
    { path: "/healthz", handle: () => healthResponse(readiness.live()) },
    { path: "/readyz", handle: async () => healthResponse(await readiness.ready()) },
  ];
}

export function metricsRoute(o: {
  listener: MetricsListener;
  /** The console listens on a loopback address (ignored for the metrics listener). */
  consoleLoopback: boolean;
  tokenMatches: (token: string) => boolean;
  render: () => string | Promise<string>;
}): PlainRoute {
  return {
    path: "/metrics",
    async handle(request) {
      const access = metricsAccess({
        listener: o.listener,
        consoleLoopback: o.consoleLoopback,
        authorization: request.headers.get("authorization"),
        tokenMatches: o.tokenMatches,
      });
      if (!access.allowed)
        return new Response(`${access.message}\n`, {
          status: access.status,
          headers: {
            "content-type": "text/plain; charset=utf-8",
            "www-authenticate": 'Bearer realm="isched"',
            "cache-control": "no-store",
          },
        });
      return new Response(await o.render(), {
        headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
      });
    },
  };
}
