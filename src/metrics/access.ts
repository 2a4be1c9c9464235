/**
 * Who may read /metrics. The figures name isched's peers and show its traffic, so they are not for
 * anyone who can reach the console's port:
 *
 * - on the console's listener bound to a loopback address (the default), anyone who can connect:
 *   the host's own users, as for the rest of the console's port;
 * - on the console's listener bound elsewhere, only a request with the API token
 *   (`Authorization: Bearer TOKEN`, as `isched queue` sends it);
 * - on `--metrics-listen`, a listener that serves nothing else, anyone who can connect: the
 *   operator chose where it listens, for a Prometheus that has no token to send.
 */

export type MetricsListener = "console" | "metrics";

export type MetricsAccess =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 401; readonly message: string };

export function metricsAccess(o: {
  listener: MetricsListener;
  /** The console listens on a loopback address. */
  consoleLoopback: boolean;
  /** The request's Authorization header. */
  authorization: string | null;
  /** Compares a presented token with the API token (in constant time). */
  tokenMatches: (token: string) => boolean;
}): MetricsAccess {
  if (o.listener === "metrics" || o.consoleLoopback) return { allowed: true };
  const token = /^Bearer\s+(\S+)$/i.exec(o.authorization ?? "")?.[1];
  if (token !== undefined && o.tokenMatches(token)) return { allowed: true };
  return {
    allowed: false,
    status: 401,
    message:
      "/metrics on a console that is not on loopback needs the API token (Authorization: Bearer TOKEN), or serve it with --metrics-listen",
  };
}
