/**
 * The write /readyz makes to know the database takes writes: one settings row, rewritten in its own
 * IMMEDIATE transaction (so it also finds a write lock held too long). The row is a few bytes; /readyz
 * makes at most one such write a second (ops/health-checks.ts).
 *
 * A full disk does not always refuse that write: SQLite reuses the WAL's frames after a checkpoint,
 * so a one-page write goes through where the next message, which needs new pages, fails
 * (SQLITE_FULL). So the probe also fails when the data folder's file system has less than
 * `minFreeBytes` left: the database cannot grow, and the next request would not be stored.
 */
import type { Database } from "bun:sqlite";
import { freeBytesIn } from "./compaction.ts";
import { setSetting } from "./settings.ts";

export const PROBE_SETTING = "health.probed-at";

/** Less room than this for the database and its WAL counts as a full disk: a few messages' worth. */
export const MIN_FREE_BYTES = 1024 * 1024;

export function probeWrite(
  db: Database,
  nowMs: number,
  room?: { dir: string; minFreeBytes?: number; freeBytes?: (dir: string) => number },
): void {
  if (room) {
    const free = (room.freeBytes ?? freeBytesIn)(room.dir);
    if (free < (room.minFreeBytes ?? MIN_FREE_BYTES))
      throw new Error(`the file system of the database has ${free} bytes free`);
  }
  db.transaction(() => setSetting(db, PROBE_SETTING, String(nowMs))).immediate();
}
