/**
 * The console's sessions: one row per signed-in browser, keyed by the SHA-256 of its cookie value
 * (the cookie itself is never stored), with when it began and when it was last used.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export interface SessionRow {
  idHash: string;
  createdAt: number;
  lastSeenAt: number;
}

const statements = perDatabase((db) => ({
  get: db.query<SessionRow, { id: string }>(
    "SELECT id_hash AS idHash, created_at AS createdAt, last_seen_at AS lastSeenAt FROM console_sessions WHERE id_hash = $id",
  ),
  insert: db.query<never, { id: string; at: number }>(
    "INSERT INTO console_sessions (id_hash, created_at, last_seen_at) VALUES ($id, $at, $at)",
  ),
  touch: db.query<never, { id: string; at: number }>(
    "UPDATE console_sessions SET last_seen_at = $at WHERE id_hash = $id",
  ),
  delete: db.query<never, { id: string }>("DELETE FROM console_sessions WHERE id_hash = $id"),
  expire: db.query<never, { seenBefore: number; createdBefore: number }>(
    "DELETE FROM console_sessions WHERE last_seen_at < $seenBefore OR created_at < $createdBefore",
  ),
  count: db.query<{ n: number }, []>("SELECT count(*) AS n FROM console_sessions"),
  dropOldest: db.query<never, { keep: number }>(
    `DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions
      ORDER BY last_seen_at DESC LIMIT -1 OFFSET $keep)`,
  ),
  clear: db.query<never, []>("DELETE FROM console_sessions"),
}));

export const getSession = (db: Database, idHash: string): SessionRow | undefined =>
  statements(db).get.get({ id: idHash }) ?? undefined;

export const insertSession = (db: Database, idHash: string, atMs: number): void => {
  statements(db).insert.run({ id: idHash, at: atMs });
};

export const touchSession = (db: Database, idHash: string, atMs: number): void => {
  statements(db).touch.run({ id: idHash, at: atMs });
};

export const deleteSession = (db: Database, idHash: string): void => {
  statements(db).delete.run({ id: idHash });
};

/** Removes the sessions idle since before `seenBefore` or begun before `createdBefore`. */
export const expireSessions = (db: Database, o: { seenBefore: number; createdBefore: number }): void => {
  statements(db).expire.run(o);
};

export const countSessions = (db: Database): number => statements(db).count.get()!.n;

/** Keeps the `keep` most recently used sessions and removes the rest. */
export const keepNewestSessions = (db: Database, keep: number): void => {
  statements(db).dropOldest.run({ keep });
};

export const clearSessions = (db: Database): void => {
  statements(db).clear.run();
};
