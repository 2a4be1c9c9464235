/**
 * The retention pruner: now and then (every hour by default, the first time a minute after start),
 * it runs the pruning steps of retention.ts in order (refusals, messages, bodies, expired keys,
 * compaction), each one batch at a time until it is done.
 *
 * The database connection is the one requests use, and bun:sqlite is synchronous: while a batch
 * runs, a request waits for it. So a batch is kept short, about `targetMs` (2 ms; the rows of the
 * next batch follow the time the last one took: nextBatchRows), and the pruner sleeps between two
 * (at least 20 ms), which lets whatever arrived meanwhile run first. It also keeps to a pace in rows
 * a second: each row writes about a page to the WAL, and a WAL that fills faster meets its blocking
 * checkpoint (checkpoint-plan.ts) sooner, which holds every writer back while it syncs (measured on 50,000 messages: at
 * 4,000 rows a second an accept's p99 went from 2 to 70 ms, at 500 it stays within a millisecond
 * of the p99 without the pruner; test/store/retention-volume.test.ts). The pace is 500 rows a
 * second unless the rows arrive faster: then it follows them (runPace), since a pruner slower than
 * the arrivals never catches up and the disk fills. A backlog (the first run on a database a year
 * old: 100,000 rows take about 3.5 minutes) is worked through in the background, never in one long
 * transaction. A second connection in another thread would not help: SQLite has
 * one writer, and a request would wait for the lock instead (blocking its thread while it waits).
 * `serve` runs each batch inside the group commit's transaction (`writes`, batchedStep), so that
 * the checkpointer's hold, which holds the accepts, holds the batches too.
 */
import type { Database } from "bun:sqlite";
import type { RetentionPolicy } from "../retention-policy.ts";
import {
  bodyPruning,
  compaction,
  keyPruning,
  messagePruning,
  type PruneStep,
  type PruneStepName,
  refusalPruning,
  type SqlitePruneStep,
  type StepBatch,
} from "./retention.ts";

export interface BatchSizing {
  /** How long one batch should take. */
  readonly targetMs: number;
  readonly minRows: number;
  readonly maxRows: number;
  /** The first batch of each step. */
  readonly startRows: number;
}

export const DEFAULT_BATCH_SIZING: BatchSizing = { targetMs: 2, minRows: 4, maxRows: 2000, startRows: 16 };

/**
 * The rows of the next batch, from the rows and time of the last: scaled towards `targetMs`,
 * growing by half at most (a batch that was quick on rows in cache may meet rows on disk next), and
 * within [minRows, maxRows].
 */
export function nextBatchRows(
  rows: number,
  elapsedMs: number,
  s: BatchSizing = DEFAULT_BATCH_SIZING,
): number {
  const scaled = elapsedMs <= 0 ? rows * 1.5 : Math.min(rows * 1.5, (rows * s.targetMs) / elapsedMs);
  return Math.max(s.minRows, Math.min(s.maxRows, Math.floor(scaled)));
}

export interface StepReport {
  readonly name: PruneStepName;
  /** Rows removed or emptied (pages, for compaction). */
  readonly rows: number;
  readonly bytes: number;
  /** Deliveries deleted with their messages. */
  readonly deliveries: number;
  readonly batches: number;
  /** The longest batch: what a request arriving during it may have waited. */
  readonly maxBatchMs: number;
  /** Time spent in batches (pauses not counted). */
  readonly busyMs: number;
}

export interface PruneReport {
  readonly startedAtMs: number;
  /** The pace the run kept to, in rows a second (runPace). */
  readonly rowsPerSecond?: number;
  readonly steps: readonly StepReport[];
  /** The run was not made: another node on the database was making one (PostgreSQL). */
  readonly skipped?: boolean;
  /** The run was stopped (shutdown) before every step was done. */
  readonly stopped: boolean;
  /** Why a step failed; the run ends there and the next one starts over. */
  readonly problem?: string;
}

export interface RunOptions {
  sizing?: BatchSizing;
  /** The least pause between two batches. */
  pauseMs?: number;
  /**
   * The most rows (pages, for compaction) a second, over a run: each row writes about a page to the
   * WAL, and a WAL that fills faster is checkpointed more often, a blocking checkpoint holding every
   * writer back while it syncs (checkpoint-plan.ts). Default 500; startPruner's runs take it as
   * the floor of runPace.
   */
  maxRowsPerSecond?: number;
  /** Waits between batches (tests run without waiting). */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds, for measuring batches: performance.now by default. */
  elapsed?: () => number;
  shouldStop?: () => boolean;
  /** Told of a batch that took SLOW_BATCH_MS or longer: requests waited that long for it. */
  onSlowBatch?: (b: { step: PruneStepName; rows: number; limit: number; ms: number }) => void;
}

