/**
 * The statements of a key table (replay_keys, itip_keys): a key held by one message until it expires.
 * A claim is one upsert that takes the key only when it is free or expired, so two messages can never
 * hold one key however requests interleave; each claim prunes a few expired rows first, so a table
 * stays as small as the traffic of one window.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

const PRUNE_PER_CLAIM = 16;

function statementsOf(table: "replay_keys" | "itip_keys") {
  return perDatabase((db: Database) => ({
    claim: db.query<never, { key: string; messageId: number; expiresAt: number; now: number }>(
      `INSERT INTO ${table} (key, message_id, expires_at) VALUES ($key, $messageId, $expiresAt)
        ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
        WHERE ${table}.expires_at <= $now`,
    ),
    prune: db.query<never, { now: number; limit: number }>(
      `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} INDEXED BY ${table}_expiry
        WHERE expires_at <= $now ORDER BY expires_at LIMIT $limit)`,
    ),
    holder: db.query<{ messageId: number }, { key: string; now: number }>(
      `SELECT message_id AS messageId FROM ${table} WHERE key = $key AND expires_at > $now`,
    ),
  }));
}

export interface KeyClaims {
  /**
   * Prunes expired keys, a few by default (call once before a transaction's claims), or up to
   * `limit` (the retention pruner's batches); returns how many went.
   */
  prune(db: Database, nowMs: number, limit?: number): number;
  /** Takes `key` for `messageId` unless another message holds it in force; true when taken. */
  claim(db: Database, o: { key: string; messageId: number; expiresAt: number; nowMs: number }): boolean;
  /** The message that holds `key` while it is in force. */
  holder(db: Database, o: { key: string; nowMs: number }): number | undefined;
}

export function keyClaims(table: "replay_keys" | "itip_keys"): KeyClaims {
  const statements = statementsOf(table);
  return {
    prune: (db, nowMs, limit = PRUNE_PER_CLAIM) => statements(db).prune.run({ now: nowMs, limit }).changes,
    claim: (db, o) =>
      statements(db).claim.run({ key: o.key, messageId: o.messageId, expiresAt: o.expiresAt, now: o.nowMs })
        .changes === 1,
    holder: (db, o) => statements(db).holder.get({ key: o.key, now: o.nowMs })?.messageId,
  };
}
