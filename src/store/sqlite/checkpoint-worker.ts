/**
 * The checkpointer's thread (see checkpointer.ts): its own connection to the database file, folding
 * the WAL back into the database as checkpoint-plan.ts decides, every tick. The sync a checkpoint
 * needs happens here, not on the thread that answers requests. It tells the main thread when it is
 * ready, when checkpoints keep failing and when they work again.
 */
import { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import {
  afterTruncate,
  type CheckpointPolicy,
  type CheckpointState,
  catchUp,
  initialCheckpointState,
  type PassiveResult,
  planCheckpoint,
} from "./checkpoint-plan.ts";
import type { FromCheckpointWorker, ToCheckpointWorker } from "./checkpointer.ts";

declare const self: Worker;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
let state: CheckpointState = initialCheckpointState(Date.now());
let failing = false;
/**
 * Frames written to the WAL since it last started over, as the last checkpoint counted them
 * (undefined before the first); 0 after a RESTART or TRUNCATE that completed.
 */
let usedFrames: number | undefined;

const tell = (m: FromCheckpointWorker) => self.postMessage(m);

function walBytes(path: string): number {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0;
  }
}

/**
 * Runs PRAGMA wal_checkpoint(mode) and keeps usedFrames; its answer is [busy, log, checkpointed],
 * busy being 1 when it could not complete.
 */
function checkpointAnswer(
  mode: "PASSIVE" | "RESTART" | "TRUNCATE",
): (PassiveResult & { busy: number }) | undefined {
  const row = db!.query<PassiveResult & { busy: number }, []>(`PRAGMA wal_checkpoint(${mode})`).get();
  if (row) usedFrames = mode !== "PASSIVE" && row.busy === 0 ? 0 : row.log;
  return row ?? undefined;
}

/** A checkpoint that completed. */
const checkpoint = (mode: "PASSIVE" | "RESTART" | "TRUNCATE"): boolean => checkpointAnswer(mode)?.busy === 0;

/** How long a RESTART waits for the main thread to say it holds its writes before asking again. */
const HOLD_ANSWER_MS = 1000;
/** The main thread holds its writes when asked (checkpointer.ts). */
let holdWrites = false;
/** When this worker asked the main thread to hold its writes for a RESTART, while it waits. */
let holdAskedAtMs: number | undefined;

function round(path: string, policy: CheckpointPolicy): void {
  const now = Date.now();
  if (holdAskedAtMs !== undefined) {
    if (now - holdAskedAtMs < HOLD_ANSWER_MS) return;
    // No answer (the main thread was busy that long, or it is stopping): plan again, which asks again.
    holdAskedAtMs = undefined;
  }
  let plan: ReturnType<typeof planCheckpoint>;
  try {
    const dataVersion = db!.query<{ data_version: number }, []>("PRAGMA data_version").get()!.data_version;
    const pageBytes = db!.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    const seen = {
      dataVersion,
      walBytes: walBytes(path),
      walUsedBytes: usedFrames === undefined ? undefined : usedFrames * pageBytes,
      nowMs: now,
    };
    plan = planCheckpoint(state, seen, policy);
    state = plan.state;
    if (plan.mode === "passive") checkpoint("PASSIVE");
    if (plan.mode === "restart" && holdWrites) {
      // Copy what can be copied without the writer lock first, until little is left, so that the
      // hold is short (checkpoint-plan.ts, catchUp).
      catchUp(() => checkpointAnswer("PASSIVE"));
      holdAskedAtMs = now;
      tell({ type: "hold" });
      return;
    }
  } catch (e) {
    state = afterTruncate(state, false, now);
    report(path, policy, e instanceof Error ? e.message : String(e));
    return;
  }
  if (plan.mode === "truncate" || plan.mode === "restart") blocking(path, policy, plan.mode);
}

/** A RESTART or TRUNCATE checkpoint, which holds the writer lock and waits for readers. */
function blocking(path: string, policy: CheckpointPolicy, mode: "restart" | "truncate"): void {
  const now = Date.now();
  let problem: string | undefined;
  try {
    const ok = checkpoint(mode === "restart" ? "RESTART" : "TRUNCATE");
    state = afterTruncate(state, ok, now, mode);
    if (!ok)
      problem =
        "a reader keeps an old snapshot of the database open (a long query, a backup, another program)";
  } catch (e) {
    state = afterTruncate(state, false, now);
    problem = e instanceof Error ? e.message : String(e);
  }
  report(path, policy, problem);
}

/** Tells the main thread when checkpoints start failing (`problem`) and when they work again. */
function report(path: string, policy: CheckpointPolicy, problem: string | undefined): void {
  if (problem === undefined && failing && state.failures === 0) {
    failing = false;
    tell({ type: "recovered", walBytes: walBytes(path) });
  }
  if (problem !== undefined && !failing && state.failures >= policy.failuresBeforeAlarm) {
    failing = true;
    tell({ type: "failing", problem, walBytes: walBytes(path) });
  }
}

let started: { path: string; policy: CheckpointPolicy } | undefined;

self.onmessage = (event: MessageEvent<ToCheckpointWorker>) => {
  const m = event.data;
  if (m.type === "held") {
    // The main thread holds its writes: nobody holds the writer lock, so the RESTART need not wait.
    if (holdAskedAtMs !== undefined && started) {
      holdAskedAtMs = undefined;
      blocking(started.path, started.policy, "restart");
    }
    tell({ type: "release" });
    return;
  }
  if (m.type === "stop") {
    clearInterval(timer);
    try {
      db?.run("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      // The main connection folds what is left when it closes.
    }
    db?.close();
    tell({ type: "stopped" });
    return;
  }
  try {
    db = new Database(m.path, { readwrite: true });
    // How long a RESTART or TRUNCATE checkpoint may wait for the writer and for readers; writers
    // wait as long.
    db.run(`PRAGMA busy_timeout = ${m.busyTimeoutMs}`);
    db.query("PRAGMA data_version").get();
  } catch (e) {
    tell({ type: "failed", problem: e instanceof Error ? e.message : String(e) });
    return;
  }
  holdWrites = m.holdWrites;
  started = { path: m.path, policy: m.policy };
  tell({ type: "ready" });
  timer = setInterval(() => round(m.path, m.policy), m.tickMs);
};
