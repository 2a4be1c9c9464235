/**
 * The JSON API under /api/v1 on the console listener: what the admin page, `isched send`,
 * `isched queue` and other programs use. Every route is in one table (GET /api/v1/routes lists it);
 * every request passes guard.ts first (same origin, then the API token or a session, then the CSRF
 * token for changes), so an unauthenticated call gets 401 and a cross-site one 403 whatever route it
 * names. Reading never changes anything.
 */
import type { Database } from "bun:sqlite";
import type { ServeConfig } from "../config/serve-config.ts";
import type { DnsResolver } from "../dns/client.ts";
import type { KeyPublication } from "../keys/key-publication.ts";
import type { OwnKeys } from "../keys/own-keys.ts";
import type { Problem } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { type AttemptThrottle, createAttemptThrottle } from "../net/attempt-throttle.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import { deliveryStateCounts } from "../store/console-stats.ts";
import { storageFailure } from "../store/errors.ts";
import { type CookieOptions, SessionStore } from "./auth.ts";
import { guard } from "./guard.ts";
import { API_PREFIX, apiError, createRouter, json, RequestError, type Route, requestUrl } from "./http.ts";
import { KeysService } from "./keys-service.ts";
import { cachedCounts, LiveFeed } from "./live.ts";
import { PeerFacts } from "./peer-facts.ts";
import { keyRoutes } from "./routes-keys.ts";
import { messageRoutes } from "./routes-messages.ts";
import { type ListenerInfo, overviewRoutes } from "./routes-overview.ts";
import { peerRoutes } from "./routes-peers.ts";
import { sessionRoutes } from "./routes-session.ts";
import { toolRoutes } from "./routes-tools.ts";

export interface ApiOptions {
  db: Database;
  queue: DeliveryQueue;
  token: string;
  log: Logger;
  config: ServeConfig;
  dns: DnsResolver;
  ownKeys: OwnKeys;
  /** The port the iSchedule endpoint listens on. */
  endpointPort: number;
  /** Hosted domain -> the label of its local delivery target. */
  localTargets: readonly (readonly [string, string])[];
  imipLabel?: string;
  activeAttempts?: () => number;
  /** Wakes the dispatcher after an operator action made deliveries due. */
  poke?: () => void;
  staticRoutes?: readonly PeerRoute[];
  /** Under TLS: Secure, __Host- cookies. */
  secure: boolean;
  /** Bound to loopback: only loopback Host names are served (DNS rebinding). */
  loopbackOnly: boolean;
  listeners: () => readonly ListenerInfo[];
  nowMs?: () => number;
  liveIntervalMs?: number;
  /** What the operator must know about now, shown on the Overview (src/log/health.ts). */
  problems?: () => readonly Problem[];
  /** Routes other modules add (e.g. the submission API), under the same guard. */
  extraRoutes?: readonly Route[];
  /** Whether peers can find our signing keys yet (src/keys/key-publication.ts). */
  keyPublication?: KeyPublication;
  /** What traffic and tests learn about peers (shared with the server's outbound and inbound). */
  peerFacts?: PeerFacts;
}

export interface Api {
  readonly routes: readonly Route[];
  readonly sessions: SessionStore;
  readonly throttle: AttemptThrottle;
  readonly live: LiveFeed;
  readonly keys: KeysService;
  handle(request: Request, o: { address: string; keepOpen: () => void }): Promise<Response>;
  start(): void;
  stop(): void;
}

function localBase(o: ApiOptions): string {
  const host = o.config.listen.host;
  const loopback = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return `${o.config.tls ? "https" : "http"}://${loopback.includes(":") ? `[${loopback}]` : loopback}:${o.endpointPort}`;
}

