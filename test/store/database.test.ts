import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../../src/store/errors.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import {
  APPLICATION_ID,
  MIGRATIONS,
  type Migration,
  SCHEMA_VERSION,
} from "../../src/store/sqlite/migrations.ts";
import { VERSION } from "../../src/version.ts";
import { removeTempDirs, tempDatabasePath, tempDir } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const pragma = (db: Database, name: string): unknown =>
  Object.values(db.query(`PRAGMA ${name}`).get() as object)[0];

function tables(db: Database): string[] {
  return db
    .query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .all()
    .map((r) => r.name);
}

function openError(path: string): StoreError {
  try {
    openDatabase(path).close();
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error(`openDatabase(${path}) did not fail`);
}

describe("openDatabase()", () => {
  test("creates an isched database in WAL mode with foreign keys, NORMAL sync and a busy timeout", () => {
    const db = openDatabase(tempDatabasePath());
    expect(pragma(db, "journal_mode")).toBe("wal");
    expect(pragma(db, "foreign_keys")).toBe(1);
    expect(pragma(db, "synchronous")).toBe(1);
    expect(pragma(db, "busy_timeout")).toBe(5000);
    expect(pragma(db, "application_id")).toBe(APPLICATION_ID);
    expect(pragma(db, "user_version")).toBe(SCHEMA_VERSION);
    expect(tables(db)).toEqual([
      "attempts",
      "console_sessions",
      "deliveries",
      "dkim_keys",
      "itip_keys",
      "messages",
      "peer_facts",
      "peer_policies",
      "replay_keys",
      "settings",
    ]);
    db.close();
  });

  test("synchronous: full sets PRAGMA synchronous to FULL", () => {
    const db = openDatabase(tempDatabasePath(), { synchronous: "full" });
    expect(pragma(db, "synchronous")).toBe(2);
    db.close();
  });

  test("reopening an existing database keeps its data and changes nothing", () => {
    const path = tempDatabasePath();
    const first = openDatabase(path);
    first.run("INSERT INTO settings (key, value) VALUES ('a', 'b')");
    const schema = first.query("SELECT sql FROM sqlite_schema ORDER BY name").all();
    first.close();
    const again = openDatabase(path);
    expect(again.query("SELECT value FROM settings WHERE key = 'a'").get()).toEqual({ value: "b" });
    expect(again.query("SELECT sql FROM sqlite_schema ORDER BY name").all()).toEqual(schema);
    expect(pragma(again, "user_version")).toBe(SCHEMA_VERSION);
    again.close();
  });

  test(":memory: opens a migrated database without a lock file", () => {
    const db = openDatabase(":memory:");
    expect(pragma(db, "user_version")).toBe(SCHEMA_VERSION);
    expect(tables(db)).toContain("deliveries");
    db.close();
  });

  test("refuses a database written by a newer isched, naming that isched, both schema versions and the way back", () => {
    const path = tempDatabasePath();
    openDatabase(path).close();
    const newer = SCHEMA_VERSION + 1;
    const raw = new Database(path);
    raw.run(`PRAGMA user_version = ${newer}`);
    raw.run("UPDATE settings SET value = '9.1.0' WHERE key = 'schema.written-by'");
    raw.close();
    expect(openError(path).message).toBe(
      `Cannot open the database ${path}: it was written by isched 9.1.0 (schema ${newer}), and this isched ${VERSION} ` +
        `knows schema ${SCHEMA_VERSION} at most: run isched 9.1.0 or later, or restore the backup made before ` +
        "the upgrade (isched restore FILE)",
    );
    // Refusing does not touch the file.
    const check = new Database(path);
    expect(pragma(check, "user_version")).toBe(newer);
    check.close();
  });

  test("refuses a file that is not an SQLite database", () => {
    const path = tempDatabasePath();
    writeFileSync(path, "this is a calendar, not a database\n".repeat(200));
    expect(openError(path).message).toBe(
      `Cannot open the database ${path}: the file is not an SQLite database`,
    );
  });

  test("refuses another program's SQLite database instead of adding tables to it", () => {
    const path = tempDatabasePath();
    const other = new Database(path);
    other.run("CREATE TABLE contacts (name TEXT)");
    other.close();
    expect(openError(path).message).toBe(
      `Cannot open the database ${path}: it is not an isched database (it has tables, but no isched schema)`,
    );
    const check = new Database(path);
    expect(tables(check)).toEqual(["contacts"]);
    check.close();
  });

  test("refuses an SQLite database with another application id", () => {
    const path = tempDatabasePath();
    const other = new Database(path);
    other.run("PRAGMA application_id = 1234");
    other.close();
    expect(openError(path).message).toBe(
      `Cannot open the database ${path}: it is not an isched database (application_id 0x4d2)`,
    );
  });

  test("says which directory is missing", () => {
    const path = join(tempDir(), "no", "such", "isched.db");
    expect(openError(path).message).toBe(
      `Cannot open the database ${path}: the directory ${join(path, "..")} does not exist`,
    );
  });

  test("readOnly reads a database another connection writes, and refuses writes", () => {
    const path = tempDatabasePath();
    const writer = openDatabase(path);
    writer.run("INSERT INTO settings (key, value) VALUES ('x', '1')");
    const reader = openDatabase(path, { readOnly: true });
    expect(reader.query("SELECT value FROM settings WHERE key = 'x'").all()).toEqual([{ value: "1" }]);
    expect(() => reader.run("INSERT INTO settings (key, value) VALUES ('y', '2')")).toThrow("readonly");
    reader.close();
    writer.close();
  });

  test("readOnly refuses a database that does not exist yet", () => {
    const path = tempDatabasePath();
    expect(() => openDatabase(path, { readOnly: true })).toThrow(
      `Cannot open the database ${path}: the file does not exist`,
    );
  });
});

describe("a migration backs the database up first", () => {
  const next: Migration[] = [
    ...MIGRATIONS,
    { name: "a column for the test", up: "ALTER TABLE settings ADD COLUMN note TEXT" },
  ];

  test("an existing database is copied beside itself (0600, the data as it was) before a new migration runs", () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    db.run("INSERT INTO settings (key, value) VALUES ('before', 'kept')");
    db.close();
    const told: string[] = [];
    const migrated = openDatabase(path, {
      migrations: next,
      nowMs: () => Date.UTC(2026, 10, 25, 14, 30, 5),
      onMigrationBackup: (p) => told.push(p),
    });
    expect(pragma(migrated, "user_version")).toBe(SCHEMA_VERSION + 1);
    migrated.close();
    const expected = `${path}.schema-${SCHEMA_VERSION}.20261125T143005Z.backup`;
    expect(told).toEqual([expected]);
    expect(statSync(expected).mode & 0o777).toBe(0o600);
    const copy = new Database(expected, { readonly: true });
    expect(pragma(copy, "user_version")).toBe(SCHEMA_VERSION);
    expect(copy.query("SELECT value FROM settings WHERE key = 'before'").get()).toEqual({ value: "kept" });
    copy.close();
  });

  test("a new database, or one already current, is not copied", () => {
    const path = tempDatabasePath();
    openDatabase(path).close();
    openDatabase(path).close();
    expect(readdirSync(join(path, "..")).filter((f) => f.endsWith(".backup"))).toEqual([]);
  });

  test("the isched that migrated is recorded, so an older one can name it", () => {
    const path = tempDatabasePath();
    openDatabase(path).close();
    const raw = new Database(path, { readonly: true });
    expect(raw.query("SELECT value FROM settings WHERE key = 'schema.written-by'").get()).toEqual({
      value: VERSION,
    });
    raw.close();
  });
});
