/**
 * One statement, two databases: a fresh isched SQLite database (openDatabase) and a fresh isched
 * PostgreSQL one (migratePostgres on the real server), behind the same small interface, so that a
 * test runs the same SQL on both and compares what each did. Statements use `$1, $2, ...`
 * (SQLite reads them as `?1, ?2, ...`). A refused statement becomes the kind of rule that refused it,
 * named the same on both backends.
 */
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { migratePostgres } from "../../src/store/postgres/migrate.ts";
import type { PostgresMigration } from "../../src/store/postgres/migrations.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import type { Migration } from "../../src/store/sqlite/migrations.ts";
import { migrate } from "../../src/store/sqlite/migrations.ts";
import type { RunningPostgres } from "../support/postgres.ts";

export type Param = string | number | null | Uint8Array;
export type Row = Record<string, unknown>;

export interface Backend {
  readonly name: "SQLite" | "PostgreSQL";
  /** Rows (of a SELECT or RETURNING), with integers as numbers on both backends. */
  all(text: string, params?: readonly Param[]): Promise<Row[]>;
  /** Rows changed. */
  run(text: string, params?: readonly Param[]): Promise<number>;
  /** Applies the migrations the database lacks, up to the latest; returns the versions applied. */
  migrate(): Promise<number[]>;
  close(): Promise<void>;
}

/**
 * What a statement did: "ok", or the rule that refused it. A trigger's refusal is its message
 * (SQLite's RAISE(ABORT, ...), PostgreSQL's RAISE EXCEPTION ... ERRCODE 23000).
 */
export type Outcome = "ok" | "unique" | "check" | "not null" | "foreign key" | { trigger: string };

const SQLITE_KINDS: Record<string, Outcome> = {
  SQLITE_CONSTRAINT_UNIQUE: "unique",
  SQLITE_CONSTRAINT_PRIMARYKEY: "unique",
  SQLITE_CONSTRAINT_CHECK: "check",
  SQLITE_CONSTRAINT_NOTNULL: "not null",
  SQLITE_CONSTRAINT_FOREIGNKEY: "foreign key",
};

const POSTGRES_KINDS: Record<string, Outcome> = {
  "23505": "unique",
  "23514": "check",
  "23502": "not null",
  "23503": "foreign key",
};

export async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return "ok";
  } catch (e) {
    const err = e as Error & { code?: string; errno?: string | number };
    if (e instanceof SQL.PostgresError) {
      const code = String(err.errno);
      if (code === "23000") return { trigger: err.message };
      const kind = POSTGRES_KINDS[code];
      if (kind) return kind;
    } else if (err.code === "SQLITE_CONSTRAINT_TRIGGER") return { trigger: err.message };
    else if (err.code && SQLITE_KINDS[err.code]) return SQLITE_KINDS[err.code]!;
    throw e;
  }
}

/** Integers come back from PostgreSQL's bigint columns as strings: numbers, as SQLite gives them. */
function numbers(row: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row))
    out[k] = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
  return out;
}

export function sqliteBackend(db: Database): Backend {
  const positional = (text: string) => text.replace(/\$(\d+)/g, "?$1");
  return {
    name: "SQLite",
    all: async (text, params = []) => db.query<Row, Param[]>(positional(text)).all(...params),
    run: async (text, params = []) => db.query<never, Param[]>(positional(text)).run(...params).changes,
    migrate: async () => migrate(db),
    close: async () => db.close(),
  };
}

export function postgresBackend(sql: SQL): Backend {
  return {
    name: "PostgreSQL",
    all: async (text, params = []) => ((await sql.unsafe(text, [...params])) as Row[]).map(numbers),
    run: async (text, params = []) => (await sql.unsafe(text, [...params])).count,
    migrate: () => migratePostgres(sql),
    close: () => sql.close({ timeout: 1 }),
  };
}

/** Fresh databases on the test server, and the clients made on them, closed together. */
export class PostgresDatabases {
  #made = 0;
  readonly #clients: SQL[] = [];

  constructor(
    readonly pg: RunningPostgres,
    readonly prefix: string,
  ) {}

  /** A fresh, empty database: its name and URL. */
  async create(): Promise<{ name: string; url: string }> {
    const name = `${this.prefix}_${++this.#made}`;
    return { name, url: await this.pg.createDatabase(name) };
  }

  connect(url: string, max = 2): SQL {
    const sql = new SQL({ url, max });
    this.#clients.push(sql);
    return sql;
  }

  async closeAll(): Promise<void> {
    for (const c of this.#clients.splice(0)) await c.close({ timeout: 1 });
  }
}

/** Fresh databases on both backends, at the latest version or migrated with the lists given. */
export class BackendPair {
  readonly #databases: PostgresDatabases;
  readonly #open: Backend[] = [];

  constructor(pg: RunningPostgres, prefix: string) {
    this.#databases = new PostgresDatabases(pg, prefix);
  }

  async fresh(
    o: { sqlite?: readonly Migration[]; postgres?: readonly PostgresMigration[] } = {},
  ): Promise<Backend[]> {
    let db: Database;
    if (o.sqlite) {
      db = new Database(":memory:", { strict: true });
      db.run("PRAGMA foreign_keys = ON");
      migrate(db, o.sqlite);
    } else db = openDatabase(":memory:");
    const sql = new SQL({ url: (await this.#databases.create()).url, max: 2 });
    await migratePostgres(sql, o.postgres ? { migrations: o.postgres } : {});
    const pair = [sqliteBackend(db), postgresBackend(sql)];
    this.#open.push(...pair);
    return pair;
  }

  async closeAll(): Promise<void> {
    for (const b of this.#open.splice(0)) await b.close();
  }
}

/** Runs `scenario` on each backend; the results keyed by backend name, for one toEqual. */
export async function onBoth<T>(
  backends: readonly Backend[],
  scenario: (b: Backend) => Promise<T>,
): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  for (const b of backends) out[b.name] = await scenario(b);
  return out;
}

/** `value` expected from both backends, in the shape onBoth returns. */
export const same = <T>(value: T): Record<string, T> => ({ SQLite: value, PostgreSQL: value });

export const BODY = new TextEncoder().encode("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");

/** A message row (a refusal when `refusal` is given); its id. */
export async function insertMessage(
  b: Backend,
  uuid: string,
  refusal: string | null = null,
): Promise<number> {
  const [row] = await b.all(
    `INSERT INTO messages (uuid, received_at, direction, intake, originator, method, component, content_type, body, refusal)
      VALUES ($1, 1000, 'inbound', 'ischedule', 'mailto:a@peer.example', 'REQUEST', 'VEVENT', 'text/calendar', $2, $3)
      RETURNING id`,
    [uuid, BODY, refusal],
  );
  return row!.id as number;
}

/** A key of isched's own in `state`; rows inserted. */
export function insertKey(b: Backend, domain: string, selector: string, state: string): Promise<number> {
  return b.run(
    `INSERT INTO dkim_keys (domain, selector, algorithm, bits, private_key_pem, record, state, created_at)
      VALUES ($1, $2, 'ed25519-sha256', 256, 'PEM', 'v=DKIM1', $3, 1000)`,
    [domain, selector, state],
  );
}
