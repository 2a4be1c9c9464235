/**
 * Making a database able to shrink. SQLite gives free pages back to the file system only in
 * `auto_vacuum = INCREMENTAL` (or FULL) mode, and that mode can only be chosen before the first
 * table is made or by rebuilding the file (sqlite.org/pragma.html#pragma_auto_vacuum). isched's new
 * databases are made in it (database.ts); this converts one made before.
 *
 * Not with VACUUM in place: on a 740 MB database (100,000 messages) that took 10 s with the file
 * locked, and the WAL grew to the size of the database on top of VACUUM's own temporary copy (three
 * times the file on disk at the peak). Instead, with the data lock held and nothing else writing:
 * fold the WAL in, copy the database with VACUUM INTO in the new mode (3.5 s for the same file; it
 * reads one snapshot and needs the space of one copy), check the copy (integrity and row counts) and
 * rename it over the database. A crash before the rename leaves the database as it was (the partial
 * copy is removed on the next try), after it the complete, synced copy.
 */
import { Database } from "bun:sqlite";
import { existsSync, readdirSync, renameSync, rmSync, statfsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { StoreError } from "../errors.ts";
import { backupDatabase, factsOf, syncFile } from "./backup.ts";
import { APPLICATION_ID } from "./migrations.ts";

export type ConversionResult =
  | {
      readonly converted: true;
      readonly ms: number;
      readonly bytesBefore: number;
      readonly bytesAfter: number;
    }
  | { readonly converted: false; readonly reason: string };

/** Room left on the file system besides the copy: for the WAL and whatever else runs there. */
const MARGIN_BYTES = 64 * 1024 * 1024;

const SUFFIX = ".compacting";

/**
 * Converts the database at `path` to incremental auto-vacuum when it is an isched database in
 * another mode. The caller holds the data lock (openDatabase). Skips, saying why, when there is not
 * room for a copy; throws a StoreError when the copy fails its check (the database is left as it was).
 */
export function convertToIncrementalVacuum(
  path: string,
  o: { freeBytes?: (dir: string) => number; elapsed?: () => number } = {},
): ConversionResult {
  const elapsed = o.elapsed ?? (() => performance.now());
  const freeBytes = o.freeBytes ?? freeBytesIn;
  removeLeftovers(path);
  if (!existsSync(path) || statSync(path).size === 0) return { converted: false, reason: "a new database" };
  const start = elapsed();
  const db = new Database(path, { readwrite: true, strict: true });
  let needed: number;
  let before: ReturnType<typeof factsOf>;
  try {
    db.run("PRAGMA busy_timeout = 5000");
    const pragma = (name: string) => (db.query(`PRAGMA ${name}`).get() as Record<string, number>)[name]!;
    if (pragma("application_id") !== APPLICATION_ID)
      return { converted: false, reason: "not an isched database" };
    if (pragma("auto_vacuum") !== 0) return { converted: false, reason: "already converted" };
    // Everything committed goes into the database file, so the WAL left beside it is empty.
    const checkpoint = db.query<{ busy: number }, []>("PRAGMA wal_checkpoint(TRUNCATE)").get();
    if (checkpoint && checkpoint.busy !== 0)
      return { converted: false, reason: "another connection is reading the database" };
    needed = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    before = factsOf(db, path);
  } finally {
    db.close();
  }
  const free = freeBytes(dirname(path));
  if (free < needed + MARGIN_BYTES)
    return {
      converted: false,
      reason: `the copy needs ${mb(needed + MARGIN_BYTES)} free beside the database, and there are ${mb(free)}`,
    };
  const copy = `${path}${SUFFIX}`;
  const after = backupDatabase({ from: path, to: copy, autoVacuum: "incremental" });
  if (
    after.messages !== before.messages ||
    after.deliveries !== before.deliveries ||
    after.keys !== before.keys
  ) {
    rmSync(copy, { force: true });
    throw new StoreError(
      `the compacted copy of ${path} differs (${after.messages} messages, ${before.messages} before); the database is unchanged`,
    );
  }
  // The WAL is empty (checkpointed, and the last connection is closed); its index describes the old
  // file, so it goes with it.
  if (existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0) {
    rmSync(copy, { force: true });
    return { converted: false, reason: "the WAL was written to meanwhile (another process?)" };
  }
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  renameSync(copy, path);
  // The rename itself survives a power cut once the directory is synced.
  syncFile(dirname(path));
  return {
    converted: true,
    ms: Math.round(elapsed() - start),
    bytesBefore: before.bytes,
    bytesAfter: after.bytes,
  };
}

/** A copy a crash left half-made. */
function removeLeftovers(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}${SUFFIX}`;
  for (const name of readdirSync(dir)) if (name.startsWith(prefix)) rmSync(join(dir, name), { force: true });
}

/** Bytes the file system holding `dir` has free for isched (not root's reserve). */
export function freeBytesIn(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

const mb = (bytes: number): string => `${Math.ceil(bytes / (1024 * 1024))} MB`;
