/**
 * The backends the store contract runs on: the same test cases against createSqliteStore (an
 * in-memory SQLite database) and PostgresStore (a fresh database on the test server of
 * test/support/postgres.ts, one server per test file). `contract(title, cases)` declares the cases
 * once per backend; call it once per file (each call starts its own server).
 *
 * PostgreSQL is skipped, with a message saying why, only when its binaries are not installed and
 * the run is not CI; in CI (CI set, as GitHub Actions sets it) a missing server fails the file, since
 * scripts/install-test-deps.sh installs it there.
 */
import { afterAll, beforeAll, describe } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openPostgresStore } from "../../../src/store/postgres/store.ts";
import { openDatabase } from "../../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../../src/store/sqlite/store.ts";
import type { Store } from "../../../src/store/store.ts";
import { POSTGRES_BIN, type RunningPostgres, startPostgres } from "../../support/postgres.ts";

const START_MS = 60_000;

export interface StoreBackend {
  readonly name: "SQLite" | "PostgreSQL";
  /** A store over a fresh, empty, migrated database. */
  fresh(): Promise<Store>;
  /**
   * Another store on the same database as `store` (another connection, as another node has): on
   * SQLite, which one process owns, the same store.
   */
  another(store: Store): Promise<Store>;
}

const postgresMissing =
  !existsSync(join(POSTGRES_BIN, "postgres")) && !process.env.CI
    ? `PostgreSQL 15 is not installed (${POSTGRES_BIN}); scripts/install-test-deps.sh installs it`
    : undefined;

function sqliteBackend(opened: Store[]): StoreBackend {
  return {
    name: "SQLite",
    fresh: async () => {
      const store = createSqliteStore(openDatabase(":memory:"));
      opened.push(store);
      return store;
    },
    another: async (store) => store,
  };
}

function postgresBackend(pg: () => RunningPostgres, opened: Store[], prefix: string): StoreBackend {
  let made = 0;
  const urls = new WeakMap<Store, string>();
  const open = async (url: string) => {
    const store = await openPostgresStore(url, { maxConnections: 4 });
    opened.push(store);
    urls.set(store, url);
    return store;
  };
  return {
    name: "PostgreSQL",
    fresh: async () => open(await pg().createDatabase(`${prefix}_${++made}`)),
    another: async (store) => open(urls.get(store)!),
  };
}

/** Declares `cases` once per backend, each in a describe named after it. */
export function contract(title: string, cases: (b: StoreBackend) => void): void {
  describe(`${title} (SQLite)`, () => {
    const opened: Store[] = [];
    afterAll(async () => {
      for (const s of opened.splice(0)) await s.close();
    });
    cases(sqliteBackend(opened));
  });
  if (postgresMissing) {
    console.warn(`store contract "${title}" on PostgreSQL skipped: ${postgresMissing}`);
    describe.skip(`${title} (PostgreSQL: ${postgresMissing})`, () => {});
    return;
  }
  describe(`${title} (PostgreSQL)`, () => {
    let pg: RunningPostgres | undefined;
    const opened: Store[] = [];
    beforeAll(async () => {
      pg = await startPostgres();
    }, START_MS);
    afterAll(async () => {
      for (const s of opened.splice(0)) await s.close();
      await pg?.stop();
    });
    const prefix = title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .slice(0, 40);
    cases(postgresBackend(() => pg!, opened, prefix));
  });
}
