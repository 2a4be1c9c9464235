/**
 * The replay_keys table: one row per inbound message that a replay must be answered from, keyed by
 * what makes two requests the same (signing domain, message id, body hash: built in
 * src/inbound/replays.ts), kept until the signature could no longer be verified. The key is the
 * primary key, so two messages can never hold one key at once, however requests interleave: the
 * row is claimed in the same transaction as its message, and a claim on a key still in force fails
 * the whole transaction. An expired row is taken over by the next claim, and claims prune a few
 * expired rows each, so the table stays as small as the traffic of one window.
 *
 * message_id has no foreign key: messages with a replay key are accepted ones, which isched keeps.
 */
import type { Database } from "bun:sqlite";
import { type ReplayClaim, ReplayConflictError } from "../errors.ts";
import { keyClaims } from "./_key-claims.ts";

export type { ReplayClaim };
export { ReplayConflictError };

const keys = keyClaims("replay_keys");

/**
 * Records that `messageId` answers for `claim.key`; the caller holds the transaction. Throws
 * ReplayConflictError when another message holds the key and it has not expired.
 */
export function claimReplayKey(db: Database, o: ReplayClaim & { messageId: number; nowMs: number }): void {
  keys.prune(db, o.nowMs);
  if (!keys.claim(db, o)) throw new ReplayConflictError(o.key);
}

/** The message that answers for `key`, while the key is in force. */
export function findReplay(db: Database, o: { key: string; nowMs: number }): number | undefined {
  return keys.holder(db, o);
}
