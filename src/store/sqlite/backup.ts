/**
 * Backups of isched's database: one SQLite file holding everything isched keeps (messages,
 * deliveries, attempts, peer policies, the console's password hash, the DKIM private keys), taken
 * while isched runs.
 *
 * `VACUUM INTO` copies the database as one read transaction, so the copy is the last committed state
 * however busy the writer is (WAL readers never block it, nor it them), and it works on a read-only
 * connection, so no lock is taken. The copy is written into an empty file created first with mode
 * 0600 (SQLite keeps an existing file's mode; the keys in it are secrets), under a temporary name
 * renamed into place once complete, and checked (`PRAGMA integrity_check`) before it is reported.
 */
import { Database } from "bun:sqlite";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { StoreError } from "../errors.ts";
import { APPLICATION_ID, schemaVersion, writtenBy } from "./migrations.ts";

/** As long as a server's own connections wait for a lock (database.ts). */
const BUSY_TIMEOUT_MS = 5000;

export interface DatabaseFacts {
  readonly schema: number;
  readonly messages: number;
  readonly deliveries: number;
  readonly keys: number;
  readonly bytes: number;
  /** A setting, when the database has it: the isched that last changed its schema. */
  readonly writtenBy?: string;
}

/**
 * Copies the database at `from` (open, in use or not) to `to`, which must not exist. With
 * `autoVacuum: "incremental"` the copy gives free pages back to the file system when asked
 * (compaction.ts): VACUUM INTO builds it with the auto_vacuum mode set on the source connection.
 */
export function backupDatabase(o: { from: string; to: string; autoVacuum?: "incremental" }): DatabaseFacts {
  const source = openReadOnly(o.from);
  const temporary = `${o.to}.partial-${process.pid}`;
  try {
    createPrivateFile(temporary, o.to);
    try {
      if (o.autoVacuum === "incremental") source.run("PRAGMA auto_vacuum = INCREMENTAL");
      source.run("VACUUM INTO ?", [temporary]);
      syncFile(temporary);
      const facts = checkBackup(temporary);
      renameSync(temporary, o.to);
      return facts;
    } catch (e) {
      rmSync(temporary, { force: true });
      throw e;
    }
  } finally {
    source.close();
  }
}

/** Reads an isched database (a backup, or the live one) without the lock and without changing it. */
export function openReadOnly(path: string): Database {
  let db: Database;
  try {
    db = new Database(path, { readonly: true, strict: true });
  } catch (e) {
    throw new StoreError(`cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const id = db.query<{ application_id: number }, []>("PRAGMA application_id").get()!.application_id;
    if (id !== APPLICATION_ID) throw new StoreError(`${path} is not an isched database`);
    return db;
  } catch (e) {
    db.close();
    if (e instanceof StoreError) throw e;
    const code = (e as { code?: string }).code;
    throw new StoreError(
      `${path} is not an isched database${code === "SQLITE_NOTADB" ? " (not an SQLite file)" : ""}`,
      { cause: e },
    );
  }
}

/**
 * The whole file checked (every page and index) and what it holds. Throws a StoreError when it is
 * damaged or not an isched database.
 */
export function checkBackup(path: string): DatabaseFacts {
  const db = openReadOnly(path);
  try {
    const problems = db
      .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
      .all()
      .map((r) => r.integrity_check);
    if (problems[0] !== "ok") throw new StoreError(`${path} is damaged: ${problems.slice(0, 3).join("; ")}`);
    return factsOf(db, path);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    // SQLITE_CORRUPT and the like, when the damage stops the check itself.
    throw new StoreError(`${path} is damaged: ${(e as Error).message}`, { cause: e });
  } finally {
    db.close();
  }
}

/** Counts and versions of an open isched database. */
export function factsOf(db: Database, path: string): DatabaseFacts {
  const schema = schemaVersion(db);
  const count = (table: string): number =>
    schema === 0 ? 0 : db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
  return {
    schema,
    messages: count("messages"),
    deliveries: count("deliveries"),
    keys: count("dkim_keys"),
    bytes: statSync(path).size,
    writtenBy: writtenBy(db),
  };
}

function createPrivateFile(path: string, finalPath: string): void {
  try {
    statSync(finalPath);
    throw new StoreError(`${finalPath} exists: give a new name (a backup never overwrites a file)`);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    if ((e as NodeJS.ErrnoException).code !== "ENOENT")
      throw new StoreError(`cannot write ${finalPath}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (e) {
    throw new StoreError(`cannot write ${finalPath}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
}

/** fsync of a file, or of a directory (after a rename in it). */
export function syncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
