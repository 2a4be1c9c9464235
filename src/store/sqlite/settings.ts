/** The settings table: small named values isched keeps between runs (capability serial, tokens). */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";
import { clearSessions } from "./console-sessions.ts";

const statements = perDatabase((db) => ({
  get: db.query<{ value: string }, { key: string }>("SELECT value FROM settings WHERE key = $key"),
  set: db.query<never, { key: string; value: string }>(
    "INSERT INTO settings (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  ),
}));

export function getSetting(db: Database, key: string): string | undefined {
  return statements(db).get.get({ key })?.value;
}

export function setSetting(db: Database, key: string, value: string): void {
  statements(db).set.run({ key, value });
}

/**
 * The capabilities' serial number (draft §9.2.1.1), kept between runs: it moves on whenever what the
 * capabilities say (their fingerprint) changes, so peers refetch them (draft §8.3).
 */
export function capabilitiesSerial(db: Database, fingerprint: string): number {
  return db
    .transaction(() => {
      let serial = Number(getSetting(db, "capabilities.serial") ?? "0");
      if (getSetting(db, "capabilities.fingerprint") !== fingerprint || serial < 1) {
        serial += 1;
        setSetting(db, "capabilities.serial", String(serial));
        setSetting(db, "capabilities.fingerprint", fingerprint);
      }
      return serial;
    })
    .immediate();
}

/** Stores the admin password's hash, deletes `voidSettings` and ends every session, in one transaction. */
export function setAdminPasswordHash(
  db: Database,
  o: { setting: string; hash: string; voidSettings: readonly string[] },
): void {
  db.transaction(() => {
    setSetting(db, o.setting, o.hash);
    for (const key of o.voidSettings) db.query("DELETE FROM settings WHERE key = ?").run(key);
    clearSessions(db);
  }).immediate();
}
