/**
 * isched's SQLite schema and its PostgreSQL twin are the same schema: the same migrations by name
 * and version, and at every version the same tables, columns (name, type class, nullability,
 * default), primary keys, unique constraints, foreign keys, named indexes (columns, unique, partial
 * or not) and triggers, between a fresh SQLite database and a fresh PostgreSQL one on the real
 * server. A SQLite migration added without its PostgreSQL form fails here, naming what is missing.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { migratePostgres } from "../../src/store/postgres/migrate.ts";
import {
  POSTGRES_MIGRATIONS,
  POSTGRES_ONLY_TABLES,
  type PostgresMigration,
} from "../../src/store/postgres/migrations.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { MIGRATIONS, type Migration, migrate } from "../../src/store/sqlite/migrations.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { PostgresDatabases } from "./_backends.ts";
import { postgresShape, type SchemaShape, shapeDifferences, sqliteShape } from "./_schema-shape.ts";

const START_MS = 60_000;

let pg: RunningPostgres;
let databases: PostgresDatabases;

beforeAll(async () => {
  pg = await startPostgres();
  databases = new PostgresDatabases(pg, "parity");
}, START_MS);

afterAll(async () => {
  await databases?.closeAll();
  await pg?.stop();
});

/** The shape of a fresh PostgreSQL database migrated with `migrations`. */
async function postgresAt(migrations: readonly PostgresMigration[]): Promise<SchemaShape> {
  const sql = databases.connect((await databases.create()).url, 1);
  await migratePostgres(sql, { migrations });
  return postgresShape(sql);
}

/** The shape of a fresh SQLite database migrated with `migrations`. */
function sqliteAt(migrations: readonly Migration[]): SchemaShape {
  const db = new Database(":memory:");
  try {
    migrate(db, migrations);
    return sqliteShape(db);
  } finally {
    db.close();
  }
}

test("every SQLite migration has a PostgreSQL form of the same name at the same version", () => {
  const mismatches: string[] = [];
  for (let i = 0; i < Math.max(MIGRATIONS.length, POSTGRES_MIGRATIONS.length); i++) {
    const s = MIGRATIONS[i]?.name;
    const p = POSTGRES_MIGRATIONS[i]?.name;
    if (s === p) continue;
    mismatches.push(
      s === undefined
        ? `migration ${i + 1}: PostgreSQL has "${p}", SQLite (src/store/migrations.ts) has none`
        : `migration ${i + 1} (${s}): PostgreSQL (src/store/postgres/migrations.ts) has ${p === undefined ? "none" : `"${p}"`}`,
    );
  }
  expect(mismatches).toEqual([]);
});

describe("schema parity", () => {
  test(
    "at the latest version, a fresh SQLite database (openDatabase) and a fresh PostgreSQL one have the same schema",
    async () => {
      const db = openDatabase(":memory:");
      const sqlite = sqliteShape(db);
      db.close();
      const postgres = await postgresAt(POSTGRES_MIGRATIONS);
      expect(shapeDifferences(sqlite, postgres, POSTGRES_ONLY_TABLES)).toEqual([]);
      // The comparison sees what matters (it is not comparing two empty shapes).
      expect(Object.keys(sqlite).sort()).toEqual(
        Object.keys(postgres)
          .filter((t) => !POSTGRES_ONLY_TABLES.includes(t))
          .sort(),
      );
      expect(Object.keys(sqlite).length).toBeGreaterThanOrEqual(10);
      expect(postgres.deliveries?.indexes.find((i) => i.name === "deliveries_recipient")?.columns).toEqual([
        "lower(recipient)",
        "message_id",
      ]);
      expect(postgres.dkim_keys?.indexes.find((i) => i.name === "dkim_keys_one_active")).toEqual({
        name: "dkim_keys_one_active",
        columns: ["domain"],
        unique: true,
        partial: true,
      });
      expect(postgres.deliveries?.triggers).toEqual(["deliveries_never_for_refused"]);
      for (const t of POSTGRES_ONLY_TABLES) expect(postgres[t]).toBeDefined();
    },
    START_MS,
  );

  for (let version = 1; version < MIGRATIONS.length; version++) {
    test(`at version ${version} (${MIGRATIONS[version - 1]!.name}) both backends have the same schema`, async () => {
      const sqlite = sqliteAt(MIGRATIONS.slice(0, version));
      const postgres = await postgresAt(POSTGRES_MIGRATIONS.slice(0, version));
      expect(shapeDifferences(sqlite, postgres, POSTGRES_ONLY_TABLES)).toEqual([]);
    });
  }

  test("a SQLite migration without its PostgreSQL form fails the comparison, naming what is missing", async () => {
    const future: Migration = {
      name: "spam scores",
      up: `ALTER TABLE messages ADD COLUMN spam_score REAL;
        CREATE INDEX messages_spam ON messages (spam_score) WHERE spam_score IS NOT NULL;
        CREATE TABLE spam_rules (id INTEGER PRIMARY KEY, pattern TEXT NOT NULL UNIQUE);`,
    };
    const sqlite = sqliteAt([...MIGRATIONS, future]);
    expect(shapeDifferences(sqlite, await postgresAt(POSTGRES_MIGRATIONS), POSTGRES_ONLY_TABLES)).toEqual([
      "table spam_rules: in SQLite, missing on PostgreSQL",
      "column messages.spam_score: in SQLite, missing on PostgreSQL",
      'index messages_spam on messages: in SQLite {"name":"messages_spam","columns":["spam_score"],"unique":false,"partial":true}, missing on PostgreSQL',
    ]);
    // A twin that translates it wrongly is named too: type, nullability, default, unique, partial.
    const wrong: PostgresMigration = {
      name: "spam scores",
      up: `ALTER TABLE messages ADD COLUMN spam_score text NOT NULL DEFAULT '';
        CREATE INDEX messages_spam ON messages (spam_score);
        CREATE TABLE spam_rules (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, pattern text NOT NULL);`,
    };
    expect(
      shapeDifferences(sqlite, await postgresAt([...POSTGRES_MIGRATIONS, wrong]), POSTGRES_ONLY_TABLES),
    ).toEqual([
      'column messages.spam_score: type "real" in SQLite, "text" on PostgreSQL',
      "column messages.spam_score: notNull false in SQLite, true on PostgreSQL",
      `column messages.spam_score: default null in SQLite, "''" on PostgreSQL`,
      'index messages_spam on messages: {"name":"messages_spam","columns":["spam_score"],"unique":false,"partial":true} in SQLite, {"name":"messages_spam","columns":["spam_score"],"unique":false,"partial":false} on PostgreSQL',
      'table spam_rules: unique constraints ["pattern"] in SQLite, [] on PostgreSQL',
    ]);
  });
});
