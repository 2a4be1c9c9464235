/**
 * The key tables on PostgreSQL (replay_keys, itip_keys): the claims of src/store/sqlite/_key-claims.ts
 * in the same form. A claim is one `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE expired`: a
 * second transaction claiming a key that a first has just inserted waits on the primary key until
 * the first commits, then finds the key in force and changes nothing, so two messages never hold one
 * key however nodes interleave (READ COMMITTED; test/store/contract proves it with two connections).
 * Claims prune a few expired rows first, skipping rows another node is pruning.
 */
import { ItipCopyError, type ItipKeyClaims, type ReplayClaim, ReplayConflictError } from "../errors.ts";
import { changes, idArray, type Runner, rows } from "./_values.ts";

const PRUNE_PER_CLAIM = 16;

type Table = "replay_keys" | "itip_keys";

/** Deletes up to `limit` expired keys (a few before each claim; the pruner's batches); how many went. */
export function pruneKeys(q: Runner, table: Table, nowMs: number, limit = PRUNE_PER_CLAIM): Promise<number> {
  return changes(
    q,
    `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE expires_at <= $1
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [nowMs, limit],
  );
}

async function claim(
  q: Runner,
  table: Table,
  o: { key: string; messageId: number; expiresAt: number; nowMs: number },
): Promise<boolean> {
  const n = await changes(
    q,
    `INSERT INTO ${table} (key, message_id, expires_at) VALUES ($1, $2, $3)
      ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
      WHERE ${table}.expires_at <= $4`,
    [o.key, o.messageId, o.expiresAt, o.nowMs],
  );
  return n === 1;
}

export async function keyHolder(
  q: Runner,
  table: Table,
  o: { key: string; nowMs: number },
): Promise<number | undefined> {
  const [r] = await rows(q, `SELECT message_id FROM ${table} WHERE key = $1 AND expires_at > $2`, [
    o.key,
    o.nowMs,
  ]);
  return r ? Number(r.message_id) : undefined;
}

/** Claims the replay key for `messageId` in the caller's transaction; ReplayConflictError when held. */
export async function claimReplayKey(
  q: Runner,
  o: ReplayClaim & { messageId: number; nowMs: number },
): Promise<void> {
  await pruneKeys(q, "replay_keys", o.nowMs);
  if (!(await claim(q, "replay_keys", o))) throw new ReplayConflictError(o.key);
}

/**
 * Claims the iTIP keys for `messageId` in the caller's transaction; for each recipient whose key
 * another message holds in force, that message's id (read after the claim waited, so committed).
 */
export async function claimItipKeys(
  q: Runner,
  o: ItipKeyClaims & { messageId: number; nowMs: number },
): Promise<Map<string, number>> {
  await pruneKeys(q, "itip_keys", o.nowMs);
  const held = new Map<string, number>();
  for (const { recipient, key } of o.keys) {
    if (await claim(q, "itip_keys", { key, messageId: o.messageId, expiresAt: o.expiresAt, nowMs: o.nowMs }))
      continue;
    const holder = await keyHolder(q, "itip_keys", { key, nowMs: o.nowMs });
    if (holder !== undefined && holder !== o.messageId) held.set(recipient, holder);
  }
  return held;
}

export { ItipCopyError };

/** Counts one more copy of these messages sent again by their peer. */
export async function noteResent(
  q: Runner,
  o: { messageIds: readonly number[]; nowMs: number },
): Promise<void> {
  if (o.messageIds.length === 0) return;
  await changes(
    q,
    "UPDATE messages SET resends = resends + 1, last_resent_at = $2 WHERE id = ANY($1::bigint[])",
    [idArray([...new Set(o.messageIds)]), o.nowMs],
  );
}
