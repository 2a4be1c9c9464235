/**
 * The write /readyz makes to know the database takes writes: one settings row, rewritten in its own
 * IMMEDIATE transaction (so it also finds a write lock held too long, or a full disk). The row is
 * a few bytes; /readyz makes at most one such write a second (ops/health-checks.ts).
 */
import type { Database } from "bun:sqlite";
import { setSetting } from "./settings.ts";

export const PROBE_SETTING = "health.probed-at";

export function probeWrite(db: Database, nowMs: number): void {
  db.transaction(() => setSetting(db, PROBE_SETTING, String(nowMs))).immediate();
}
