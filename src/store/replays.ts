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
import { perDatabase } from "./_per-database.ts";

export interface ReplayClaim {
  key: string;
  /** When the key stops answering for its message (ms). */
  expiresAt: number;
}

/** A claim on a key another message holds: the caller's transaction is rolled back. */
export class ReplayConflictError extends Error {
  override readonly name = "ReplayConflictError";
  constructor(readonly key: string) {
    super("another message holds this replay key");
  }
}

const PRUNE_PER_CLAIM = 16;

const statements = perDatabase((db) => ({
  claim: db.query<never, { key: string; messageId: number; expiresAt: number; now: number }>(
    `INSERT INTO replay_keys (key, message_id, expires_at) VALUES ($key, $messageId, $expiresAt)
      ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
      WHERE replay_keys.expires_at <= $now`,
  ),
  prune: db.query<never, { now: number; limit: number }>(
    `DELETE FROM replay_keys WHERE key IN (SELECT key FROM replay_keys INDEXED BY replay_keys_expiry
      WHERE expires_at <= $now ORDER BY expires_at LIMIT $limit)`,
  ),
  find: db.query<{ messageId: number }, { key: string; now: number }>(
    "SELECT message_id AS messageId FROM replay_keys WHERE key = $key AND expires_at > $now",
  ),
}));

/**
 * Records that `messageId` answers for `claim.key`; the caller holds the transaction. Throws
 * ReplayConflictError when another message holds the key and it has not expired.
 */
export function claimReplayKey(db: Database, o: ReplayClaim & { messageId: number; nowMs: number }): void {
  const s = statements(db);
  s.prune.run({ now: o.nowMs, limit: PRUNE_PER_CLAIM });
  const changes = s.claim.run({
    key: o.key,
    messageId: o.messageId,
    expiresAt: o.expiresAt,
    now: o.nowMs,
  }).changes;
  if (changes === 0) throw new ReplayConflictError(o.key);
}

/** The message that answers for `key`, while the key is in force. */
export function findReplay(db: Database, o: { key: string; nowMs: number }): number | undefined {
  return statements(db).find.get({ key: o.key, now: o.nowMs })?.messageId;
}