export function createApi(o: ApiOptions): Api {
  const nowMs = o.nowMs ?? Date.now;
  const sessions = new SessionStore(o.db, nowMs);
  const throttle = createAttemptThrottle({ nowMs });
  const cookie: CookieOptions = { secure: o.secure };
  const counts = cachedCounts(() => deliveryStateCounts(o.db), nowMs);
  const live = new LiveFeed({ db: o.db, counts, nowMs, intervalMs: o.liveIntervalMs });
  const fetchOptions = { allowPrivate: o.config.allowPrivatePeers, ca: o.config.ca };
  const keys = new KeysService({
    db: o.db,
    domains: o.config.domains,
    ownKeys: o.ownKeys,
    operatorKey: o.config.dkimKeyFile !== undefined,
    dns: o.dns,
    fetch: fetchOptions,
    localBase: localBase(o),
    listenPort: o.config.listen.port,
    tls: o.config.tls !== undefined,
    nowMs,
    log: o.log,
    onChecked: (domain, selector, matching) => o.keyPublication?.note(domain, selector, matching),
  });
  const peerFacts = o.peerFacts ?? new PeerFacts(o.db, nowMs);
  const plan = { scheduleMs: o.config.retryScheduleMs, imipAvailable: o.imipLabel !== undefined };

  const routes: Route[] = [
    ...sessionRoutes({ db: o.db, sessions, throttle, cookie, log: o.log }),
    ...overviewRoutes({
      db: o.db,
      queue: o.queue,
      counts,
      nowMs,
      listeners: o.listeners,
      localTargets: o.localTargets,
      imipLabel: o.imipLabel,
      activeAttempts: o.activeAttempts,
      problems: o.problems,
      keyPublication: o.keyPublication,
    }),
    ...messageRoutes({
      db: o.db,
      queue: o.queue,
      live,
      plan,
      nowMs,
      poke: o.poke,
      sessionAlive: (c) => sessions.alive(c),
      log: o.log,
    }),
    ...peerRoutes({
      db: o.db,
      config: o.config,
      facts: peerFacts,
      test: {
        facts: peerFacts,
        dns: o.dns,
        staticRoutes: o.staticRoutes ?? [],
        allowPrivatePeers: o.config.allowPrivatePeers,
        ca: o.config.ca,
      },
      nowMs,
      log: o.log,
    }),
    ...keyRoutes({ keys, log: o.log }),
    ...toolRoutes({
      dns: o.dns,
      peerKeys: o.config.peerKeys,
      allowPrivatePeers: o.config.allowPrivatePeers,
      allowSha1: o.config.allowSha1,
      ca: o.config.ca,
      nowMs,
    }),
    ...(o.extraRoutes ?? []),
  ];
  routes.push({
    method: "GET",
    path: "/routes",
    access: "read",
    summary: "this list",
    handle: () =>
      json(200, {
        routes: routes.map((r) => ({
          method: r.method,
          path: `${API_PREFIX}${r.path}`,
          access: r.access,
          summary: r.summary,
        })),
      }),
  });
  const router = createRouter(routes);
  const guardOptions = { token: o.token, sessions, cookie, loopbackOnly: o.loopbackOnly };

  return {
    routes,
    sessions,
    throttle,
    live,
    keys,
    async handle(request, { address, keepOpen }) {
      const url = requestUrl(request);
      const path = url.pathname.slice(API_PREFIX.length) || "/";
      const found = router.match(request.method, path);
      // Unknown paths and methods are guarded like changes, so they reveal nothing to a stranger.
      const checked = guard(request, found.route?.access ?? "change", guardOptions);
      if (!checked.ok) return checked.response;
      if (!found.route) {
        if (found.methods.length > 0)
          return json(
            405,
            { error: `use ${found.methods.join(" or ")}` },
            { Allow: found.methods.join(", ") },
          );
        return apiError(404, "no such API route (GET /api/v1/routes lists them)");
      }
      let caller = checked.caller;
      if (found.route.access === "public") caller = identify(request);
      try {
        return await found.route.handle({ request, url, params: found.params, caller, address, keepOpen });
      } catch (e) {
        if (e instanceof RequestError) return apiError(e.status, e.message, e.extra);
        const storage = storageFailure(e);
        if (storage !== undefined) {
          // A full disk is not a bug: the caller may try again once the operator has made room.
          o.log.log("error", "console API: the database cannot be written", { path, error: storage });
          const error = `isched cannot write its database now (${storage}); try again later`;
          return json(503, { error }, { "Retry-After": "60" });
        }
        o.log.log("error", "console API error", { path, error: (e as Error)?.message ?? String(e) });
        return apiError(500, "internal error (see the server log)");
      }
    },
    start() {
      keys.start();
    },
    stop() {
      live.stop();
      keys.stop();
    },
  };

  /** On public routes: who is calling, if anyone (GET /session answers differently when signed in). */
  function identify(request: Request) {
    const r = guard(request, "read", guardOptions);
    return r.ok ? r.caller : undefined;
  }
}
