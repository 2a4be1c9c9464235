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
  initialCheckpointState,
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

/** [busy, log, checkpointed] of PRAGMA wal_checkpoint: busy is 1 when it could not complete. */
function checkpoint(mode: "PASSIVE" | "RESTART" | "TRUNCATE"): boolean {
  const row = db!.query<{ busy: number; log: number }, []>(`PRAGMA wal_checkpoint(${mode})`).get();
  const ok = row?.busy === 0;
  if (row) usedFrames = mode !== "PASSIVE" && ok ? 0 : row.log;
  return ok;
}

function round(path: string, policy: CheckpointPolicy): void {
  const now = Date.now();
  let problem: string | undefined;
  try {
    const dataVersion = db!.query<{ data_version: number }, []>("PRAGMA data_version").get()!.data_version;
    const pageBytes = db!.query<{ page_size: number }, []>("PRAGMA page_size").get()!.page_size;
    const seen = {
      dataVersion,
      walBytes: walBytes(path),
      walUsedBytes: usedFrames === undefined ? undefined : usedFrames * pageBytes,
      nowMs: now,
    };
    const plan = planCheckpoint(state, seen, policy);
    state = plan.state;
    if (plan.mode === "passive") checkpoint("PASSIVE");
    if (plan.mode !== "truncate" && plan.mode !== "restart") return;
    const ok = checkpoint(plan.mode === "restart" ? "RESTART" : "TRUNCATE");
    state = afterTruncate(state, ok, now, plan.mode);
    if (!ok)
      problem =
        "a reader keeps an old snapshot of the database open (a long query, a backup, another program)";
  } catch (e) {
    state = afterTruncate(state, false, now);
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem === undefined && failing && state.failures === 0) {
    failing = false;
    tell({ type: "recovered", walBytes: walBytes(path) });
  }
  if (problem !== undefined && !failing && state.failures >= policy.failuresBeforeAlarm) {
    failing = true;
    tell({ type: "failing", problem, walBytes: walBytes(path) });
  }
}

self.onmessage = (event: MessageEvent<ToCheckpointWorker>) => {
  const m = event.data;
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
  tell({ type: "ready" });
  timer = setInterval(() => round(m.path, m.policy), m.tickMs);
};
