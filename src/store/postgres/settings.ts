/**
 * The settings and console_sessions tables on PostgreSQL (src/store/sqlite/settings.ts and
 * console-sessions.ts). The capabilities serial moves on in one transaction that first locks the
 * serial's row (or, before it exists, the fingerprint's key under an advisory lock), so two nodes
 * starting together bump it once, not twice or zero times (docs/store-interface.md, races).
 */
import type { SessionRow } from "../store.ts";
import { changes, type Runner, rows, withNumbers } from "./_values.ts";

/** The advisory lock of the capabilities serial ("caps"). */
const SERIAL_LOCK = 0x63617073;

export async function getSetting(q: Runner, key: string): Promise<string | undefined> {
  const [r] = await rows(q, "SELECT value FROM settings WHERE key = $1", [key]);
  return r ? String(r.value) : undefined;
}

export async function setSetting(q: Runner, key: string, value: string): Promise<void> {
  await changes(
    q,
    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [key, value],
  );
}

/** The capabilities' serial (draft §9.2.1.1), moved on when their fingerprint changed. */
export function capabilitiesSerial(sql: Runner, fingerprint: string): Promise<number> {
  return sql.begin(async (tx) => {
    await tx.unsafe("SELECT pg_advisory_xact_lock($1)", [SERIAL_LOCK]);
    let serial = Number((await getSetting(tx, "capabilities.serial")) ?? "0");
    if ((await getSetting(tx, "capabilities.fingerprint")) !== fingerprint || serial < 1) {
      serial += 1;
      await setSetting(tx, "capabilities.serial", String(serial));
      await setSetting(tx, "capabilities.fingerprint", fingerprint);
    }
    return serial;
  });
}

/** Stores the admin password's hash, deletes `voidSettings` and ends every session, in one transaction. */
export async function setAdminPasswordHash(
  sql: Runner,
  o: { setting: string; hash: string; voidSettings: readonly string[] },
): Promise<void> {
  await sql.begin(async (tx) => {
    await setSetting(tx, o.setting, o.hash);
    await changes(tx, "DELETE FROM settings WHERE key = ANY($1::text[])", [
      `{${o.voidSettings.map((k) => JSON.stringify(k)).join(",")}}`,
    ]);
    await changes(tx, "DELETE FROM console_sessions");
  });
}

export const sessions = {
  async get(q: Runner, idHash: string): Promise<SessionRow | undefined> {
    const [r] = await rows(
      q,
      `SELECT id_hash AS "idHash", created_at AS "createdAt", last_seen_at AS "lastSeenAt"
        FROM console_sessions WHERE id_hash = $1`,
      [idHash],
    );
    return r ? withNumbers<SessionRow>(r, ["createdAt", "lastSeenAt"]) : undefined;
  },
  insert: (q: Runner, idHash: string, atMs: number) =>
    changes(q, "INSERT INTO console_sessions (id_hash, created_at, last_seen_at) VALUES ($1, $2, $2)", [
      idHash,
      atMs,
    ]),
  touch: (q: Runner, idHash: string, atMs: number) =>
    changes(q, "UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1", [idHash, atMs]),
  delete: (q: Runner, idHash: string) =>
    changes(q, "DELETE FROM console_sessions WHERE id_hash = $1", [idHash]),
  expire: (q: Runner, o: { seenBefore: number; createdBefore: number }) =>
    changes(q, "DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2", [
      o.seenBefore,
      o.createdBefore,
    ]),
  async count(q: Runner): Promise<number> {
    const [r] = await rows(q, "SELECT count(*)::int AS n FROM console_sessions");
    return r!.n as number;
  },
  keepNewest: (q: Runner, keep: number) =>
    changes(
      q,
      `DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions
        ORDER BY last_seen_at DESC OFFSET $1)`,
      [keep],
    ),
  clear: (q: Runner) => changes(q, "DELETE FROM console_sessions"),
};
