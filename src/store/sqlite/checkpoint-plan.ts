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
 * - once the WAL file passes `walLimitBytes`, a TRUNCATE checkpoint: it waits (up to the worker's
 *   busy timeout) for the writer and for readers of older snapshots, copies the rest, and cuts the
 *   file to zero bytes. Writers wait meanwhile, briefly, since the PASSIVE rounds did most of the
 *   copying;
 * - when nothing has been committed for `quietMs`, a TRUNCATE too, so an idle server's WAL does not
 *   keep its peak size;
 * - a TRUNCATE that could not complete is retried after a growing pause (0.5 s, 1 s, 2 s ... 10 s),
 *   so that a reader holding an old snapshot does not make writers wait over and over; after
 *   `failuresBeforeAlarm` of them in a row the checkpointer is failing, and says so.
 */

export type CheckpointMode = "none" | "passive" | "truncate";

export interface CheckpointPolicy {
  /** The WAL size that calls for a TRUNCATE checkpoint. */
  readonly walLimitBytes: number;
  /** No commit for this long: TRUNCATE an idle WAL. */
  readonly quietMs: number;
  readonly failuresBeforeAlarm: number;
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = {
  walLimitBytes: 64 * 1024 * 1024,
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

/** What to do in this round, and the state after seeing `dataVersion` and `walBytes`. */
export function planCheckpoint(
  state: CheckpointState,
  seen: { dataVersion: number; walBytes: number; nowMs: number },
  policy: CheckpointPolicy = DEFAULT_CHECKPOINT_POLICY,
): { mode: CheckpointMode; state: CheckpointState } {
  const committed = seen.dataVersion !== state.dataVersion;
  const next: CheckpointState = committed
    ? { ...state, dataVersion: seen.dataVersion, lastCommitMs: seen.nowMs, truncated: false }
    : state;
  if (seen.walBytes === 0) return { mode: "none", state: next };
  const mayBlock = seen.nowMs >= next.retryAtMs;
  if (mayBlock && seen.walBytes >= policy.walLimitBytes) return { mode: "truncate", state: next };
  if (committed) return { mode: "passive", state: next };
  if (mayBlock && !next.truncated && seen.nowMs - next.lastCommitMs >= policy.quietMs)
    return { mode: "truncate", state: next };
  return { mode: "none", state: next };
}

/** The state after a TRUNCATE checkpoint completed (`ok`) or not. */
export function afterTruncate(state: CheckpointState, ok: boolean, nowMs: number): CheckpointState {
  if (ok) return { ...state, truncated: true, failures: 0, retryAtMs: 0 };
  const failures = state.failures + 1;
  return {
    ...state,
    failures,
    retryAtMs: nowMs + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (failures - 1)),
  };
}
