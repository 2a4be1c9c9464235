/**
 * WAL checkpoints off the request path. SQLite folds the WAL back into the database file from
 * whichever connection commits past the autocheckpoint limit, and a checkpoint syncs the file: on a
 * slow disk that stalled every request queued behind it (tens of milliseconds at the 99th
 * percentile). isched runs them from a worker thread with a second connection instead
 * (checkpoint-worker.ts, on the schedule of checkpoint-plan.ts, which also keeps the WAL file
 * bounded under a sustained load). Durability does not change: committed transactions are in the WAL
 * either way.
 *
 * The main connection keeps its automatic checkpoints until the worker says it is ready, and gets
 * them back if the worker fails to start or dies, so the WAL never goes unchecked. Either failure,
 * and checkpoints that keep failing, are reported through `onProblem` (the server logs them and the
 * console shows them); so is the recovery.
 *
 * Starting the WAL over (the RESTART at the WAL limit, checkpoint-plan.ts) needs SQLite's writer
 * lock. A writer that finds it taken sleeps in SQLite's busy handler in steps of 1, 2, 5, 10 and
 * 15 ms, and bun:sqlite is synchronous, so the thread that answers requests stopped for 18-33 ms
 * about once a second under a steady load (the p99). With `writes` given, the worker asks first:
 * this thread holds the group commit's writes (they queue, unanswered), says so, the worker copies
 * what is left and starts the WAL over without waiting for anybody, and the writes are released
 * and commit together. Requests go on being read and checked meanwhile. A hold lasts at most
 * `maxHoldMs`, whatever the worker does.
 */
import type { Database } from "bun:sqlite";
import { type CheckpointPolicy, DEFAULT_CHECKPOINT_POLICY } from "./checkpoint-plan.ts";

export type ToCheckpointWorker =
  | {
      type: "start";
      path: string;
      tickMs: number;
      busyTimeoutMs: number;
      policy: CheckpointPolicy;
      /** Ask the main thread to hold its writes before a RESTART ("hold", then "held"). */
      holdWrites: boolean;
    }
  | { type: "held" }
  | { type: "stop" };

export type FromCheckpointWorker =
  | { type: "ready" }
  | { type: "failed"; problem: string }
  | { type: "failing"; problem: string; walBytes: number }
  | { type: "recovered"; walBytes: number }
  /** The worker is about to start the WAL over: hold writes, then answer "held". */
  | { type: "hold" }
  /** The WAL was started over (or could not be): writes may go on. */
  | { type: "release" }
  | { type: "stopped" };

export interface CheckpointerOptions {
  db: Database;
  /** The database file (the WAL is PATH-wal). */
  path: string;
  /** A sentence when checkpoints stop working; undefined when they work again. */
  onProblem: (problem: string | undefined) => void;
  tickMs?: number;
  /** How long a TRUNCATE checkpoint may hold writers back. */
  busyTimeoutMs?: number;
  policy?: CheckpointPolicy;
  /** The group commit's writes, held while the worker starts the WAL over (see above). */
  writes?: { hold(): void; release(): void };
  /** The longest a hold lasts (the worker did not say it was done). */
  maxHoldMs?: number;
  /** How long the worker may take to open its connection. */
  startTimeoutMs?: number;
  /** The worker's module (tests point it elsewhere to see a failed start). */
  workerUrl?: string;
}

export interface Checkpointer {
  stop(): Promise<void>;
}

/** The main connection's own checkpoints, while the worker does not run: SQLite's default. */
const FALLBACK_AUTOCHECKPOINT_PAGES = 1000;

/**
 * Where the worker's code is. From source, beside this file. In the executable `bun build --compile`
 * makes, this module is bundled into the main entry point, whose import.meta.url names the executable
 * at the root of the embedded file system (file:///$bunfs/root/isched); the worker, the build's second
 * entry point (package.json), keeps its folder below that root.
 */
function defaultWorkerUrl(): string {
  const compiled = import.meta.url.includes("/$bunfs/") || import.meta.url.includes("/~BUN/");
  return new URL(compiled ? "./store/sqlite/checkpoint-worker.ts" : "./checkpoint-worker.ts", import.meta.url)
    .href;
}

export function startCheckpointer(o: CheckpointerOptions): Checkpointer {
  const mb = (bytes: number) => `${Math.round(bytes / (1024 * 1024))} MB`;
  let worker: Worker | undefined;
  let ready = false;
  let stopped = false;
  let fellBack = false;
  let onStopped: (() => void) | undefined;
  let holdTimer: ReturnType<typeof setTimeout> | undefined;
  const release = () => {
    if (holdTimer === undefined) return;
    clearTimeout(holdTimer);
    holdTimer = undefined;
    o.writes?.release();
  };
  const fallBack = (problem: string) => {
    release();
    worker?.terminate();
    worker = undefined;
    if (stopped || fellBack) return;
    fellBack = true;
    o.db.run(`PRAGMA wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    o.onProblem(
      `the WAL checkpointer thread ${ready ? "stopped" : "did not start"} (${problem}); ` +
        "the database connection checkpoints on commit instead, which makes requests wait for the disk",
    );
  };
  try {
    worker = new Worker(o.workerUrl ?? defaultWorkerUrl());
  } catch (e) {
    fallBack(e instanceof Error ? e.message : String(e));
    return { stop: async () => {} };
  }
  const startTimer = setTimeout(
    () => fallBack(`no answer within ${o.startTimeoutMs ?? 10_000} ms`),
    o.startTimeoutMs ?? 10_000,
  );
  worker.addEventListener("error", (e) => {
    clearTimeout(startTimer);
    fallBack((e as ErrorEvent).message || "error");
  });
  worker.addEventListener("close", () => {
    clearTimeout(startTimer);
    if (!stopped && worker) fallBack("the thread exited");
  });
  worker.onmessage = (event: MessageEvent<FromCheckpointWorker>) => {
    const m = event.data;
    switch (m.type) {
      case "ready":
        clearTimeout(startTimer);
        ready = true;
        // The worker checkpoints from now on; the main connection no longer does it on commit.
        o.db.run("PRAGMA wal_autocheckpoint = 0");
        break;
      case "failed":
        clearTimeout(startTimer);
        fallBack(m.problem);
        break;
      case "failing":
        o.onProblem(
          `WAL checkpoints cannot complete: ${m.problem}; the WAL file is ${mb(m.walBytes)} and grows until they can`,
        );
        break;
      case "recovered":
        o.onProblem(undefined);
        break;
      case "hold":
        if (o.writes && !stopped && holdTimer === undefined) {
          o.writes.hold();
          holdTimer = setTimeout(release, o.maxHoldMs ?? 500);
        }
        // Answered even when not held, so that the worker goes on.
        worker?.postMessage({ type: "held" } satisfies ToCheckpointWorker);
        break;
      case "release":
        release();
        break;
      case "stopped":
        onStopped?.();
        break;
    }
  };
  const start: ToCheckpointWorker = {
    type: "start",
    path: o.path,
    tickMs: o.tickMs ?? 100,
    busyTimeoutMs: o.busyTimeoutMs ?? 500,
    policy: o.policy ?? DEFAULT_CHECKPOINT_POLICY,
    holdWrites: o.writes !== undefined,
  };
  worker.postMessage(start);
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        stopped = true;
        clearTimeout(startTimer);
        release();
        const running = worker;
        if (!running) return resolve();
        const done = () => {
          clearTimeout(timer);
          running.terminate();
          resolve();
        };
        const timer = setTimeout(done, 2000);
        onStopped = done;
        running.postMessage({ type: "stop" } satisfies ToCheckpointWorker);
      }),
  };
}
