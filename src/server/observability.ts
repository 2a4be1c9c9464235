/**
 * What `isched serve` tells its operator besides the console: the metrics (src/metrics) with the
 * readers of the figures that live in the database, the log line and the counts of each delivery
 * attempt (src/delivery/attempt-log.ts), /healthz and /readyz over the real probes
 * (src/ops/health-checks.ts), the routes that serve them on each listener, and the retention pruner
 * with its policy from --retain and --retain-bodies (src/store/sqlite/pruner.ts), whose runs are logged and
 * counted. The parts are built here and handed to app.ts, which only wires them.
 */
import { X509Certificate } from "node:crypto";
import type { ServeConfig } from "../config/serve-config.ts";
import { sameSecret } from "../console/auth.ts";
import { isLoopbackHost } from "../console/guard.ts";
import { type AttemptRecord, logAttempt } from "../delivery/attempt-log.ts";
import type { PlainRoute } from "../http/plain-route.ts";
import type { Health } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { createIschedMetrics, type IschedMetrics } from "../metrics/isched-metrics.ts";
import { createReadiness, type Readiness, type ReadinessProbes } from "../ops/health-checks.ts";
import { healthRoutes, metricsRoute } from "../ops/ops-routes.ts";
import { postgresRetentionSteps, takePruningLock } from "../store/postgres/retention.ts";
import { PostgresStore } from "../store/postgres/store.ts";
import { DEFAULT_RETENTION } from "../store/retention-policy.ts";
import { type PrunedDatabase, type Pruner, startPruner } from "../store/sqlite/pruner.ts";
import type { SqliteStore } from "../store/sqlite/store.ts";
import type { DeliveryState, QueueFacts, Store } from "../store/store.ts";
import { VERSION } from "../version.ts";

/**
 * The certificate the listeners serve (--tls-cert or ACME: the endpoint, the SMTP intake's STARTTLS
 * and a console off loopback), as `certificatePem` gives it now (a reload or a renewal replaces it).
 */
function servedCertificates(
  config: ServeConfig,
  certificatePem: () => string | undefined,
): () => { listener: string; notAfterMs: number }[] {
  let seen: { pem: string; notAfterMs: number } | undefined;
  return () => {
    const pem = certificatePem();
    if (pem === undefined) return [];
    if (seen?.pem !== pem) seen = { pem, notAfterMs: Date.parse(new X509Certificate(pem).validTo) };
    return listenersServing(config, seen.notAfterMs);
  };
}

function listenersServing(
  config: ServeConfig,
  notAfterMs: number,
): { listener: string; notAfterMs: number }[] {
  return [
    { listener: "--listen", notAfterMs },
    ...(config.smtpIntake ? [{ listener: "--smtp-listen", notAfterMs }] : []),
    ...(isLoopbackHost(config.console.host) ? [] : [{ listener: "--console", notAfterMs }]),
  ];
}

/**
 * The metrics, with the figures that live in the database read from the store before each scrape
 * (`read()`, awaited by the /metrics routes): the registry's readers are synchronous.
 */
export function serverMetrics(o: {
  config: ServeConfig;
  store: Store;
  nowMs: () => number;
  /** The certificate in use now (PEM); default the one in the configuration. */
  certificatePem?: () => string | undefined;
}): IschedMetrics & {
  read(): Promise<void>;
} {
  const { store } = o;
  const certificates = servedCertificates(o.config, o.certificatePem ?? (() => o.config.tls?.cert));
  let figures:
    | {
        states: Readonly<Record<DeliveryState, number>>;
        queue: QueueFacts;
        refusals: { rows: number; bytes: number };
        database: { bytes: number; freeBytes: number };
      }
    | undefined;
  const metrics = createIschedMetrics({
    version: VERSION,
    readers: {
      deliveryStates: () => figures?.states ?? ({} as Record<DeliveryState, number>),
      queue: () => figures?.queue ?? { depth: 0, oldestCreatedAtMs: undefined },
      refusalLog: () => figures?.refusals ?? { rows: 0, bytes: 0 },
      certificates,
      database: () => figures?.database ?? { bytes: 0, freeBytes: 0 },
      nowMs: o.nowMs,
    },
  });
  return {
    ...metrics,
    async read() {
      const t = await store.refusalTotals();
      figures = {
        states: await store.deliveryStateCounts(),
        queue: await store.queueFacts(),
        refusals: { rows: t.count, bytes: t.bytes },
        database: await store.databaseSpace(),
      };
    },
  };
}

