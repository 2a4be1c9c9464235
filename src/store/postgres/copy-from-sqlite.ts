/**
 * Copying an SQLite installation into PostgreSQL (`isched migrate-data`): every table of the schema,
 * row for row with the same ids and bytes, in one PostgreSQL transaction, so that a copy that fails
 * half-way leaves the target as it was.
 *
 * What is copied is decided by the schema, not by the Store interface (which has no "read
 * everything"): the tables SQLite holds must be exactly COPIED_TABLES, and each one's columns must
 * exist on PostgreSQL, or the copy is refused before anything is written. A table a later migration
 * adds therefore stops the copy until it is listed here (test/postgres/copy-from-sqlite.test.ts
 * checks the list against both schemas).
 *
 * - Ids are kept (`OVERRIDING SYSTEM VALUE`): deliveries name their message, attempts their
 *   delivery, replay and iTIP keys their message. Each identity then restarts after the largest id
 *   copied, so the next row PostgreSQL makes gets a new one.
 * - Rows are read in key order a batch at a time (keyset pagination, never OFFSET) and inserted as
 *   multi-row INSERTs with bind parameters; bodies go as bytea, byte for byte.
 * - The target is checked under the migrators' advisory lock inside the transaction: two copies
 *   started at once do not both find it empty.
 * - After the last row, the count of every table is read on both sides in the same transaction; a
 *   difference rolls everything back.
 */
import type { Database, SQLQueryBindings } from "bun:sqlite";
import { SQL } from "bun";
import { StoreError } from "../errors.ts";
import { acquireDataLock, lockPathFor } from "../sqlite/data-lock.ts";
import { openDatabase } from "../sqlite/database.ts";
import { newerSchemaReason, SCHEMA_VERSION, schemaVersion } from "../sqlite/migrations.ts";
import { type Row, type Runner, rows } from "./_values.ts";
import { MIGRATION_LOCK, migratePostgres, postgresSchemaVersion } from "./migrate.ts";
import { POSTGRES_MIGRATIONS } from "./migrations.ts";

export interface CopiedTable {
  readonly name: string;
  /** The primary key's columns: the order rows are read in. */
  readonly key: readonly string[];
  /** A `bigint GENERATED ALWAYS AS IDENTITY` id to restart after the copy. */
  readonly identity?: string;
}

/** Every table of the SQLite schema, parents before children (deliveries name a message...). */
export const COPIED_TABLES: readonly CopiedTable[] = [
  { name: "messages", key: ["id"], identity: "id" },
  { name: "deliveries", key: ["id"], identity: "id" },
  { name: "attempts", key: ["id"], identity: "id" },
  { name: "replay_keys", key: ["key"] },
  { name: "itip_keys", key: ["key"] },
  { name: "dkim_keys", key: ["id"], identity: "id" },
  { name: "peer_policies", key: ["domain"] },
  { name: "peer_facts", key: ["domain", "kind", "name"] },
  { name: "settings", key: ["key"] },
  { name: "console_sessions", key: ["id_hash"] },
];

/** PostgreSQL's tables for several nodes that a copy also empties with `replace` (nothing to copy). */
const NODE_TABLES = ["nodes", "smtp_retries"] as const;

/** Rows per INSERT at most, and parameters (PostgreSQL allows 65,535 per statement). */
const MAX_BATCH_ROWS = 1000;
const MAX_PARAMETERS = 30_000;
/**
 * An INSERT is sent once its rows hold this many bytes of values (message bodies), and a batch read
 * from SQLite holds about this many: the first batch of a table is small (FIRST_BATCH_ROWS), the next
 * ones sized by the bytes per row seen so far, so that a table of large bodies never has a thousand
 * of them in memory at once.
 */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const FIRST_BATCH_ROWS = 50;

export interface TableCount {
  readonly table: string;
  readonly sqlite: number;
  readonly postgres: number;
}

export interface CopyProgress {
  readonly table: string;
  readonly copied: number;
  readonly total: number;
}