/** A batch this long is worth a log line: requests waited for it (the aim is targetMs). */
export const SLOW_BATCH_MS = 100;

export const DEFAULT_PAUSE_MS = 20;
export const DEFAULT_MAX_ROWS_PER_SECOND = 500;
/** The fastest pace runPace sets: 8 times the usual, where the WAL's checkpoints are felt (above). */
export const MAX_PACE_ROWS_PER_SECOND = 4000;

/**
 * The pace of the next run, in rows a second: at least `floorRowsPerSecond`, and twice the rate at
 * which the last run's rows had arrived (its rows over the time since the run before it started:
 * rows become due at the rate they arrived, one retention period earlier), so that a run takes at
 * most about half of the time between two; never above MAX_PACE_ROWS_PER_SECOND. A first run (no
 * last one) keeps to the floor: its backlog is years of history, not the arrival rate.
 */
export function runPace(o: { floorRowsPerSecond: number; last?: { rows: number; sinceMs: number } }): number {
  const { last, floorRowsPerSecond: floor } = o;
  if (!last || last.sinceMs <= 0) return floor;
  const arriving = (last.rows * 1000) / last.sinceMs;
  return Math.max(floor, Math.min(MAX_PACE_ROWS_PER_SECOND, Math.ceil(2 * arriving)));
}

/** The steps of one run, in order, for `policy` at `nowMs`. */
export function retentionSteps(
  db: Database,
  o: { policy: RetentionPolicy; nowMs: number; reservePages?: number },
): SqlitePruneStep[] {
  const { policy, nowMs } = o;
  return [
    refusalPruning(db, { beforeMs: nowMs - policy.refusalsMs }),
    ...(policy.messagesMs === undefined ? [] : [messagePruning(db, { beforeMs: nowMs - policy.messagesMs })]),
    ...(policy.bodiesMs === undefined ? [] : [bodyPruning(db, { beforeMs: nowMs - policy.bodiesMs })]),
    keyPruning(db, { table: "replay_keys", nowMs }),
    keyPruning(db, { table: "itip_keys", nowMs }),
    compaction(db, { reservePages: o.reservePages }),
  ];
}

/** Runs `steps` in order, each batch by batch, yielding between batches. */
export async function runSteps(
  steps: readonly PruneStep[],
  o: RunOptions & { startedAtMs: number },
): Promise<PruneReport> {
  const sizing = o.sizing ?? DEFAULT_BATCH_SIZING;
  const pauseMs = o.pauseMs ?? DEFAULT_PAUSE_MS;
  const rowMs = 1000 / (o.maxRowsPerSecond ?? DEFAULT_MAX_ROWS_PER_SECOND);
  const sleep = o.sleep ?? ((ms: number) => Bun.sleep(ms));
  const elapsed = o.elapsed ?? (() => performance.now());
  const stop = o.shouldStop ?? (() => false);
  const reports: StepReport[] = [];
  const result = (extra: { stopped: boolean; problem?: string }): PruneReport => ({
    startedAtMs: o.startedAtMs,
    rowsPerSecond: 1000 / rowMs,
    steps: reports,
    ...extra,
  });
  // The pause due before the next batch, whichever step it belongs to.
  let pause: number | undefined;
  for (const step of steps) {
    let limit = sizing.startRows;
    const r = { name: step.name, rows: 0, bytes: 0, deliveries: 0, batches: 0, maxBatchMs: 0, busyMs: 0 };
    reports.push(r);
    for (;;) {
      if (pause !== undefined) await sleep(pause);
      if (stop()) return result({ stopped: true });
      const start = elapsed();
      let batch: StepBatch;
      try {
        batch = await step.batch(limit);
      } catch (e) {
        return result({
          stopped: false,
          problem: `pruning ${step.name} failed: ${e instanceof Error ? e.message : String(e)}`,
        });
      }
      const ms = batch.busyMs ?? elapsed() - start;
      if (ms >= SLOW_BATCH_MS) o.onSlowBatch?.({ step: step.name, rows: batch.rows, limit, ms });
      r.rows += batch.rows;
      r.bytes += batch.bytes;
      r.deliveries += batch.deliveries ?? 0;
      r.batches++;
      r.busyMs += ms;
      r.maxBatchMs = Math.max(r.maxBatchMs, ms);
      pause = Math.max(pauseMs, batch.rows * rowMs - ms);
      if (batch.done) break;
      limit = nextBatchRows(limit, ms, sizing);
    }
  }
  return result({ stopped: false });
}

/**
 * What a run prunes: SQLite's steps on `db` for `policy`, or (PostgreSQL) the steps `steps` makes
 * for a run at its time, made only while `runLock` gives this node the run.
 */
export type PrunedDatabase =
  | { db: Database; policy: RetentionPolicy; reservePages?: number; writes?: BatchedWrites }
  | {
      steps: (nowMs: number) => readonly PruneStep[];
      runLock: () => Promise<{ release(): Promise<void> } | undefined>;
    };

