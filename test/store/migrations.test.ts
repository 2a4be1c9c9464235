import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { StoreError } from "../../src/store/errors.ts";
import {
  MIGRATIONS,
  type Migration,
  migrate,
  SCHEMA_VERSION,
  schemaVersion,
} from "../../src/store/sqlite/migrations.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const names = (db: Database): string[] =>
  db
    .query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .all()
    .map((r) => r.name);

describe("migrate()", () => {
  test("applies every migration to an empty file and nothing on the second run", () => {
    const db = new Database(tempDatabasePath());
    expect(migrate(db)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    expect(migrate(db)).toEqual([]);
    expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
    db.close();
  });

  test("applies only the migrations a database lacks, in order, recording each version", () => {
    const db = new Database(":memory:");
    const seen: number[] = [];
    const list: Migration[] = [
      { name: "a", up: "CREATE TABLE a (x)" },
      { name: "b", up: "CREATE TABLE b (x)" },
    ];
    expect(migrate(db, list)).toEqual([1, 2]);
    list.push({
      name: "c as a function",
      up: (d) => {
        seen.push(schemaVersion(d));
        d.run("CREATE TABLE c (x)");
      },
    });
    expect(migrate(db, list)).toEqual([3]);
    expect(seen).toEqual([2]);
    expect(schemaVersion(db)).toBe(3);
    expect(names(db)).toEqual(["a", "b", "c"]);
    db.close();
  });

  test("a failing migration is rolled back and leaves the previous version", () => {
    const db = new Database(":memory:");
    const list: Migration[] = [
      { name: "a", up: "CREATE TABLE a (x)" },
      { name: "broken", up: "CREATE TABLE half (x); INSERT INTO missing VALUES (1);" },
    ];
    let error: unknown;
    try {
      migrate(db, list);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toBe("migration 2 (broken) failed: no such table: missing");
    expect(schemaVersion(db)).toBe(1);
    expect(names(db)).toEqual(["a"]);
    db.close();
  });

  test("refuses a database newer than the migrations it is given", () => {
    const db = new Database(":memory:");
    db.run("PRAGMA user_version = 7");
    expect(() => migrate(db, [{ name: "a", up: "CREATE TABLE a (x)" }])).toThrow(
      /it was written by a newer isched \(schema 7\), and this isched [^ ]+ knows schema 1 at most/,
    );
    expect(names(db)).toEqual([]);
    db.close();
  });

  test("a second connection migrating the same file at the same version does nothing twice", () => {
    const path = tempDatabasePath();
    const a = new Database(path);
    const b = new Database(path);
    expect(migrate(a)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(migrate(b)).toEqual([]);
    a.close();
    b.close();
  });
});