export interface CopyOptions {
  /** The SQLite database, opened by the caller (who holds its data lock). */
  sqlite: Database;
  /** The PostgreSQL pool of the target. */
  postgres: Runner;
  /** Empty isched's tables in the target first, instead of refusing a target that holds data. */
  replace?: boolean;
  /** Called after each batch. */
  onProgress?: (p: CopyProgress) => void;
  /** Called once both sides are checked, before the first row is copied. */
  onStart?: () => void;
  nowMs?: () => number;
}

export interface CopyReport {
  readonly counts: readonly TableCount[];
  /** Whether the target's schema was made by this copy (an empty database). */
  readonly migrated: boolean;
}

/** The SQLite database is in use: an isched holds its data lock (the copy would miss its writes). */
export class SourceInUseError extends StoreError {}

/**
 * The whole copy as `isched migrate-data` runs it: takes the SQLite database's data lock (refusing
 * a database an isched serves), opens it read-only (refusing one of another schema), connects to
 * `url`, copies, and lets everything go again. Throws SourceInUseError, or a StoreError (one line).
 */
export async function copyInstallation(o: {
  databasePath: string;
  url: string;
  replace?: boolean;
  onProgress?: (p: CopyProgress) => void;
  onStart?: () => void;
  /** How long to wait for PostgreSQL to accept a connection. */
  connectTimeoutS?: number;
}): Promise<CopyReport> {
  let lock: ReturnType<typeof acquireDataLock>;
  try {
    lock = acquireDataLock(lockPathFor(o.databasePath));
  } catch (e) {
    if (e instanceof StoreError) throw new SourceInUseError(e.message, { cause: e });
    throw e;
  }
  const postgres = new SQL({ url: o.url, max: 2, connectionTimeout: o.connectTimeoutS ?? 10 });
  let sqlite: Database | undefined;
  try {
    sqlite = openDatabase(o.databasePath, { readOnly: true });
    return await copyFromSqlite({ sqlite, postgres, ...o });
  } finally {
    sqlite?.close();
    lock.release();
    await postgres.close({ timeout: 1 }).catch(() => {});
  }
}

/**
 * The checks that need no writing: both schemas are this isched's version, and SQLite holds exactly
 * the tables COPIED_TABLES names. Throws a StoreError (one line) otherwise. Returns whether the
 * target is an empty database (its schema still to be made).
 */
export async function checkCopyable(o: { sqlite: Database; postgres: Runner }): Promise<{ empty: boolean }> {
  const found = schemaVersion(o.sqlite);
  if (found !== SCHEMA_VERSION)
    throw new StoreError(
      `the SQLite database has schema ${found} and this isched copies schema ${SCHEMA_VERSION}: ` +
        (found < SCHEMA_VERSION
          ? "start this isched once on the data folder to migrate it"
          : "run the isched that wrote it"),
    );
  const tables = sqliteTables(o.sqlite);
  const known = COPIED_TABLES.map((t) => t.name);
  const unknown = tables.filter((t) => !known.includes(t));
  const missing = known.filter((t) => !tables.includes(t));
  if (unknown.length > 0 || missing.length > 0)
    throw new StoreError(
      `the SQLite database's tables are not the ones this isched copies (${[
        ...unknown.map((t) => `unknown: ${t}`),
        ...missing.map((t) => `missing: ${t}`),
      ].join(", ")})`,
    );
  const version = await postgresSchemaVersion(o.postgres);
  const writes = POSTGRES_MIGRATIONS.length;
  if (version > writes) {
    const [meta] = await rows(o.postgres, "SELECT written_by FROM schema_meta");
    const writtenBy = typeof meta?.written_by === "string" ? meta.written_by : undefined;
    throw new StoreError(
      `the PostgreSQL database ${newerSchemaReason({ found: version, known: writes, writtenBy }).replace(/^it /, "")}`,
    );
  }
  if (version !== 0 && version < writes)
    throw new StoreError(
      `the PostgreSQL database has schema ${version} and this isched writes schema ${writes}: ` +
        "start this isched once with --database on it to migrate it, or give an empty database",
    );
  return { empty: version === 0 };
}

