/**
 * migratePostgres against the real server: an empty database becomes isched's at the latest
 * version; two nodes migrating at once both succeed and each migration runs once (the second waits
 * on the advisory lock, then finds the work done); a database written by a newer isched, or one that
 * is not isched's, is refused with one line that says what to do.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { SQL } from "bun";
import { StoreError } from "../../src/store/errors.ts";
import {
  MIGRATION_LOCK,
  migratePostgres,
  postgresSchemaVersion,
  SCHEMA_CHANNEL,
} from "../../src/store/postgres/migrate.ts";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "../../src/store/postgres/migrations.ts";
import { MIGRATIONS } from "../../src/store/sqlite/migrations.ts";
import { VERSION } from "../../src/version.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { PostgresDatabases } from "./_backends.ts";

const START_MS = 60_000;
const LATEST = POSTGRES_MIGRATIONS.length;
const ALL = POSTGRES_MIGRATIONS.map((_, i) => i + 1);

let pg: RunningPostgres;
let databases: PostgresDatabases;

beforeAll(async () => {
  pg = await startPostgres();
  databases = new PostgresDatabases(pg, "migrate");
}, START_MS);

afterAll(async () => {
  await databases?.closeAll();
  await pg?.stop();
});

/** A fresh database, and a client on it per node. */
async function freshDatabase(nodes = 1): Promise<{ name: string; clients: SQL[] }> {
  const { name, url } = await databases.create();
  return { name, clients: Array.from({ length: nodes }, () => databases.connect(url)) };
}

async function refusal(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => new Error("it was not refused"),
    (x: unknown) => x as Error,
  );
  expect(e).toBeInstanceOf(StoreError);
  return e;
}

/** Resolves once some session holds (or waits for) the migration lock; throws after 5 s. */
async function lockSeen(sql: SQL, how: "granted" | "awaited"): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const [row] = await sql`SELECT count(*)::int AS n FROM pg_locks
      WHERE locktype = 'advisory' AND objid = ${MIGRATION_LOCK} AND granted = ${how === "granted"}`;
    if (row.n > 0) return;
    await Bun.sleep(10);
  }
  throw new Error(`no session ${how} the migration lock within 5 s`);
}

