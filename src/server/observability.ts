/**
 * What `isched serve` tells its operator besides the console: the metrics (src/metrics) with the
 * readers of the figures that live in the database, the log line and the counts of each delivery
 * attempt (src/delivery/attempt-log.ts), /healthz and /readyz over the real probes
 * (src/ops/health-checks.ts), the routes that serve them on each listener, and the retention pruner
 * with its policy from --retain and --retain-bodies (src/store/pruner.ts), whose runs are logged and
 * counted. The parts are built here and handed to app.ts, which only wires them.
 */
import type { Database } from "bun:sqlite";
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
import { deliveryStateCounts } from "../store/console-stats.ts";
import { probeWrite } from "../store/health-probe.ts";
import { type Pruner, startPruner } from "../store/pruner.ts";
import { queueFacts } from "../store/queue-facts.ts";
import { refusalTotals } from "../store/refusals.ts";
import { spaceFacts } from "../store/retention.ts";
import { DEFAULT_RETENTION } from "../store/retention-policy.ts";
import { VERSION } from "../version.ts";

/** The certificate the listeners serve (--tls-cert: the endpoint, and the SMTP intake's STARTTLS). */
function servedCertificates(config: ServeConfig): { listener: string; notAfterMs: number }[] {
  if (!config.tls) return [];
  const notAfterMs = Date.parse(new X509Certificate(config.tls.cert).validTo);
  return [
    { listener: "--listen", notAfterMs },
    ...(config.smtpIntake ? [{ listener: "--smtp-listen", notAfterMs }] : []),
    ...(isLoopbackHost(config.console.host) ? [] : [{ listener: "--console", notAfterMs }]),
  ];
}

export function serverMetrics(o: { config: ServeConfig; db: Database; nowMs: () => number }): IschedMetrics {
  const { db } = o;
  const certificates = servedCertificates(o.config);
  return createIschedMetrics({
    version: VERSION,
    readers: {
      deliveryStates: () => deliveryStateCounts(db),
      queue: () => queueFacts(db),
      refusalLog: () => {
        const t = refusalTotals(db);
        return { rows: t.count, bytes: t.bytes };
      },
      certificates: () => certificates,
      database: () => {
        const s = spaceFacts(db);
        return { bytes: s.pages * s.pageBytes, freeBytes: s.freePages * s.pageBytes };
      },
      nowMs: o.nowMs,
    },
  });
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
  o: { db: Database; dataDir: string; nowMs: () => number } & Omit<ReadinessProbes, "databaseWritable">,
): Readiness {
  return createReadiness({
    version: VERSION,
    nowMs: o.nowMs,
    probes: { ...o, databaseWritable: () => probeWrite(o.db, o.nowMs(), { dir: o.dataDir }) },
  });
}

/**
 * The operations routes of each listener: health on all; /metrics on the console (the API token
 * needed off loopback) and on --metrics-listen (nothing needed).
 */
export function opsRoutes(o: {
  config: ServeConfig;
  readiness: Readiness;
  metrics: IschedMetrics;
  apiToken: string;
}): { endpoint: PlainRoute[]; console: PlainRoute[]; metrics: PlainRoute[] } {
  const health = healthRoutes(o.readiness);
  const metrics = (listener: "console" | "metrics") =>
    metricsRoute({
      listener,
      consoleLoopback: isLoopbackHost(o.config.console.host),
      tokenMatches: (token) => sameSecret(token, o.apiToken),
      render: () => o.metrics.render(),
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
  db: Database;
  log: Logger;
  health: Health;
  metrics: IschedMetrics;
  /** Told when refusals were deleted (the refusal log keeps their totals between writes). */
  onRefusalsPruned: () => void;
  nowMs: () => number;
}): Pruner {
  return startPruner({
    db: o.db,
    policy: o.config.ops?.retention ?? DEFAULT_RETENTION,
    nowMs: o.nowMs,
    onRun: (report) => {
      for (const step of report.steps)
        if (step.rows > 0) o.metrics.pruned.add({ kind: step.name, rows: step.rows });
      if (report.steps.some((s) => s.name === "refusals" && s.rows > 0)) o.onRefusalsPruned();
      const removed = report.steps.filter((s) => s.rows > 0);
      if (removed.length > 0)
        o.log.log("info", "retention pruned", {
          ...Object.fromEntries(removed.map((s) => [s.name, s.rows])),
          ms: Math.round(report.steps.reduce((sum, s) => sum + s.busyMs, 0)),
        });
    },
    onProblem: (problem) =>
      problem === undefined
        ? o.health.resolve("retention", "retention works again")
        : o.health.report("retention", problem),
  });
}
