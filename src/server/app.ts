/**
 * The composition root of `isched serve`: it builds each module from the configuration and wires
 * them into the pipeline (docs/architecture.md): intakes (the iSchedule endpoint, the submission
 * API, the SMTP intake) -> the intake's accept() -> the queue -> the dispatcher -> delivery targets;
 * and takes it apart again on shutdown (stop accepting, let attempts finish or give their leases
 * back, close the database). Nothing here decides anything: each module does its own job.
 */
import { hostname } from "node:os";
import type { CertificateStatus } from "../acme/manager.ts";
import { checkAddressesFree } from "../config/ports.ts";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, type ServeConfig } from "../config/serve-config.ts";
import { isLoopbackHost } from "../console/guard.ts";
import { submissionRoute } from "../console/routes-submission.ts";
import { Dispatcher } from "../delivery/dispatcher.ts";
import type { PublishedCapabilities } from "../inbound/capabilities.ts";
import { createIntake } from "../intake/accept.ts";
import { type KeyPublication, WAITING_FOR_KEY } from "../keys/key-publication.ts";
import type { OwnKeys } from "../keys/own-keys.ts";
import type { Problem } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { type DrainReport, type DrainStep, drain } from "../ops/drain.ts";
import type { ReloadOutcome } from "../ops/reloader.ts";
import type { Notifier } from "../ops/sd-notify.ts";
import { createCanSchedule } from "../outbound/can-schedule.ts";
import { DEFAULT_LEASE_MS } from "../queue/queue.ts";
import type { Store } from "../store/store.ts";
import { type ServerAcme, startAcme } from "./acme.ts";
import { claimNodeName, leaseOwnerOf, ownerPrefixOf, runClusterNode } from "./cluster.ts";
import { ensureApiToken, prepareDataFolder } from "./data-folder.ts";
import { openQueue, openServerDatabase, operatorProblems, type ServerDatabase } from "./database.ts";
import { scheduleEndpoint } from "./endpoint.ts";
import { serverKeys } from "./keys.ts";
import { listenConsole, listenEndpoint, listenMetrics, listenSmtp } from "./listeners.ts";
import { attemptObserver, opsRoutes, serverMetrics, serverPruner, serverReadiness } from "./observability.ts";
import { connectPeers } from "./peers.ts";
import { serverReloader } from "./reload.ts";
import { deliveryTargets } from "./targets.ts";

export interface RunningServer {
  readonly url: string;
  readonly consoleUrl: string;
  readonly store: Store;
  readonly keys: OwnKeys;
  readonly apiToken: string;
  readonly capabilities: () => PublishedCapabilities;
  /** What the operator must know about now (failing checkpoints, risky settings): see log/health.ts. */
  readonly problems: () => readonly Problem[];
  /** Whether peers can find our signing keys yet. */
  readonly keyPublication: KeyPublication;
  /** The SMTP intake's port, when it runs. */
  readonly smtpPort?: number;
  /** `http://HOST:PORT` of --metrics-listen, when it runs. */
  readonly metricsUrl?: string;
  /** The ACME certificate's state (--acme-email): for the Overview, /readyz and doctor. */
  readonly acme?: () => CertificateStatus;
  /** Takes again the certificates, keys and secrets read from files (SIGHUP: src/server/reload.ts). */
  reload(): Promise<ReloadOutcome>;
  /**
   * Stops within `timeoutMs` (default DEFAULT_SHUTDOWN_TIMEOUT_MS): stop accepting, let attempts
   * finish or give them back to the queue, close the database. The report says what did not finish.
   */
  stop(o?: { timeoutMs?: number }): Promise<DrainReport>;
}

/** The listeners' share of a shutdown: requests under way finish; a slow upload does not hold the rest. */
const LISTENERS_STOP_MS = 5000;
/**
 * Kept for the last steps (leases given back, the WAL checkpointed, the database closed): 2 s, or a
 * quarter of a shorter bound.
 */
const closeReserveMs = (totalMs: number) => Math.min(2000, totalMs / 4);

/** How long start-up waits for the first look at DNS for our keys (the summary says "not checked" after). */
const START_CHECK_MS = 3000;