/** Copies every table; throws a StoreError (nothing committed) when the target holds data or counts differ. */
export async function copyFromSqlite(o: CopyOptions): Promise<CopyReport> {
  const { empty } = await checkCopyable(o);
  if (empty) await migratePostgres(o.postgres);
  await checkColumns(o.sqlite, o.postgres);
  const counts = await o.postgres.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    const held = await targetRows(tx);
    if (held.length > 0) {
      if (!o.replace)
        throw new StoreError(
          `the PostgreSQL database already holds data (${held.map((h) => `${h.rows} ${h.table}`).join(", ")}); ` +
            "give an empty database, or --replace to empty isched's tables there first",
        );
      await refuseLiveNodes(tx, (o.nowMs ?? Date.now)());
      const all = [...COPIED_TABLES.map((t) => t.name), ...NODE_TABLES];
      await tx.unsafe(`TRUNCATE ${all.join(", ")} RESTART IDENTITY`);
    }
    o.onStart?.();
    // One snapshot of SQLite for the whole copy (the caller's lock keeps writers away anyway).
    o.sqlite.run("BEGIN");
    try {
      for (const table of COPIED_TABLES) await copyTable(o.sqlite, tx, table, o.onProgress);
      const out: TableCount[] = [];
      for (const { name } of COPIED_TABLES) {
        const sqlite = sqliteCount(o.sqlite, name);
        const [r] = await rows(tx, `SELECT count(*)::bigint AS n FROM ${name}`);
        out.push({ table: name, sqlite, postgres: Number(r!.n) });
      }
      const differ = out.filter((c) => c.sqlite !== c.postgres);
      if (differ.length > 0)
        throw new StoreError(
          `the counts differ after the copy, nothing was kept (${differ
            .map((c) => `${c.table}: ${c.sqlite} in SQLite, ${c.postgres} in PostgreSQL`)
            .join("; ")})`,
        );
      return out;
    } finally {
      o.sqlite.run("COMMIT");
    }
  });
  return { counts, migrated: empty };
}

function sqliteTables(db: Database): string[] {
  return db
    .query<{ name: string }, []>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all()
    .map((r) => r.name);
}

function sqliteCount(db: Database, table: string): number {
  return db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
}

function sqliteColumns(db: Database, table: string): string[] {
  return db
    .query<{ name: string }, []>(`PRAGMA table_info(${table})`)
    .all()
    .map((r) => r.name);
}

/** Every SQLite column must have a PostgreSQL column of the same name (the schemas are kept equal). */
async function checkColumns(db: Database, pg: Runner): Promise<void> {
  const found = await rows(
    pg,
    `SELECT table_name AS t, column_name AS c FROM information_schema.columns
      WHERE table_schema = current_schema()`,
  );
  const columns = new Set(found.map((r) => `${r.t}.${r.c}`));
  for (const { name } of COPIED_TABLES) {
    const lacking = sqliteColumns(db, name).filter((c) => !columns.has(`${name}.${c}`));
    if (lacking.length > 0)
      throw new StoreError(
        `the PostgreSQL table ${name} lacks the column${lacking.length > 1 ? "s" : ""} ${lacking.join(", ")}`,
      );
  }
}

/**
 * A node that beat its heart this recently and has not stopped cleanly may be running: emptying the
 * tables under it would lose what it accepts. Nodes beat every 10 s at most (src/server/cluster.ts).
 */
const LIVE_NODE_MS = 60_000;

/** Refuses `replace` while a node may still run on the target. */
async function refuseLiveNodes(q: Runner, nowMs: number): Promise<void> {
  const live = await rows(
    q,
    "SELECT id, host, seen_at FROM nodes WHERE stopped_at IS NULL AND seen_at > $1 ORDER BY id",
    [nowMs - LIVE_NODE_MS],
  );
  if (live.length === 0) return;
  const named = live
    .map(
      (n) =>
        `${n.id} on ${n.host}, heartbeat ${Math.max(0, Math.round((nowMs - Number(n.seen_at)) / 1000))} s ago`,
    )
    .join("; ");
  throw new StoreError(
    `isched nodes may still run on the PostgreSQL database (${named}): stop every node before replacing its data`,
  );
}