export type PrunerOptions = Omit<RunOptions, "shouldStop"> & PrunedDatabase & PrunerSchedule;

interface PrunerSchedule {
  nowMs?: () => number;
  /** Between two runs. Default one hour. */
  intervalMs?: number;
  /** Before the first run, so that start-up is not slowed down. Default one minute. */
  firstRunAfterMs?: number;
  /** After each run (the server logs what went, and counts it). */
  onRun?: (report: PruneReport) => void;
  /** A sentence when a run fails; undefined when one succeeds again. */
  onProblem?: (problem: string | undefined) => void;
}

export interface Pruner {
  /** Runs now (or waits for the run under way) and resolves with its report. */
  runNow(): Promise<PruneReport>;
  /** Stops after the current batch; resolves when the run under way has ended. */
  stop(): Promise<void>;
}

export const DEFAULT_PRUNE_INTERVAL_MS = 3_600_000;

/**
 * Runs synchronous statements in the group commit's next transaction (SqliteStore.writeInBatch,
 * group-commit.ts), resolving once it has committed.
 */
export type BatchedWrites = <T>(work: () => T) => Promise<T>;

/**
 * `step` with each batch made through `writes`: in the transaction the accepts of the moment share,
 * and so held with them while the checkpointer starts the WAL over. A batch made beside the group
 * commit during that hold waits for SQLite's writer lock in its busy handler, on the thread that
 * answers requests: the hold (10-60 ms) becomes a stall of every request (measured in the soak,
 * BENCHMARKS.md). Its busyMs is the time its statements took, not its wait for the batch's turn.
 */
export function batchedStep(step: SqlitePruneStep, writes: BatchedWrites): PruneStep {
  return {
    name: step.name,
    batch: (limit) =>
      writes(() => {
        const start = performance.now();
        const batch = step.batch(limit);
        return { ...batch, busyMs: performance.now() - start };
      }),
  };
}

/** One run's steps, under the run lock where there is one (a failure to take it is the run's problem). */
async function runOnce(
  o: PrunerOptions,
  run: { startedAtMs: number; shouldStop: () => boolean },
): Promise<PruneReport> {
  if ("db" in o) {
    const steps = retentionSteps(o.db, {
      policy: o.policy,
      nowMs: run.startedAtMs,
      reservePages: o.reservePages,
    });
    const { writes } = o;
    return runSteps(writes ? steps.map((s) => batchedStep(s, writes)) : steps, { ...o, ...run });
  }
  let lock: Awaited<ReturnType<typeof o.runLock>>;
  try {
    lock = await o.runLock();
  } catch (e) {
    const problem = `pruning could not start: ${e instanceof Error ? e.message : String(e)}`;
    return { startedAtMs: run.startedAtMs, steps: [], stopped: false, problem };
  }
  if (!lock) return { startedAtMs: run.startedAtMs, steps: [], stopped: false, skipped: true };
  try {
    return await runSteps(o.steps(run.startedAtMs), { ...o, ...run });
  } finally {
    await lock.release().catch(() => {});
  }
}

export function startPruner(o: PrunerOptions): Pruner {
  const now = o.nowMs ?? Date.now;
  let stopped = false;
  let failing = false;
  let running: Promise<PruneReport> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The last completed run's rows and when the run before it started (runPace).
  let last: { rows: number; sinceMs: number } | undefined;
  let lastStartedAtMs: number | undefined;

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void run(), ms);
    timer.unref();
  };

  const run = (): Promise<PruneReport> => {
    clearTimeout(timer);
    running ??= (async () => {
      const startedAtMs = now();
      const maxRowsPerSecond = runPace({
        floorRowsPerSecond: o.maxRowsPerSecond ?? DEFAULT_MAX_ROWS_PER_SECOND,
        last,
      });
      const report = await runOnce({ ...o, maxRowsPerSecond }, { startedAtMs, shouldStop: () => stopped });
      if (!report.skipped && report.problem === undefined && !report.stopped) {
        const rows = report.steps.reduce((n, s) => n + (s.name === "compaction" ? 0 : s.rows), 0);
        if (lastStartedAtMs !== undefined) last = { rows, sinceMs: startedAtMs - lastStartedAtMs };
        lastStartedAtMs = startedAtMs;
      }
      if (report.problem !== undefined) {
        failing = true;
        o.onProblem?.(report.problem);
      } else if (failing && !report.stopped) {
        failing = false;
        o.onProblem?.(undefined);
      }
      o.onRun?.(report);
      return report;
    })().finally(() => {
      running = undefined;
      schedule(o.intervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
    });
    return running;
  };

  schedule(o.firstRunAfterMs ?? 60_000);
  return {
    runNow: run,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
