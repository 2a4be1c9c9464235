/**
 * Opening isched's SQLite database: the data lock, the connection settings every connection needs,
 * a check that the file is an isched database, and the migrations.
 *
 * WAL with synchronous=NORMAL keeps every committed transaction through a process crash (kill -9);
 * only a power loss or kernel crash can lose the last transactions, which `synchronous: "full"`
 * prevents at the cost of an fsync per commit. busy_timeout lets a second connection of the same
 * process (a worker, the console) wait for the write lock instead of failing.
 */
import { Database } from "bun:sqlite";
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StoreError } from "../errors.ts";
import { backupDatabase } from "./backup.ts";
import { type ConversionResult, convertToIncrementalVacuum } from "./compaction.ts";
import { acquireDataLock, type DataLock, lockPathFor } from "./data-lock.ts";
import {
  APPLICATION_ID,
  MIGRATIONS,
  type Migration,
  migrate,
  newerSchema,
  schemaVersion,
} from "./migrations.ts";

export interface OpenDatabaseOptions {
  /** `normal` (default) survives process crashes; `full` also survives power loss. */
  synchronous?: "normal" | "full";
  /**
   * Opens without the data lock and without migrating, for reading while a server runs (the
   * `isched queue` listing). Writes fail.
   */
  readOnly?: boolean;
  /** Told where the copy went when the file was backed up before a migration. */
  onMigrationBackup?: (backupPath: string) => void;
  /**
   * Converts a database made before isched made them with incremental auto-vacuum (compaction.ts),
   * so that pruning can shrink the file; told how it went. A new database is made that way anyway.
   */
  convertToIncrementalVacuum?: (result: ConversionResult) => void;
  /** The schema's migrations; tests give their own. */
  migrations?: readonly Migration[];
  nowMs?: () => number;
}

export const BUSY_TIMEOUT_MS = 5000;

/** A connection that gives up its share of the data lock when closed. */
class LockedDatabase extends Database {
  #lock: DataLock | undefined;

  constructor(path: string, readOnly: boolean, lock: DataLock | undefined) {
    super(
      path,
      readOnly ? { readonly: true, strict: true } : { create: true, readwrite: true, strict: true },
    );
    this.#lock = lock;
  }

  override close(throwOnError?: boolean): void {
    try {
      super.close(throwOnError);
    } finally {
      this.#lock?.release();
      this.#lock = undefined;
    }
  }
}

/**
 * Opens (creating if needed) and migrates the database at `path`. Throws a StoreError
 * "Cannot open the database PATH: REASON" when it cannot be used.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Database {
  const memory = path === ":memory:";
  const readOnly = options.readOnly ?? false;
  let lock: DataLock | undefined;
  let db: LockedDatabase | undefined;
  try {
    if (!memory) checkDirectory(path, readOnly);
    if (!memory && !readOnly) lock = acquireDataLock(lockPathFor(path));
    if (lock && options.convertToIncrementalVacuum)
      options.convertToIncrementalVacuum(convertToIncrementalVacuum(path));
    db = new LockedDatabase(path, readOnly, lock);
    configure(db, { memory, readOnly, synchronous: options.synchronous ?? "normal" });
    checkIsIsched(db);
    const migrations = options.migrations ?? MIGRATIONS;
    if (readOnly) checkCurrent(db, migrations.length);
    else {
      const found = schemaVersion(db);
      if (found > migrations.length) throw newerSchema(db, found, migrations.length);
      if (!memory && found > 0 && found < migrations.length) {
        const to = migrationBackupPath(path, found, (options.nowMs ?? Date.now)());
        backupDatabase({ from: path, to });
        options.onMigrationBackup?.(to);
      }
      migrate(db, migrations);
    }
    return db;
  } catch (e) {
    if (db) db.close();
    else lock?.release();
    throw new StoreError(`Cannot open the database ${path}: ${reasonOf(e)}`, { cause: e });
  }
}

function checkDirectory(path: string, readOnly: boolean): void {
  const dir = dirname(path);
  if (!existsSync(dir)) throw new StoreError(`the directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new StoreError(`${dir} is not a directory`);
  if (readOnly && !existsSync(path)) throw new StoreError("the file does not exist");
}

function configure(
  db: Database,
  o: { memory: boolean; readOnly: boolean; synchronous: "normal" | "full" },
): void {
  // First, so that every later statement (even switching to WAL) waits for a busy lock.
  db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // A new file gives free pages back when asked (retention.ts's compaction): the mode can only be
  // set before anything is written, switching to WAL included.
  if (
    !o.readOnly &&
    !o.memory &&
    db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count === 0
  )
    db.run("PRAGMA auto_vacuum = INCREMENTAL");
  if (!o.readOnly && !o.memory) {
    const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get()?.journal_mode;
    if (mode !== "wal")
      throw new StoreError(`the file system does not support WAL (journal_mode is ${mode})`);
  }
  db.run(`PRAGMA synchronous = ${o.synchronous === "full" ? "FULL" : "NORMAL"}`);
  // A checkpoint (which syncs the database file) every 10,000 WAL pages rather than 1,000: under a
  // steady stream of small commits that sync was a fifth of each commit's cost. The server moves
  // checkpoints off its request thread altogether (checkpointer.ts).
  db.run("PRAGMA wal_autocheckpoint = 10000");
  // After a burst the WAL file is cut back to 64 MB once checkpointed, rather than keeping its peak size.
  db.run("PRAGMA journal_size_limit = 67108864");
  db.run("PRAGMA foreign_keys = ON");
}

/** An empty file becomes an isched database; anything else must already be one. */
function checkIsIsched(db: Database): void {
  const id = db.query<{ application_id: number }, []>("PRAGMA application_id").get()!.application_id;
  if (id === APPLICATION_ID) return;
  if (id !== 0) {
    throw new StoreError(`it is not an isched database (application_id 0x${(id >>> 0).toString(16)})`);
  }
  const tables = db.query<{ n: number }, []>("SELECT count(*) AS n FROM sqlite_schema").get()!.n;
  if (tables > 0) throw new StoreError("it is not an isched database (it has tables, but no isched schema)");
}

/**
 * Where the copy made before migrating from schema `found` goes: beside the database, named by the
 * schema and the time, so that a downgrade can restore it (`isched restore`).
 */
export function migrationBackupPath(path: string, found: number, nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${path}.schema-${found}.${stamp}.backup`;
}

/** A read-only reader cannot migrate, so it needs exactly this code's schema. */
function checkCurrent(db: Database, known: number): void {
  const found = schemaVersion(db);
  if (found > known) throw newerSchema(db, found, known);
  if (found < known) {
    throw new StoreError(
      `its schema is older (schema ${found}, this version needs ${known}); start isched once to migrate it`,
    );
  }
}

function reasonOf(e: unknown): string {
  if (e instanceof StoreError) return e.message;
  const code = typeof e === "object" && e !== null && "code" in e ? String(e.code) : "";
  if (code === "SQLITE_NOTADB") return "the file is not an SQLite database";
  if (code === "SQLITE_CANTOPEN") return "SQLite cannot open or create the file (check its permissions)";
  return e instanceof Error ? e.message : String(e);
}