/** The dispatcher's onAttempt: one log line (attempt-log.ts) and the attempt's counts. */
export function attemptObserver(log: Logger, metrics: IschedMetrics): (a: AttemptRecord) => void {
  return (a) => {
    logAttempt(log, a);
    metrics.attempts.observe({
      route: a.route,
      outcome: a.outcome,
      seconds: a.durationMs / 1000,
      peer: a.route === "ischedule" ? a.peer : undefined,
    });
    if (a.state !== "queued" && a.state !== "in-flight")
      metrics.deliveries.done({ route: a.route, state: a.state });
  };
}

export function serverReadiness(
  o: { store: Store; nowMs: () => number } & Omit<ReadinessProbes, "databaseWritable">,
): Readiness {
  return createReadiness({
    version: VERSION,
    nowMs: o.nowMs,
    // The store checks the room left on its file system too (a full disk takes the probe's one row).
    probes: { ...o, databaseWritable: () => o.store.probeWrite(o.nowMs()) },
  });
}

/**
 * The operations routes of each listener: health on all; /metrics on the console (the API token
 * needed off loopback) and on --metrics-listen (nothing needed).
 */
export function opsRoutes(o: {
  config: ServeConfig;
  readiness: Readiness;
  metrics: IschedMetrics & { read(): Promise<void> };
  /** The API token in use now (a reload of --api-token-file replaces it). */
  apiToken: () => string;
}): { endpoint: PlainRoute[]; console: PlainRoute[]; metrics: PlainRoute[] } {
  const health = healthRoutes(o.readiness);
  const metrics = (listener: "console" | "metrics") =>
    metricsRoute({
      listener,
      consoleLoopback: isLoopbackHost(o.config.console.host),
      tokenMatches: (token) => sameSecret(token, o.apiToken()),
      render: async () => {
        await o.metrics.read();
        return o.metrics.render();
      },
    });
  return {
    endpoint: health,
    console: [...health, metrics("console")],
    metrics: [...health, metrics("metrics")],
  };
}

/**
 * The retention pruner with the policy of --retain and --retain-bodies: each run's removals are
 * counted and, when there were any, logged; a failing run is a problem the operator sees (the
 * console, /readyz's warning) until one succeeds again.
 */
export function serverPruner(o: {
  config: ServeConfig;
  /**
   * Retention is not behind the Store interface: it runs on the SQLite connection, or on
   * PostgreSQL's pool with its own steps, one node at a time (src/store/postgres/retention.ts).
   */
  store: SqliteStore | PostgresStore;
  log: Logger;
  health: Health;
  metrics: IschedMetrics;
  /** Told when refusals were deleted (the refusal log keeps their totals between writes). */
  onRefusalsPruned: () => void;
  nowMs: () => number;
}): Pruner {
  const policy = o.config.ops?.retention ?? DEFAULT_RETENTION;
  const store = o.store;
  const database: PrunedDatabase =
    store instanceof PostgresStore
      ? {
          steps: (nowMs) => postgresRetentionSteps(store.sql, { policy, nowMs }),
          runLock: () => takePruningLock(store.sql),
        }
      : { db: store.db, policy, writes: (work) => store.writeInBatch(work) };
  const intervalMs = o.config.ops?.pruneIntervalMs;
  return startPruner({
    ...database,
    nowMs: o.nowMs,
    ...(intervalMs === undefined ? {} : { intervalMs, firstRunAfterMs: Math.min(60_000, intervalMs) }),
    onRun: (report) => {
      for (const step of report.steps)
        if (step.rows > 0) o.metrics.pruned.add({ kind: step.name, rows: step.rows });
      if (report.steps.some((s) => s.name === "refusals" && s.rows > 0)) o.onRefusalsPruned();
      const removed = report.steps.filter((s) => s.rows > 0);
      if (removed.length > 0)
        o.log.log("info", "retention pruned", {
          ...Object.fromEntries(removed.map((s) => [s.name, s.rows])),
          ms: Math.round(report.steps.reduce((sum, s) => sum + s.busyMs, 0)),
          maxBatchMs: Math.round(Math.max(...report.steps.map((s) => s.maxBatchMs)) * 10) / 10,
          rowsPerSecond: report.rowsPerSecond,
        });
    },
    onSlowBatch: (b) =>
      o.log.log("warn", "a pruning batch held the database", {
        step: b.step,
        rows: b.rows,
        limit: b.limit,
        ms: Math.round(b.ms),
      }),
    onProblem: (problem) =>
      problem === undefined
        ? o.health.resolve("retention", "retention works again")
        : o.health.report("retention", problem),
  });
}