const withSearchPath = (url: string, schema: string) =>
  `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;

const tables = async (sql: SQL, schema = "public"): Promise<string[]> =>
  (await sql`SELECT tablename FROM pg_tables WHERE schemaname = ${schema} ORDER BY tablename`).map(
    (r: { tablename: string }) => r.tablename,
  );

describe("migratePostgres", () => {
  test("migrates an empty database to the latest version, recording it, and applies nothing the second time", async () => {
    const {
      clients: [sql],
    } = await freshDatabase();
    expect(await postgresSchemaVersion(sql!)).toBe(0);
    expect(await migratePostgres(sql!)).toEqual(ALL);
    expect(await sql!`SELECT application, version, written_by FROM schema_meta`).toEqual([
      { application: "isched", version: LATEST, written_by: VERSION },
    ]);
    expect(await postgresSchemaVersion(sql!)).toBe(MIGRATIONS.length);
    expect(await tables(sql!)).toContain("deliveries");
    expect(await migratePostgres(sql!)).toEqual([]);
    // One row: a second run neither adds one nor changes it.
    expect((await sql!`SELECT count(*)::int AS n FROM schema_meta`)[0].n).toBe(1);
  });

  test("applies only the migrations an isched database lacks, and tells listeners each version it reached", async () => {
    const {
      clients: [sql, listener],
    } = await freshDatabase(2);
    expect(await migratePostgres(sql!, { migrations: POSTGRES_MIGRATIONS.slice(0, 3) })).toEqual([1, 2, 3]);
    const heard: string[] = [];
    const sub = await listener!.listen(SCHEMA_CHANNEL, (p) => heard.push(p));
    try {
      expect(await migratePostgres(sql!)).toEqual(ALL.slice(3));
      const deadline = Date.now() + 5000;
      while (heard.length < LATEST - 3 && Date.now() < deadline) await Bun.sleep(10);
      expect(heard).toEqual(ALL.slice(3).map(String));
    } finally {
      await sub.unlisten();
    }
  });

  test("two nodes migrating one empty database at once both succeed, and each migration runs once", async () => {
    const {
      clients: [a, b],
    } = await freshDatabase(2);
    const [fromA, fromB] = await Promise.all([migratePostgres(a!), migratePostgres(b!)]);
    // A migration run twice would fail (its CREATE TABLE finds the table), and so would its node.
    expect([...fromA, ...fromB].sort((x, y) => x - y)).toEqual(ALL);
    expect(await postgresSchemaVersion(a!)).toBe(LATEST);
  });

  test("a node that starts while another migrates waits for the lock, then finds the work done", async () => {
    const {
      clients: [a, b],
    } = await freshDatabase(2);
    // One slow migration: the first node holds the lock for its whole transaction.
    const slow: PostgresMigration[] = [
      { name: "slow", up: "SELECT pg_sleep(0.8); CREATE TABLE slow (x integer)" },
    ];
    const t0 = performance.now();
    const first = migratePostgres(a!, { migrations: slow });
    // The second starts once the first holds the lock.
    await lockSeen(b!, "granted");
    const second = await migratePostgres(b!, { migrations: slow });
    const waitedMs = performance.now() - t0;
    expect(await first).toEqual([1]);
    expect(second).toEqual([]);
    expect(waitedMs).toBeGreaterThanOrEqual(700);
    expect(await tables(b!)).toEqual(["schema_meta", "slow"]);
  });

  test("a failing migration is rolled back whole and leaves the previous version", async () => {
    const {
      clients: [sql],
    } = await freshDatabase();
    const list: PostgresMigration[] = [
      { name: "a", up: "CREATE TABLE a (x integer)" },
      { name: "broken", up: "CREATE TABLE half (x integer); INSERT INTO missing VALUES (1)" },
    ];
    const e = await refusal(migratePostgres(sql!, { migrations: list }));
    expect(e.message).toBe('migration 2 (broken) failed: relation "missing" does not exist');
    expect(await postgresSchemaVersion(sql!)).toBe(1);
    expect(await tables(sql!)).toEqual(["a", "schema_meta"]);
  });

  test("a database written by a newer isched is refused with one line naming that isched and both versions", async () => {
    const {
      clients: [newer, older],
    } = await freshDatabase(2);
    const future: PostgresMigration = { name: "from the future", up: "CREATE TABLE future (x integer)" };
    await migratePostgres(newer!, { migrations: [...POSTGRES_MIGRATIONS, future], iSchedVersion: "9.1.0" });
    const e = await refusal(migratePostgres(older!));
    expect(e.message).toBe(
      `it was written by isched 9.1.0 (schema ${LATEST + 1}), and this isched ${VERSION} knows schema ${LATEST} ` +
        "at most: run isched 9.1.0 or later on every node of this database",
    );
    expect(e.message).not.toContain("\n");
    // Refused before anything was written.
    expect(await newer!`SELECT version, written_by FROM schema_meta`).toEqual([
      { version: LATEST + 1, written_by: "9.1.0" },
    ]);
  });

  test("a node waiting for the lock while another moves the schema past it is refused, having applied nothing", async () => {
    const {
      clients: [a, b],
    } = await freshDatabase(2);
    await migratePostgres(a!, { migrations: POSTGRES_MIGRATIONS.slice(0, 1) });
    // Node a, a newer isched, holds the lock in the middle of its migrations (as far as version 3).
    let commit: () => void = () => {};
    const held = new Promise<void>((r) => {
      commit = r;
    });
    const locked = Promise.withResolvers<void>();
    const upgrading = a!.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`UPDATE schema_meta SET version = 3, written_by = '9.2.0'`;
      locked.resolve();
      await held;
    });
    await locked.promise;
    // Node b knows version 2: it needs a migration, so it waits for the lock.
    const waiting = migratePostgres(b!, { migrations: POSTGRES_MIGRATIONS.slice(0, 2) }).then(
      () => new Error("it was not refused"),
      (x: unknown) => x as Error,
    );
    await lockSeen(a!, "awaited");
    commit();
    await upgrading;
    const e = await waiting;
    expect(e).toBeInstanceOf(StoreError);
    expect(e.message).toBe(
      `it was written by isched 9.2.0 (schema 3), and this isched ${VERSION} knows schema 2 at most: ` +
        "run isched 9.2.0 or later on every node of this database",
    );
    // Node b applied nothing: migration 2's tables are not there.
    expect(await tables(a!)).not.toContain("replay_keys");
  });

  test("a database with tables that are not isched's is refused and left alone", async () => {
    const {
      clients: [sql],
    } = await freshDatabase();
    await sql!`CREATE TABLE invoices (id integer PRIMARY KEY)`;
    const e = await refusal(migratePostgres(sql!));
    expect(e.message).toBe("it is not an isched database (schema public has tables, but no isched schema)");
    expect(await tables(sql!)).toEqual(["invoices"]);
  });

  test("a schema_meta table that is not isched's is refused", async () => {
    const {
      clients: [sql],
    } = await freshDatabase();
    await sql!`CREATE TABLE schema_meta (application text, version integer)`;
    await sql!`INSERT INTO schema_meta VALUES ('billing', 3)`;
    const e = await refusal(migratePostgres(sql!));
    expect(e.message).toBe(
      "it is not an isched database (schema public has a schema_meta table that is not isched's)",
    );
  });

  test("isched can live in a schema of its own beside another application's tables (search_path)", async () => {
    const {
      name,
      clients: [owner],
    } = await freshDatabase();
    await owner!`CREATE TABLE invoices (id integer PRIMARY KEY)`;
    // (Created before the schema: the role's default search_path starts with "$user", and the role
    // is called isched.)
    await owner!`CREATE SCHEMA isched`;
    const sql = databases.connect(withSearchPath(pg.urlFor(name), "isched"));
    expect((await sql`SELECT current_schema() AS s`)[0].s).toBe("isched");
    expect(await migratePostgres(sql)).toEqual(ALL);
    expect(await tables(owner!)).toEqual(["invoices"]);
    expect(await tables(owner!, "isched")).toContain("deliveries");
    // The refusal trigger finds isched's messages whatever the inserting session's search_path is
    // (here one without isched's schema).
    const elsewhere = databases.connect(withSearchPath(pg.urlFor(name), "public"));
    await elsewhere`INSERT INTO isched.messages (uuid, received_at, direction, intake, originator, method, component,
      content_type, body, refusal) VALUES ('r', 1, 'inbound', 'ischedule', 'mailto:a@x', 'REQUEST', 'VEVENT',
      'text/calendar', '\\x', 'refused')`;
    const e =
      await elsewhere`INSERT INTO isched.deliveries (message_id, recipient, domain, route, state, next_attempt_at,
      created_at, updated_at) SELECT id, 'b@y', 'y', 'local', 'queued', 1, 1, 1 FROM isched.messages`.catch(
        (x: unknown) => x as Error,
      );
    expect((e as Error).message).toBe("a refused request never gets a delivery");
  });

  test("a search_path that names no existing schema is refused", async () => {
    const { name } = await freshDatabase();
    const sql = databases.connect(withSearchPath(pg.urlFor(name), "nowhere"));
    const e = await refusal(migratePostgres(sql));
    expect(e.message).toBe(
      "its search_path names no existing schema, so isched has nowhere to create its tables",
    );
  });
});
