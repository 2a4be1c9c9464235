/**
 * When the checkpointer (checkpointer.ts) checkpoints, and how: a pure function of what it saw.
 *
 * SQLite's WAL only starts over from its first frame when a checkpoint has copied every frame back
 * into the database file and no reader still needs them (sqlite.org/wal.html §"Avoiding Excessively
 * Large WAL Files"). A PASSIVE checkpoint never waits for anybody, so under a steady stream of
 * commits it is always a little behind and the WAL grows without end (measured: 2 GB in 20 s at
 * about 1,300 stored messages a second). So:
 *
 * - after every round in which something was committed, a PASSIVE checkpoint copies what it can
 *   without holding anybody up, which keeps the backlog small;
 * - once the frames written since the WAL last started over pass `walLimitBytes`, a RESTART
 *   checkpoint: it waits (up to the worker's busy timeout) for the writer and for readers of older
 *   snapshots, copies the rest, and the next write starts the WAL over from its first frame, in the
 *   file as it is. Writers wait meanwhile, briefly, since the PASSIVE rounds did most of the copying.
 *   Not TRUNCATE: cutting the file (measured: an ftruncate of 19 ms, then a sync) made every writer
 *   wait 33-65 ms in SQLite's busy handler (sleeps of 1, 2, 5, 10 and 15 ms) about once a second at
 *   1,100 requests a second, and the writes after it extend the file again, which costs more than
 *   overwriting it. The file stays at about the limit, which bounds it as well;
 * - when nothing has been committed for `quietMs`, a TRUNCATE, so an idle server's WAL does not
 *   keep its peak size;
 * - a RESTART or TRUNCATE that could not complete is retried after a growing pause (0.5 s, 1 s, 2 s ... 10 s),
 *   so that a reader holding an old snapshot does not make writers wait over and over; after
 *   `failuresBeforeAlarm` of them in a row the checkpointer is failing, and says so.
 */

export type CheckpointMode = "none" | "passive" | "restart" | "truncate";

export interface CheckpointPolicy {
  /** The bytes written to the WAL since it last started over that call for a RESTART checkpoint. */
  readonly walLimitBytes: number;
  /** No commit for this long: TRUNCATE an idle WAL. */
  readonly quietMs: number;
  readonly failuresBeforeAlarm: number;
}

/**
 * 16 MB: four times as many holds as at 64 MB, but each one shorter (at 1,300 requests a second:
 * 1.7 ms at the median and 7.9 at p90, against 2.7 and 12.7), and the p99 follows the long ones.
 * fixed-rate.sh at that rate (half saturation), p99 of the 10 s windows before the first metadata
 * pruning: 64 MB median 11.6 ms (3 runs), 16 MB 7.5 (4 runs), 8 MB 6.7, 256 MB 58. The cost: at
 * saturation 3-8% fewer requests a second, the worker's extra passes sharing a pinned core
 * (BENCHMARKS.md, "p99 at half saturation", fourth pass).
 */
export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = {
  walLimitBytes: 16 * 1024 * 1024,
  quietMs: 2000,
  failuresBeforeAlarm: 3,
};

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

export interface CheckpointState {
  /** PRAGMA data_version at the last round: it changes when another connection commits. */
  readonly dataVersion: number;
  /** When a commit was last seen. */
  readonly lastCommitMs: number;
  /** A TRUNCATE has emptied the WAL since the last commit. */
  readonly truncated: boolean;
  /** TRUNCATE checkpoints in a row that could not complete. */
  readonly failures: number;
  /** No TRUNCATE before this time (after a failure). */
  readonly retryAtMs: number;
}

export const initialCheckpointState = (nowMs: number): CheckpointState => ({
  dataVersion: -1,
  lastCommitMs: nowMs,
  truncated: false,
  failures: 0,
  retryAtMs: 0,
});

/**
 * What to do in this round, and the state after seeing `dataVersion`, the WAL file's size
 * (`walBytes`) and the bytes written to it since it last started over (`walUsedBytes`; the file's
 * size when not known).
 */
export function planCheckpoint(
  state: CheckpointState,
  seen: { dataVersion: number; walBytes: number; walUsedBytes?: number; nowMs: number },
  policy: CheckpointPolicy = DEFAULT_CHECKPOINT_POLICY,
): { mode: CheckpointMode; state: CheckpointState } {
  const committed = seen.dataVersion !== state.dataVersion;
  const next: CheckpointState = committed
    ? { ...state, dataVersion: seen.dataVersion, lastCommitMs: seen.nowMs, truncated: false }
    : state;
  if (seen.walBytes === 0) return { mode: "none", state: next };
  const mayBlock = seen.nowMs >= next.retryAtMs;
  if (mayBlock && (seen.walUsedBytes ?? seen.walBytes) >= policy.walLimitBytes)
    return { mode: "restart", state: next };
  if (committed) return { mode: "passive", state: next };
  if (mayBlock && !next.truncated && seen.nowMs - next.lastCommitMs >= policy.quietMs)
    return { mode: "truncate", state: next };
  return { mode: "none", state: next };
}

/**
 * The state after a RESTART or TRUNCATE (`mode`) checkpoint completed (`ok`) or not. A RESTART
 * leaves the file at its size: an idle server still cuts it when quiet.
 */
export function afterTruncate(
  state: CheckpointState,
  ok: boolean,
  nowMs: number,
  mode: "restart" | "truncate" = "truncate",
): CheckpointState {
  if (ok) return { ...state, truncated: mode === "truncate", failures: 0, retryAtMs: 0 };
  const failures = state.failures + 1;
  return {
    ...state,
    failures,
    retryAtMs: nowMs + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1)),
  };
}

/** One PASSIVE checkpoint's answer: the frames in the WAL and those copied back, in all. */
export interface PassiveResult {
  readonly log: number;
  readonly checkpointed: number;
}

/** A catch-up pass that copied fewer frames than this is close enough behind the writer. */
export const CAUGHT_UP_FRAMES = 64;
/** Catch-up passes at most. */
export const MAX_CATCH_UP_PASSES = 5;

/**
 * Before writes are held for a RESTART: PASSIVE checkpoints one after the other (`passive`), until
 * one copied fewer than CAUGHT_UP_FRAMES frames or MAX_CATCH_UP_PASSES were made. Each pass copies
 * what the writer wrote during the one before, and copying is several times faster than writing,
 * so what is left shrinks from a whole tick's frames (100 ms of commits) to about a millisecond's,
 * and the hold, in which the RESTART copies the rest, is that much shorter (measured with
 * fixed-rate.sh at 1,300 requests a second: a hold's median 9-23 ms with one pass, 2-4 ms with
 * this; BENCHMARKS.md). Returns the last pass's answer and the passes made; stops early when a pass
 * fails to answer.
 */
export function catchUp(passive: () => PassiveResult | undefined): {
  last?: PassiveResult;
  passes: number;
} {
  let last: PassiveResult | undefined;
  for (let passes = 1; ; passes++) {
    const row = passive();
    if (!row) return { last, passes };
    const copied = last === undefined ? Number.POSITIVE_INFINITY : row.checkpointed - last.checkpointed;
    last = row;
    if (copied < CAUGHT_UP_FRAMES || passes >= MAX_CATCH_UP_PASSES) return { last, passes };
  }
}