/** The copied tables (and the nodes' own) that hold rows in the target. */
async function targetRows(q: Runner): Promise<{ table: string; rows: number }[]> {
  const out: { table: string; rows: number }[] = [];
  for (const table of [...COPIED_TABLES.map((t) => t.name), ...NODE_TABLES]) {
    const [r] = await rows(q, `SELECT count(*)::bigint AS n FROM ${table}`);
    const n = Number(r!.n);
    if (n > 0) out.push({ table, rows: n });
  }
  return out;
}

async function copyTable(
  db: Database,
  tx: Runner,
  table: CopiedTable,
  onProgress: CopyOptions["onProgress"],
): Promise<void> {
  const columns = sqliteColumns(db, table.name);
  const total = sqliteCount(db, table.name);
  const batchRows = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / columns.length)));
  const keys = table.key;
  const list = columns.join(", ");
  const order = keys.join(", ");
  const first = db.query<Row, [number]>(`SELECT ${list} FROM ${table.name} ORDER BY ${order} LIMIT ?`);
  // Row values compare as the ORDER BY sorts: (a, b) > (x, y) is the rest of the table after (x, y).
  const after = db.query<Row, SQLQueryBindings[]>(
    `SELECT ${list} FROM ${table.name} WHERE (${order}) > (${keys.map(() => "?").join(", ")})
      ORDER BY ${order} LIMIT ?`,
  );
  let copied = 0;
  let bytes = 0;
  let limit = Math.min(FIRST_BATCH_ROWS, batchRows);
  let last: Row | undefined;
  for (;;) {
    const batch =
      last === undefined
        ? first.all(limit)
        : after.all(...keys.map((k) => last![k] as SQLQueryBindings), limit);
    if (batch.length === 0) break;
    await insertRows(tx, table.name, columns, batch);
    copied += batch.length;
    for (const row of batch) bytes += rowBytes(row, columns);
    last = batch[batch.length - 1];
    onProgress?.({ table: table.name, copied, total });
    if (batch.length < limit) break;
    limit = Math.max(1, Math.min(batchRows, Math.floor(MAX_BATCH_BYTES / Math.max(1, bytes / copied))));
  }
  if (table.identity)
    await rows(
      tx,
      `SELECT setval(pg_get_serial_sequence('${table.name}', '${table.identity}'),
        coalesce((SELECT max(${table.identity}) FROM ${table.name}), 0) + 1, false)`,
    );
}

/** Inserts `batch` in as few statements as MAX_BATCH_BYTES allows. */
async function insertRows(
  tx: Runner,
  table: string,
  columns: readonly string[],
  batch: Row[],
): Promise<void> {
  let start = 0;
  while (start < batch.length) {
    let end = start;
    let bytes = 0;
    while (end < batch.length && (end === start || bytes < MAX_BATCH_BYTES)) {
      bytes += rowBytes(batch[end]!, columns);
      end++;
    }
    const slice = batch.slice(start, end);
    const params: unknown[] = [];
    const tuples = slice.map((row) => {
      const marks = columns.map((c) => {
        params.push(row[c] ?? null);
        return `$${params.length}`;
      });
      return `(${marks.join(", ")})`;
    });
    await tx.unsafe(
      `INSERT INTO ${table} (${columns.join(", ")}) OVERRIDING SYSTEM VALUE VALUES ${tuples.join(", ")}`,
      params,
    );
    start = end;
  }
}

function rowBytes(row: Row, columns: readonly string[]): number {
  let n = 0;
  for (const c of columns) {
    const v = row[c];
    if (v instanceof Uint8Array) n += v.byteLength;
    else if (typeof v === "string") n += v.length;
    else n += 8;
  }
  return n;
}
