/**
 * The itip_keys table: which message holds each recipient's copy of an iTIP revision, so that a peer
 * that sends the same revision again under a new iSchedule-Message-ID (CalendarServer does, see
 * src/inbound/resends.ts) gets it delivered once. The key (built in src/inbound/resends.ts) is the
 * primary key, claimed in the same transaction as the message, like replay_keys (replays.ts): two
 * messages can never hold one key at once however requests interleave, and a claim is a write, never
 * a read followed by a write. The holder of a key a claim finds taken is read in the same
 * transaction, which holds SQLite's write lock, so it cannot change in between. An expired key is
 * taken over by the next claim, and claims prune a few expired rows each.
 */
import type { Database } from "bun:sqlite";
import { ItipCopyError, type ItipKeyClaims } from "../errors.ts";
import { keyClaims } from "./_key-claims.ts";
import { perDatabase } from "./_per-database.ts";

export type { ItipKeyClaims };
export { ItipCopyError };

const keys = keyClaims("itip_keys");

const statements = perDatabase((db) => ({
  resent: db.query<never, { ids: string; now: number }>(
    `UPDATE messages SET resends = resends + 1, last_resent_at = $now
      WHERE id IN (SELECT value FROM json_each($ids))`,
  ),
}));

/**
 * Claims the keys for `messageId`; the caller holds the transaction. Returns, for each recipient
 * whose key another message holds while it is in force, that message's id.
 */
export function claimItipKeys(
  db: Database,
  o: ItipKeyClaims & { messageId: number; nowMs: number },
): Map<string, number> {
  keys.prune(db, o.nowMs);
  const held = new Map<string, number>();
  for (const { recipient, key } of o.keys) {
    if (keys.claim(db, { key, messageId: o.messageId, expiresAt: o.expiresAt, nowMs: o.nowMs })) continue;
    const holder = keys.holder(db, { key, nowMs: o.nowMs })!;
    // Two Recipient values that differ only in case are one calendar user: the first one claimed it.
    if (holder !== o.messageId) held.set(recipient, holder);
  }
  return held;
}

/** Counts one more copy of these messages sent again by their peer (shown on their console page). */
export function noteResent(db: Database, o: { messageIds: readonly number[]; nowMs: number }): void {
  if (o.messageIds.length === 0) return;
  statements(db).resent.run({ ids: JSON.stringify([...new Set(o.messageIds)]), now: o.nowMs });
}
