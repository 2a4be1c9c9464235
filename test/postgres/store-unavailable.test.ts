/**
 * storageFailure (src/store/errors.ts) on the errors the real drivers throw: an unavailable store
 * (PostgreSQL refusing connections or ending a session, SQLite's storage failing) is told apart from
 * a statement that is wrong, which is a bug and stays one (a 500 and a log line, not a retry).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { storageFailure } from "../../src/store/errors.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";

const START_MS = 60_000;
let pg: RunningPostgres;
let sql: SQL;

beforeAll(async () => {
  pg = await startPostgres();
  sql = new SQL({ url: pg.url, max: 2 });
  await sql`CREATE TABLE t (k text PRIMARY KEY)`;
}, START_MS);

afterAll(async () => {
  await sql?.close({ timeout: 1 });
  await pg?.stop();
});

const failure = (p: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(p).then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );

test("a PostgreSQL that refuses the connection is unavailable", async () => {
  const closed = new SQL({ url: pg.url.replace(`:${pg.port}/`, ":1/"), max: 1 });
  try {
    expect(storageFailure(await failure(closed`SELECT 1`))).toBeDefined();
  } finally {
    await closed.close({ timeout: 1 });
  }
});

test(
  "a session the server ends (57P01, as at shutdown) is unavailable",
  async () => {
    let running = false;
    const query = failure(
      sql.begin(async (tx) => {
        running = true;
        await tx`SELECT pg_sleep(10)`;
      }),
    );
    while (!running) await Bun.sleep(5);
    await Bun.sleep(100);
    await pg.terminateConnections();
    const e = await query;
    expect((e as { errno?: unknown }).errno).toBe("57P01");
    expect(storageFailure(e)).toBeDefined();
  },
  START_MS,
);

test("a statement PostgreSQL refuses is a bug, not an outage", async () => {
  // The pool may hand out a connection the last test's termination closed: once, then a fresh one.
  await sql`SELECT 1`.catch(() => {});
  await sql`INSERT INTO t VALUES ('a') ON CONFLICT DO NOTHING`;
  const duplicate = await failure(sql`INSERT INTO t VALUES ('a')`);
  expect((duplicate as { errno?: unknown }).errno).toBe("23505");
  expect(storageFailure(duplicate)).toBeUndefined();
  expect(storageFailure(await failure(sql.unsafe("SELECT * FROM no_such_table")))).toBeUndefined();
  expect(storageFailure(await failure(sql.unsafe("SELEC 1")))).toBeUndefined();
});

test("SQLite: a constraint is a bug; a database another connection holds past the busy timeout is unavailable", () => {
  const dir = mkdtempSync(join(tmpdir(), "isched-unavailable-"));
  const path = join(dir, "t.db");
  const a = new Database(path);
  const b = new Database(path);
  try {
    a.run("CREATE TABLE t (k TEXT PRIMARY KEY)");
    a.run("INSERT INTO t VALUES ('a')");
    const constraint = catching(() => a.run("INSERT INTO t VALUES ('a')"));
    expect(storageFailure(constraint)).toBeUndefined();
    a.run("BEGIN IMMEDIATE");
    b.run("PRAGMA busy_timeout = 0");
    const busy = catching(() => b.run("INSERT INTO t VALUES ('b')"));
    expect((busy as { code?: unknown }).code).toBe("SQLITE_BUSY");
    expect(storageFailure(busy)).toBeDefined();
    a.run("ROLLBACK");
  } finally {
    a.close();
    b.close();
    rmSync(dir, { recursive: true, force: true });
  }
  expect(storageFailure("not an error")).toBeUndefined();
});

function catching(run: () => void): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  throw new Error("expected a failure");
}
