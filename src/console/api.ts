/**
 * The JSON API under /api/v1 on the console listener: what the admin page, `isched send`,
 * `isched queue` and other programs use. Every route is in one table (GET /api/v1/routes and
 * /api/v1/openapi.json describe it); every request is admitted by guard.ts first (same origin, then
 * the API token or a session, then the CSRF token for changes), so an unauthenticated call gets 401
 * and a cross-site one 403 whatever route it names (mount.ts). Reading never changes anything.
 */
import type { AnyElysia } from "elysia";
import type { ServeConfig } from "../config/serve-config.ts";
import type { DnsResolver } from "../dns/client.ts";
import type { KeyPublication } from "../keys/key-publication.ts";
import type { OwnKeys } from "../keys/own-keys.ts";
import type { Problem } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { type AttemptThrottle, createAttemptThrottle } from "../net/attempt-throttle.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { Store } from "../store/store.ts";
import { openApiDocument, routeList } from "./api-description.ts";
import { type CookieOptions, SessionStore } from "./auth.ts";
import { json, type Route, route } from "./http.ts";
import { KeysService } from "./keys-service.ts";
import { cachedCounts, LiveFeed } from "./live.ts";
import { apiApp } from "./mount.ts";
import { PeerFacts } from "./peer-facts.ts";
import { keyRoutes } from "./routes-keys.ts";
import { messageRoutes } from "./routes-messages.ts";
import { type ListenerInfo, type NodeOnOverview, overviewRoutes } from "./routes-overview.ts";
import { peerRoutes } from "./routes-peers.ts";
import { sessionRoutes } from "./routes-session.ts";
import { toolRoutes } from "./routes-tools.ts";

export interface ApiOptions {
  store: Store;
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
  /** The nodes sharing the database (--database), for the Overview; absent on SQLite. */
  nodes?: () => Promise<readonly NodeOnOverview[]>;
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
  /** After a rotation changed our keys: the running server reads them again. */
  onKeysChanged?: () => Promise<void>;
  /** After a peer policy changed: the risky-settings warnings read them again. */
  onPoliciesChanged?: () => Promise<void>;
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
  /** The routes on Elysia (mount.ts), for the console's listener. */
  readonly app: AnyElysia;
  /** The API token from now on (a reload of --api-token-file). */
  setToken(token: string): void;
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
  const sessions = new SessionStore(o.store, nowMs);
  const throttle = createAttemptThrottle({ nowMs });
  const cookie: CookieOptions = { secure: o.secure };
  const counts = cachedCounts(() => o.store.deliveryStateCounts(), nowMs);
  const live = new LiveFeed({ store: o.store, counts, nowMs, intervalMs: o.liveIntervalMs });
  const fetchOptions = { allowPrivate: o.config.allowPrivatePeers, ca: o.config.ca };
  const keys = new KeysService({
    store: o.store,
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
    onKeysChanged: o.onKeysChanged,
  });
  const peerFacts = o.peerFacts ?? new PeerFacts(o.store, nowMs);
  const plan = {
    scheduleMs: o.config.retryScheduleMs,
    imipAvailable: o.imipLabel !== undefined,
    retainBodiesMs: o.config.ops?.retention.bodiesMs,
  };

  const routes: Route[] = [
    ...sessionRoutes({ store: o.store, sessions, throttle, cookie, log: o.log }),
    ...overviewRoutes({
      store: o.store,
      queue: o.queue,
      counts,
      nowMs,
      listeners: o.listeners,
      localTargets: o.localTargets,
      imipLabel: o.imipLabel,
      activeAttempts: o.activeAttempts,
      nodes: o.nodes,
      problems: o.problems,
      keyPublication: o.keyPublication,
    }),
    ...messageRoutes({
      store: o.store,
      queue: o.queue,
      live,
      plan,
      nowMs,
      poke: o.poke,
      sessionAlive: (c) => sessions.alive(c),
      log: o.log,
    }),
    ...peerRoutes({
      store: o.store,
      onPolicyChanged: o.onPoliciesChanged,
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
  routes.push(
    route({
      method: "GET",
      path: "/routes",
      access: "read",
      summary: "this list: each route's method, path, access, and the JSON Schemas of its body and query",
      handle: () => json(200, { routes: routeList(routes) }),
    }),
    route({
      method: "GET",
      path: "/openapi.json",
      access: "read",
      summary: "the same routes as an OpenAPI 3.1 document",
      handle: () => json(200, openApiDocument(routes)),
    }),
  );
  const guardOptions = { token: o.token, sessions, cookie, loopbackOnly: o.loopbackOnly };
  const app = apiApp({
    routes,
    guard: guardOptions,
    throttle,
    trustedProxies: o.config.trustedProxies ?? [],
    log: o.log,
  });

  return {
    routes,
    sessions,
    throttle,
    live,
    keys,
    app,
    setToken(token) {
      guardOptions.token = token;
    },
    start() {
      keys.start();
    },
    stop() {
      live.stop();
      keys.stop();
    },
  };
}