export interface StartOptions {
  config: ServeConfig;
  log: Logger;
  /** Told RELOADING=1 and READY=1 around a reload (systemd's Type=notify; src/ops/sd-notify.ts). */
  notifier?: Pick<Notifier, "reloading" | "ready">;
  nowMs?: () => number;
}

export async function startServer(o: StartOptions): Promise<RunningServer> {
  const { config } = o;
  const nowMs = o.nowMs ?? Date.now;
  // Nothing is written before every address is known to be free and the data folder to be ours.
  await checkAddressesFree([
    { flag: "--listen", ...config.listen },
    { flag: "--console", ...config.console },
    ...(config.smtpIntake ? [{ flag: "--smtp-listen", ...config.smtpIntake.listen }] : []),
    ...(config.ops?.metricsListen ? [{ flag: "--metrics-listen", ...config.ops.metricsListen }] : []),
    ...(config.acme?.httpListen ? [{ flag: "--acme-http-listen", ...config.acme.httpListen }] : []),
  ]);
  prepareDataFolder(config.dataDir);
  const database = await openServerDatabase({ config, log: o.log, nowMs });
  try {
    const { shutdownSteps, ...server } = await assemble({ ...o, nowMs }, database);
    const stop = (s?: { timeoutMs?: number }) => {
      const totalMs = s?.timeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
      const endsAt = performance.now() + totalMs;
      const steps = shutdownSteps(() => endsAt - closeReserveMs(totalMs) - performance.now());
      return drain([...steps, { name: "close the database", run: database.close }], { totalMs, log: o.log });
    };
    return { ...server, stop };
  } catch (e) {
    await database.close();
    throw e;
  }
}

type Assembled = Omit<RunningServer, "stop"> & {
  /** The shutdown before the database closes; attempts may run for `graceMs()` at most. */
  shutdownSteps(graceMs: () => number): DrainStep[];
};

async function assemble(
  o: StartOptions & { nowMs: () => number },
  database: ServerDatabase,
): Promise<Assembled> {
  const { log, nowMs } = o;
  // With ACME, the endpoint serves the CA's certificate as if it had come from --tls-cert.
  let listener: { port: number } | undefined;
  const acme = o.config.acme
    ? await startAcme({
        settings: o.config.acme,
        dataDir: o.config.dataDir,
        listen: o.config.listen,
        httpsPort: () => listener?.port ?? o.config.listen.port,
        health: database.health,
        log,
        nowMs,
      })
    : undefined;
  try {
    return await assembleParts({ ...o, config: withAcme(o.config, acme, log) }, database, acme, (l) => {
      listener = l;
    });
  } catch (e) {
    await acme?.stop();
    throw e;
  }
}

/** The configuration with ACME's certificate as its TLS; refuses a public endpoint without one. */
function withAcme(config: ServeConfig, acme: ServerAcme | undefined, log: Logger): ServeConfig {
  if (!acme) return config;
  if (acme.tls) return { ...config, tls: acme.tls };
  const why = acme.status().lastError?.message ?? "no certificate";
  if (!isLoopbackHost(config.listen.host))
    throw new Error(
      `Cannot start: no certificate for ${config.acme!.names.join(", ")} (${why}); isched does not serve iSchedule in clear on ${config.listen.host}. Make ${config.acme!.directoryUrl} reachable, or give --tls-cert/--tls-key`,
    );
  log.log(
    "warn",
    "no certificate from the ACME CA yet: the endpoint speaks plain HTTP on loopback; isched keeps trying, and a restart after success serves HTTPS",
    { error: why },
  );
  return config;
}

