/**
 * Migrating isched's PostgreSQL schema, which several nodes may do at once.
 *
 * A one-row table `schema_meta` records the schema version and the isched that last changed it
 * (SQLite keeps them in PRAGMA user_version and a setting) and marks the database as isched's (as
 * SQLite's application_id does). Each missing migration runs in its own transaction that first
 * takes a transaction-level advisory lock (`pg_advisory_xact_lock`, released at COMMIT or ROLLBACK,
 * or when a crashed node's session ends), then reads the version again: a node that started while
 * another migrated waits on the lock, then finds the work done and applies nothing twice.
 * PostgreSQL's DDL is transactional, so a failed migration leaves the previous version whole.
 *
 * Refused, with a StoreError naming what to do: a database whose schema is newer than this code
 * knows (its nodes run a newer isched), and a database that is not isched's (tables in isched's
 * schema but no schema_meta). isched's tables live in the connection's current schema (the first
 * existing schema of its search_path, `public` by default), so an administrator can give isched a
 * schema of its own in a shared database.
 *
 * After each migration the migrating node sends NOTIFY `schema` with the new version (delivered at
 * COMMIT), so that running nodes can look at the version again (docs/store-interface.md).
 */
import type { SQL } from "bun";
import { VERSION } from "../../version.ts";
import { StoreError } from "../errors.ts";
import { APPLICATION_ID, newerSchemaReason } from "../sqlite/migrations.ts";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "./migrations.ts";

/** The advisory lock migrators take: SQLite's application_id, "isch". */
export const MIGRATION_LOCK = APPLICATION_ID;

/** The application schema_meta names: a schema_meta table naming another is not isched's. */
export const APPLICATION = "isched";

/** The channel a migrating node notifies with the version it reached. */
export const SCHEMA_CHANNEL = "schema";

const SCHEMA_META = `
CREATE TABLE schema_meta (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  application text NOT NULL,
  version integer NOT NULL,
  written_by text NOT NULL
)`;

export interface MigratePostgresOptions {
  /** The schema's migrations; tests give their own. */
  migrations?: readonly PostgresMigration[];
  /** The isched version recorded as the schema's writer (default: this one); tests give others. */
  iSchedVersion?: string;
}

/** What the database holds, read before migrating and again under the lock. */
type Found = { kind: "empty" } | { kind: "isched"; version: number; writtenBy: string };

/**
 * Applies the migrations the database lacks; returns the versions this call applied (empty when
 * the schema is current, or another node applied them meanwhile). Throws a StoreError (one line)
 * for a database that is not isched's, one newer than `migrations`, or a migration that failed
 * (rolled back).
 */
export async function migratePostgres(sql: SQL, o: MigratePostgresOptions = {}): Promise<number[]> {
  const migrations = o.migrations ?? POSTGRES_MIGRATIONS;
  const writer = o.iSchedVersion ?? VERSION;
  const known = migrations.length;
  // Without the lock first: a current schema (every start but an upgrade's) needs no waiting.
  const before = await readSchema(sql);
  checkNotNewer(before, known);
  const applied: number[] = [];
  if (versionOf(before) >= known) return applied;
  for (;;) {
    // The step is decided under the lock, from the version found there: another node may have
    // migrated (or made the database foreign) since the last read.
    let step: { version: number; migration: PostgresMigration } | undefined;
    try {
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
        const found = await readSchema(tx);
        checkNotNewer(found, known);
        const version = versionOf(found) + 1;
        if (version > known) return;
        step = { version, migration: migrations[version - 1]! };
        if (found.kind === "empty") {
          await tx.unsafe(SCHEMA_META);
          await tx`INSERT INTO schema_meta (application, version, written_by)
            VALUES (${APPLICATION}, 0, ${writer})`;
        }
        await tx.unsafe(step.migration.up);
        await tx`UPDATE schema_meta SET version = ${version}, written_by = ${writer}`;
        await tx`SELECT pg_notify(${SCHEMA_CHANNEL}, ${String(version)})`;
      });
    } catch (e) {
      if (e instanceof StoreError || step === undefined) throw e;
      const reason = e instanceof Error ? e.message : String(e);
      throw new StoreError(`migration ${step.version} (${step.migration.name}) failed: ${reason}`, {
        cause: e,
      });
    }
    if (step === undefined) return applied;
    applied.push(step.version);
  }
}

/** The schema version of an isched database (0 when empty); throws a StoreError for a foreign one. */
export async function postgresSchemaVersion(sql: SQL): Promise<number> {
  return versionOf(await readSchema(sql));
}

const versionOf = (found: Found): number => (found.kind === "empty" ? 0 : found.version);

function checkNotNewer(found: Found, known: number): void {
  if (found.kind === "isched" && found.version > known) {
    const reason = newerSchemaReason({ found: found.version, known, writtenBy: found.writtenBy });
    // Every node of the database must run it: the schema is shared.
    throw new StoreError(`${reason} on every node of this database`);
  }
}

async function readSchema(q: SQL): Promise<Found> {
  const [where] = await q`SELECT current_schema() AS schema,
      (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) AS relations,
      EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = 'schema_meta' AND c.relkind = 'r') AS has_meta`;
  const {
    schema,
    relations,
    has_meta: hasMeta,
  } = where as { schema: string | null; relations: number; has_meta: boolean };
  if (schema === null)
    throw new StoreError(
      "its search_path names no existing schema, so isched has nowhere to create its tables",
    );
  if (!hasMeta) {
    if (relations === 0) return { kind: "empty" };
    throw new StoreError(`it is not an isched database (schema ${schema} has tables, but no isched schema)`);
  }
  const rows: Record<string, unknown>[] = await q`SELECT * FROM schema_meta`;
  const row = rows.length === 1 ? rows[0]! : undefined;
  if (row?.application !== APPLICATION || typeof row.version !== "number")
    throw new StoreError(
      `it is not an isched database (schema ${schema} has a schema_meta table that is not isched's)`,
    );
  return { kind: "isched", version: row.version, writtenBy: String(row.written_by) };
}
