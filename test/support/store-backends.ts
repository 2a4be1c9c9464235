/**
 * One suite, two backends: `onBothBackends(title, cases)` declares a file's test cases twice, in a
 * describe named "TITLE (SQLite)" over createSqliteStore (an in-memory database) and one named
 * "TITLE (PostgreSQL)" over openPostgresStore on the real server of test/support/postgres.ts. The
 * store contract (test/store/contract) and the queue, intake, delivery and console suites use it.
 *
 * Cost: one PostgreSQL server for the whole `bun test` run (started by the first file that needs
 * it, 2-3 s), and per describe one database, a copy of one migrated at start, made in the
 * describe's beforeAll. Every fresh() empties that database (every table but schema_meta, sequences
 * restarted, so ids start at 1 as on a new SQLite file) after closing the stores the previous test
 * opened: a few milliseconds instead of a CREATE DATABASE per test. serverDatabase() makes another
 * copy for each server a test starts. The server runs with fsync off, since these suites test what
 * the store does, not what survives a crash (the crash tests start their own server with
 * PostgreSQL's defaults).
 *
 * PostgreSQL is skipped, with a message saying why, only when its binaries are not installed and
 * the run is not CI; in CI (CI set, as GitHub Actions sets it) a missing server fails the file, since
 * scripts/install-test-deps.sh installs it there.
 */
import { afterAll, beforeAll, describe } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/store.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { POSTGRES_BIN, type RunningPostgres, startPostgres } from "./postgres.ts";

const START_MS = 60_000;

export type BackendName = "SQLite" | "PostgreSQL";
export type Param = string | number | null | Uint8Array;

export interface StoreBackend {
  readonly name: BackendName;
  /** A store over an empty, migrated database (on PostgreSQL the previous test's stores are closed). */
  fresh(): Promise<Store>;
  /**
   * Another store on the same database as `store` (another connection, as another node has): on
   * SQLite, which one process owns, the same store.
   */
  another(store: Store): Promise<Store>;
  /**
   * Runs `text` on `store`'s database (this backend's, a fresh() one or a server's) beneath the
   * Store interface, for a test that checks what is stored (a row count, a column the interface
   * does not return). Placeholders are `$1, $2, ...`; integers come back as numbers on both
   * backends (on PostgreSQL any all-digit string does: do not select digit-only text with it).
   */
  rows<T = Record<string, unknown>>(store: Store, text: string, params?: readonly Param[]): Promise<T[]>;
  /**
   * The `database` of a server's config (startIsched, startConsoleServer) over a database of its
   * own: undefined on SQLite (the server opens the file in its data folder), on PostgreSQL the URL
   * of a new, empty database (created on each call, since servers of one test may run side by side).
   */
  serverDatabase(): Promise<string | undefined>;
  /** The error message of a statement refused by a constraint of that kind, as each backend words it. */
  refused(kind: "unique" | "check"): RegExp;
}

const postgresMissing =
  !existsSync(join(POSTGRES_BIN, "postgres")) && !process.env.CI
    ? `PostgreSQL 15 is not installed (${POSTGRES_BIN}); scripts/install-test-deps.sh installs it`
    : undefined;

const REFUSED: Record<BackendName, Record<"unique" | "check", RegExp>> = {
  SQLite: { unique: /UNIQUE constraint failed/, check: /CHECK constraint failed/ },
  PostgreSQL: {
    unique: /duplicate key value violates unique constraint/,
    check: /violates check constraint/,
  },
};

function sqliteBackend(opened: Store[]): StoreBackend {
  return {
    name: "SQLite",
    fresh: async () => {
      const store = createSqliteStore(openDatabase(":memory:"));
      opened.push(store);
      return store;
    },
    another: async (store) => store,
    serverDatabase: async () => undefined,
    rows: async <T>(store: Store, text: string, params: readonly Param[] = []) => {
      const { db } = store as SqliteStore;
      return db.query(text.replace(/\$(\d+)/g, "?$1")).all(...params) as T[];
    },
    refused: (kind) => REFUSED.SQLite[kind],
  };
}

/** Integers come back from PostgreSQL's bigint columns as strings: numbers, as SQLite gives them. */
function numbers(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row))
    out[k] = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
  return out;
}

/**
 * The suite's PostgreSQL server, shared by every file of one `bun test` process (which runs the
 * files one after another): started by the first describe that needs it, shut down once the
 * process has ended (reapWhenDone). Its databases are copies of one migrated at start (CREATE
 * DATABASE ... TEMPLATE), each under a name of its own.
 */
interface SharedPostgres {
  readonly pg: RunningPostgres;
  newDatabase(prefix: string): Promise<string>;
}