async function assembleParts(
  o: StartOptions & { nowMs: () => number },
  { store, sqlite, postgres, health }: ServerDatabase,
  acme: ServerAcme | undefined,
  onListening: (endpoint: { port: number }) => void,
): Promise<Assembled> {
  const { config, log, nowMs } = o;
  // Among several nodes the name is claimed first: start-up recovery takes back this node's leases.
  const self = { id: config.nodeId ?? hostname(), host: hostname(), pid: process.pid };
  const leaseMs = config.leaseMs ?? DEFAULT_LEASE_MS;
  if (postgres) await claimNodeName({ store: postgres, self, leaseMs, nowMs });
  const queue = await openQueue({
    store,
    log,
    nowMs,
    leaseMs,
    startOfNode: postgres ? ownerPrefixOf(self.id) : undefined,
  });
  // The certificate the listeners serve now: a reload or an ACME renewal replaces it (metrics read it).
  let certificateInUse = config.tls?.cert;
  const metrics = serverMetrics({ config, store, nowMs, certificatePem: () => certificateInUse });

  // Delivery: the targets and the dispatcher; outbound iSchedule waits until peers can find our key.
  const peers = connectPeers({ config, store, log, nowMs });
  const keys = await serverKeys({
    config,
    store,
    dns: peers.dns,
    log,
    onVisible: () => {
      queue.wakeWaiting("ischedule", WAITING_FOR_KEY).then(
        () => dispatcher.poke(),
        (e) => log.log("error", "cannot wake the deliveries waiting for our key", { error: String(e) }),
      );
    },
    nowMs,
  });
  const targets = deliveryTargets({ config, peers, keys, nowMs });
  const dispatcher = new Dispatcher({
    queue,
    targetFor: targets.targetFor,
    scheduleMs: config.retryScheduleMs,
    imipAvailable: targets.imip !== undefined,
    owner: leaseOwnerOf(self),
    maxConcurrent: config.maxDeliveries,
    maxPerTarget: config.maxPerTarget,
    nowMs,
    onAttempt: attemptObserver(log, metrics),
    onError: (what, e) =>
      log.log("error", `delivery queue: ${what}; trying again, less often the longer it lasts`, {
        error: (e as Error)?.message ?? String(e),
      }),
    onRecovered: (downMs) => log.log("info", "delivery queue works again", { afterMs: downMs }),
  });
  // Among several nodes: heartbeat, lease renewal and takeover, and work announced to the others.
  const node = postgres
    ? await runClusterNode({
        store: postgres,
        queue,
        self,
        leaseMs,
        heldIds: () => dispatcher.heldIds(),
        wake: () => dispatcher.poke(),
        log,
        nowMs,
      })
    : undefined;
  /** Wakes this node's dispatcher and the other nodes' (new work is due). */
  const wakeAll = () => {
    dispatcher.poke();
    node?.announce();
  };
  const localLabels = new Map([...targets.local].map(([domain, t]) => [domain, t.label]));
  const intake = createIntake({
    queue,
    dispatcher: {
      attemptBeforeCommit: (...a) => dispatcher.attemptBeforeCommit(...a),
      storedDecided: (...a) => dispatcher.storedDecided(...a),
      deliverNow: (...a) => dispatcher.deliverNow(...a),
      poke: wakeAll,
    },
    routes: { local: localLabels, fallbackAfterMs: config.fallbackAfterMs },
    nowMs,
  });

  // The intakes: the iSchedule endpoint, the submission API on the console, the SMTP intake.
  const { endpoint, refusals, capabilities } = await scheduleEndpoint({
    config,
    store,
    intake,
    peers,
    localTargets: [...new Set(targets.local.values())],
    keyRecord: keys.live.record,
    outboundComponents: targets.remote.handles,
    log,
    metrics,
    nowMs,
  });
  const { problems, refresh: policiesChanged } = await operatorProblems({
    config,
    store,
    health,
    keyPublication: keys.publication,
    sinceMs: nowMs(),
  });
  // Health and metrics (observability.ts): the probes look at the listeners made below.
  const readiness = serverReadiness({
    store,
    nowMs,
    dispatcherHeartbeatMs: () => dispatcher.heartbeatMs,
    listeners: () => [
      { name: "--listen", up: listener.up() },
      { name: "--console", up: consoleListener.up() },
      ...(metricsListener ? [{ name: "--metrics-listen", up: metricsListener.up() }] : []),
    ],
    ownKeys: () => keys.publication.states(),
    signUnpublished: config.signUnpublished === true,
    problems,
  });
  const apiToken = config.apiToken ?? ensureApiToken(config.dataDir);
  let apiTokenInUse = apiToken;
  const routes = opsRoutes({ config, readiness, metrics, apiToken: () => apiTokenInUse });
  const listener = listenEndpoint(config, endpoint, routes.endpoint, acme?.alpn);
  onListening(listener);
  const consoleListener = listenConsole({
    store,
    queue,
    token: apiToken,
    log,
    config,
    dns: peers.dns,
    ownKeys: keys.startup,
    endpointPort: listener.port,
    localTargets: config.domains.map((d) => [d, localLabels.get(d)!] as const),
    imipLabel: targets.imip?.label,
    activeAttempts: () => dispatcher.activeAttempts,
    poke: wakeAll,
    nodes: postgres && (() => postgres.nodes()),
    listeners: () => [
      { name: "iSchedule endpoint", url: `${listener.url}/.well-known/ischedule` },
      ...(smtp ? [{ name: "SMTP intake", url: smtp.url }] : []),
      ...(metricsListener ? [{ name: "Metrics", url: `${metricsListener.url}/metrics` }] : []),
    ],
    staticRoutes: config.peers ?? [],
    peerFacts: peers.facts,
    problems,
    keyPublication: keys.publication,
    onKeysChanged: keys.changed,
    onPoliciesChanged: policiesChanged,
    extraRoutes: [
      submissionRoute({
        intake,
        deadlineMs: config.deliveryDeadlineMs,
        maxBytes: config.limits.maxContentLength,
        metrics,
      }),
    ],
    plainRoutes: routes.console,
    nowMs,
  });
  const metricsListener = listenMetrics(config, routes.metrics);
  const smtp = await listenSmtp(config, {
    intake,
    canSchedule: createCanSchedule({ discovery: peers.discovery, capabilities: peers.capabilities }),
    recordRelayed: true,
    log,
    metrics,
  });

  const certificateTargets = [listener.setCertificate, consoleListener.setCertificate].filter(
    (set) => set !== undefined,
  );
  acme?.start(
    certificateTargets.length === 0
      ? undefined
      : (tls) => {
          for (const set of certificateTargets)
            set(tls).catch((e: Error) =>
              log.log("error", "could not swap in the new certificate", { error: e?.message ?? String(e) }),
            );
          smtp?.setCertificate(tls);
          certificateInUse = tls.cert;
          log.log("info", "the new certificate is in use");
        },
  );
  const reloader = serverReloader({
    config,
    notifier: o.notifier,
    parts: {
      endpoint: listener,
      console: consoleListener,
      smtp,
      targets,
      inUse: (tls) => {
        certificateInUse = tls.cert;
      },
      tokenInUse: (token) => {
        apiTokenInUse = token;
      },
    },
    log,
  });

  // The start-up summary says whether the keys are published: look once now, briefly.
  await Promise.race([keys.publication.check(), Bun.sleep(START_CHECK_MS)]);
  keys.publication.start();
  dispatcher.start();
  // Retention runs on the SQLite connection, or on PostgreSQL by one node at a time.
  const pruned = sqlite ?? postgres;
  const pruner =
    pruned &&
    serverPruner({
      config,
      store: pruned,
      log,
      health,
      metrics,
      onRefusalsPruned: () => refusals.forget(),
      nowMs,
    });
  return {
    url: listener.url,
    consoleUrl: consoleListener.url,
    store,
    keys: keys.startup,
    apiToken,
    capabilities,
    problems,
    keyPublication: keys.publication,
    smtpPort: smtp?.port,
    metricsUrl: metricsListener?.url,
    reload: () => reloader.reload(),
    acme: acme && (() => acme.status()),
    shutdownSteps: (graceMs) => [
      // Retention first: its batches share the connection the dispatcher records outcomes on.
      { name: "stop the pruner", run: async () => pruner?.stop() },
      {
        name: "stop accepting",
        boundMs: LISTENERS_STOP_MS,
        run: async () => {
          keys.publication.stop();
          await Promise.all([
            acme?.stop(),
            smtp?.stop(),
            listener.stop(),
            consoleListener.stop(),
            metricsListener?.stop(),
          ]);
        },
      },
      { name: "close the refusal log", run: () => refusals.close() },
      { name: "finish or give back delivery attempts", run: () => dispatcher.stop(Math.max(0, graceMs())) },
      { name: "close the SMTP sender", run: () => targets.smtpSender?.close() },
      { name: "mark the node stopped", run: async () => node?.stop() },
    ],
  };
}
