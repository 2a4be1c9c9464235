import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { type ConversionResult, convertToIncrementalVacuum } from "../../src/store/sqlite/compaction.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { migrate } from "../../src/store/sqlite/migrations.ts";
import { spaceFacts } from "../../src/store/sqlite/retention.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { attempt, invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

/** A database as isched made them before: auto_vacuum none, WAL, with `n` messages. */
async function legacyDatabase(n: number): Promise<string> {
  const path = tempDatabasePath();
  const db = new Database(path, { create: true, readwrite: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA foreign_keys = ON");
  migrate(db);
  const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(new TestClock()));
  for (let i = 0; i < n; i++)
    await queue.accept(
      invitation({ uid: `e${i}`, body: `BEGIN:VCALENDAR\r\n${"X".repeat(3000)}${i}\r\nEND:VCALENDAR\r\n` }),
      recipients(2, { state: "delivered", attempt: attempt() }),
    );
  expect(db.query<{ auto_vacuum: number }, []>("PRAGMA auto_vacuum").get()!.auto_vacuum).toBe(0);
  db.close();
  return path;
}

const counts = (db: Database) =>
  db
    .query<{ m: number; d: number; a: number; b: number }, []>(
      `SELECT (SELECT count(*) FROM messages) AS m, (SELECT count(*) FROM deliveries) AS d,
        (SELECT count(*) FROM attempts) AS a, (SELECT sum(length(body)) FROM messages) AS b`,
    )
    .get()!;

describe("incremental auto-vacuum", () => {
  test("a new database file is made with it", () => {
    const db = openDatabase(tempDatabasePath());
    expect(spaceFacts(db).autoVacuum).toBe("incremental");
    db.close();
  });

  test("a database made before is converted when it opens, with every row, and can shrink from then on", async () => {
    const path = await legacyDatabase(300);
    const before = (() => {
      const db = new Database(path, { readonly: true });
      const c = counts(db);
      db.close();
      return c;
    })();
    const results: ConversionResult[] = [];
    const db = openDatabase(path, { convertToIncrementalVacuum: (r) => results.push(r) });
    expect(results.length).toBe(1);
    const r = results[0]!;
    if (!r.converted) throw new Error(`not converted: ${r.reason}`);
    expect(r.bytesAfter).toBeGreaterThan(0);
    expect(spaceFacts(db).autoVacuum).toBe("incremental");
    expect(counts(db)).toEqual(before);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    db.close();

    // Opening again leaves it as it is.
    const again: ConversionResult[] = [];
    openDatabase(path, { convertToIncrementalVacuum: (x) => again.push(x) }).close();
    expect(again).toEqual([{ converted: false, reason: "already converted" }]);
  });

  test("without room for the copy the database is left as it was, and the reason says how much is needed", async () => {
    const path = await legacyDatabase(50);
    const result = convertToIncrementalVacuum(path, { freeBytes: () => 1024 * 1024 });
    expect(result.converted).toBe(false);
    expect(!result.converted && result.reason).toMatch(
      /^the copy needs \d+ MB free beside the database, and there are 1 MB$/,
    );
    const db = openDatabase(path);
    expect(spaceFacts(db).autoVacuum).toBe("none");
    expect(counts(db).m).toBe(50);
    db.close();
  });

  test("a copy left by a crash before the rename is removed, and the database converted from itself", async () => {
    const path = await legacyDatabase(20);
    writeFileSync(`${path}.compacting.partial-999`, "half a copy");
    writeFileSync(`${path}.compacting`, "a whole copy never renamed");
    const result = convertToIncrementalVacuum(path);
    expect(result.converted).toBe(true);
    expect(existsSync(`${path}.compacting.partial-999`)).toBe(false);
    expect(existsSync(`${path}.compacting`)).toBe(false);
    const db = openDatabase(path);
    expect(counts(db).m).toBe(20);
    db.close();
  });

  test("a file that is not an isched database is not touched", () => {
    const path = tempDatabasePath();
    const other = new Database(path, { create: true });
    other.run("CREATE TABLE notes (x)");
    other.close();
    expect(convertToIncrementalVacuum(path)).toEqual({ converted: false, reason: "not an isched database" });
  });
});