let shared: Promise<SharedPostgres> | undefined;

async function startShared(): Promise<SharedPostgres> {
  const pg = await startPostgres({ settings: { fsync: "off" } });
  reapWhenDone(pg);
  const template = "isched_migrated";
  await (await openPostgresStore(await pg.createDatabase(template), { maxConnections: 1 })).close();
  // The migrating session may outlive close() by a few milliseconds, and CREATE DATABASE waits
  // for a template's sessions to end.
  const sessions = `SELECT count(*) FROM pg_stat_activity WHERE datname = '${template}'`;
  for (let i = 0; i < 100 && (await pg.admin(sessions)) !== "0"; i++) await Bun.sleep(50);
  let made = 0;
  return {
    pg,
    async newDatabase(prefix) {
      const name = `${prefix}_${++made}`;
      await pg.admin(`CREATE DATABASE ${name} OWNER ${pg.user} TEMPLATE ${template}`);
      return pg.urlFor(name);
    },
  };
}

/**
 * `bun test` ends its process without an "exit" event, so postgres.ts's exit hook does not run for
 * a server still up at the end of the run, and nothing else knows which file is the last: a small
 * shell waits for this process to end, then shuts the shared server down at once (SIGQUIT
 * to the postmaster: its data is thrown away) and removes its folder.
 */
function reapWhenDone(pg: RunningPostgres): void {
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done`,
    `pid=$(head -n 1 '${pg.dir}/data/postmaster.pid' 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null`,
    `n=0; while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done`,
    `rm -rf '${pg.dir}'`,
  ].join("\n");
  // Started from a shell that exits at once, in a session of its own: bun test kills the processes a
  // test (or hook) leaves running when it times out, and the reaper must survive that.
  spawn("sh", ["-c", 'setsid sh -c "$0" </dev/null >/dev/null 2>&1 &', script], { stdio: "ignore" });
}

function postgresBackend(
  o: { server: () => SharedPostgres; url: () => string; prefix: string },
  opened: Store[],
): StoreBackend {
  const open = async () => {
    const store = await openPostgresStore(o.url(), { maxConnections: 4 });
    opened.push(store);
    return store;
  };
  return {
    name: "PostgreSQL",
    fresh: async () => {
      for (const s of opened.splice(0)) await s.close();
      const store = await open();
      await empty(store as PostgresStore);
      return store;
    },
    another: async () => open(),
    serverDatabase: () => o.server().newDatabase(`${o.prefix}_server`),
    rows: async <T>(store: Store, text: string, params: readonly Param[] = []) => {
      const rows = (await (store as PostgresStore).sql.unsafe(text, [...params])) as Record<
        string,
        unknown
      >[];
      return rows.map(numbers) as T[];
    },
    refused: (kind) => REFUSED.PostgreSQL[kind],
  };
}

/** Deletes every row but the schema's version and restarts every sequence, in one transaction. */
async function empty(store: PostgresStore): Promise<void> {
  await store.sql.begin(async (tx) => {
    const tables = await tx.unsafe(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_meta'",
    );
    // Children first is not needed: every foreign key cascades (ON DELETE CASCADE).
    for (const { tablename } of tables as { tablename: string }[])
      await tx.unsafe(`DELETE FROM "${tablename}"`);
    const sequences = await tx.unsafe("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'");
    for (const { sequencename } of sequences as { sequencename: string }[])
      await tx.unsafe(`ALTER SEQUENCE "${sequencename}" RESTART`);
  });
}

/** Declares `cases` once per backend, each in a describe named "TITLE (BACKEND)". */
export function onBothBackends(title: string, cases: (b: StoreBackend) => void): void {
  describe(`${title} (SQLite)`, () => {
    const opened: Store[] = [];
    afterAll(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    cases(sqliteBackend(opened));
  });
  if (postgresMissing) {
    console.warn(`"${title}" on PostgreSQL skipped: ${postgresMissing}`);
    describe.skip(`${title} (PostgreSQL: ${postgresMissing})`, () => {});
    return;
  }
  describe(`${title} (PostgreSQL)`, () => {
    const prefix =
      title
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "_")
        .replace(/^[^a-z_]+/, "")
        .slice(0, 30) || "suite";
    let server: SharedPostgres | undefined;
    let url: string | undefined;
    const opened: Store[] = [];
    // The describe's database is made here, under the hook's time limit rather than a test's.
    beforeAll(async () => {
      shared ??= startShared();
      server = await shared;
      url = await server.newDatabase(prefix);
    }, START_MS);
    afterAll(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    cases(postgresBackend({ server: () => server!, url: () => url!, prefix }, opened));
  });
}
