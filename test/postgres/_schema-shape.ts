/**
 * The shape of a schema as both backends can report it, for comparing isched's SQLite schema with
 * its PostgreSQL twin: per table, the columns in order (name, a type class, nullability, default),
 * the primary key, the unique constraints, the foreign keys, the named indexes (columns, unique,
 * partial or not) and the triggers. What differs by design is normalised here:
 * - types become a class (integer, real, text, blob): `INTEGER` and `bigint`/`integer` are one;
 * - a primary key's columns count as NOT NULL (SQLite lets a rowid table's TEXT PRIMARY KEY hold
 *   NULL, a quirk isched never relies on; PostgreSQL forbids it);
 * - an index column under `COLLATE NOCASE` reads as `lower(column)`, PostgreSQL's form of it;
 * - a default loses PostgreSQL's cast (`'none'::text` reads `'none'`);
 * - a unique constraint is compared by its columns (the backends name its index differently).
 * CHECK constraints are not compared here (neither backend reports them in a comparable form):
 * test/postgres/constraints.test.ts checks that they refuse the same rows.
 */
import type { Database } from "bun:sqlite";
import type { SQL } from "bun";

export type TypeClass = "integer" | "real" | "text" | "blob" | "other";

export interface ColumnShape {
  name: string;
  type: TypeClass;
  notNull: boolean;
  default: string | null;
}

export interface IndexShape {
  name: string;
  columns: string[];
  unique: boolean;
  partial: boolean;
}

export interface ForeignKeyShape {
  columns: string[];
  references: string;
  referencedColumns: string[];
  onDelete: string;
}

export interface TableShape {
  columns: ColumnShape[];
  primaryKey: string[];
  /** Each unique constraint's columns, comma-separated, sorted. */
  uniques: string[];
  foreignKeys: ForeignKeyShape[];
  indexes: IndexShape[];
  triggers: string[];
}

export type SchemaShape = Record<string, TableShape>;

function sqliteType(declared: string): TypeClass {
  // SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), in their order.
  const t = declared.toUpperCase();
  if (t.includes("INT")) return "integer";
  if (t.includes("CHAR") || t.includes("CLOB") || t.includes("TEXT")) return "text";
  if (t === "" || t.includes("BLOB")) return "blob";
  if (t.includes("REAL") || t.includes("FLOA") || t.includes("DOUB")) return "real";
  return "other";
}

function postgresType(name: string): TypeClass {
  if (["int2", "int4", "int8"].includes(name)) return "integer";
  if (["float4", "float8"].includes(name)) return "real";
  if (["text", "varchar", "bpchar"].includes(name)) return "text";
  if (name === "bytea") return "blob";
  return "other";
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
const sortedLists = (lists: string[][]) => lists.map((l) => l.join(", ")).sort();

export function sqliteShape(db: Database): SchemaShape {
  const shape: SchemaShape = {};
  const tables = db
    .query<{ name: string }, []>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all();
  for (const { name: table } of tables) {
    const info = db
      .query<
        { name: string; type: string; notnull: number; dflt_value: string | null; pk: number },
        [string]
      >('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid')
      .all(table);
    const primaryKey = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    const indexList = db
      .query<{ name: string; unique: number; origin: string; partial: number }, [string]>(
        'SELECT name, "unique", origin, partial FROM pragma_index_list(?)',
      )
      .all(table);
    const columnsOf = (index: string) =>
      db
        .query<{ name: string | null; desc: number; coll: string }, [string]>(
          'SELECT name, "desc", coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno',
        )
        .all(index)
        .map((c) => {
          const column = c.name ?? "<expression>";
          const folded = c.coll.toUpperCase() === "NOCASE" ? `lower(${column})` : column;
          return c.desc ? `${folded} DESC` : folded;
        });
    const fks = db
      .query<{ id: number; table: string; from: string; to: string; on_delete: string }, [string]>(
        'SELECT id, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq',
      )
      .all(table);
    const foreignKeys = new Map<number, ForeignKeyShape>();
    for (const fk of fks) {
      const f = foreignKeys.get(fk.id) ?? {
        columns: [],
        references: fk.table,
        referencedColumns: [],
        onDelete: fk.on_delete,
      };
      f.columns.push(fk.from);
      f.referencedColumns.push(fk.to);
      foreignKeys.set(fk.id, f);
    }
    shape[table] = {
      columns: info.map((c) => ({
        name: c.name,
        type: sqliteType(c.type),
        notNull: c.notnull === 1 || c.pk > 0,
        default: c.dflt_value,
      })),
      primaryKey,
      uniques: sortedLists(indexList.filter((i) => i.origin === "u").map((i) => columnsOf(i.name))),
      foreignKeys: [...foreignKeys.values()],
      indexes: indexList
        .filter((i) => i.origin === "c")
        .map((i) => ({
          name: i.name,
          columns: columnsOf(i.name),
          unique: i.unique === 1,
          partial: i.partial === 1,
        }))
        .sort(byName),
      triggers: db
        .query<{ name: string }, [string]>(
          "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ? ORDER BY name",
        )
        .all(table)
        .map((t) => t.name),
    };
  }
  return shape;
}

const ON_DELETE: Record<string, string> = {
  a: "NO ACTION",
  r: "RESTRICT",
  c: "CASCADE",
  n: "SET NULL",
  d: "SET DEFAULT",
};

/** The shape of the tables in the connection's current schema. */
export async function postgresShape(sql: SQL): Promise<SchemaShape> {
  const shape: SchemaShape = {};
  const tables: { oid: number; name: string }[] = await sql`SELECT c.oid::int AS oid, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname`;
  for (const { oid, name: table } of tables) {
    const columns: { name: string; type: string; not_null: boolean; default: string | null }[] =
      await sql`SELECT a.attname AS name, t.typname AS type, a.attnotnull AS not_null,
          pg_get_expr(d.adbin, d.adrelid) AS default
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = ${oid} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`;
    const constraints: {
      type: string;
      columns: string[];
      references: string | null;
      referenced: string[] | null;
      on_delete: string;
    }[] = await sql`SELECT c.contype AS type,
          ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
          f.relname AS references,
          ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS referenced,
          c.confdeltype::text AS on_delete
        FROM pg_constraint c LEFT JOIN pg_class f ON f.oid = c.confrelid
        WHERE c.conrelid = ${oid} AND c.contype IN ('p', 'u', 'f') ORDER BY c.conname`;
    // Indexes that back a constraint are the constraint's (compared above), not named indexes.
    const indexes: { name: string; columns: string[]; unique: boolean; partial: boolean }[] =
      await sql`SELECT c.relname AS name, i.indisunique AS unique, i.indpred IS NOT NULL AS partial,
          ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                  || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS columns
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = ${oid}
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = ${oid})
        ORDER BY c.relname`;
    const triggers: { name: string }[] = await sql`SELECT tgname AS name FROM pg_trigger
      WHERE tgrelid = ${oid} AND NOT tgisinternal ORDER BY tgname`;
    shape[table] = {
      columns: columns.map((c) => ({
        name: c.name,
        type: postgresType(c.type),
        notNull: c.not_null,
        default: c.default === null ? null : c.default.replace(/::[a-z ]+(\[\])?$/, ""),
      })),
      primaryKey: constraints.find((c) => c.type === "p")?.columns ?? [],
      uniques: sortedLists(constraints.filter((c) => c.type === "u").map((c) => c.columns)),
      foreignKeys: constraints
        .filter((c) => c.type === "f")
        .map((c) => ({
          columns: c.columns,
          references: c.references!,
          referencedColumns: c.referenced!,
          onDelete: ON_DELETE[c.on_delete] ?? c.on_delete,
        })),
      indexes: indexes
        .map((i) => ({ name: i.name, columns: i.columns, unique: i.unique, partial: i.partial }))
        .sort(byName),
      triggers: triggers.map((t) => t.name),
    };
  }
  return shape;
}

const show = (v: unknown) => JSON.stringify(v);

/**
 * What differs between the SQLite and the PostgreSQL shape, one line per difference naming the
 * table, column, key or index and what each backend has; `postgresOnly` tables are left out.
 */
export function shapeDifferences(
  sqlite: SchemaShape,
  postgres: SchemaShape,
  postgresOnly: readonly string[] = [],
): string[] {
  const out: string[] = [];
  for (const table of Object.keys(sqlite)) {
    if (!postgres[table]) out.push(`table ${table}: in SQLite, missing on PostgreSQL`);
  }
  for (const table of Object.keys(postgres)) {
    if (!sqlite[table] && !postgresOnly.includes(table))
      out.push(`table ${table}: on PostgreSQL, missing in SQLite`);
  }
  for (const [table, s] of Object.entries(sqlite)) {
    const p = postgres[table];
    if (!p) continue;
    const sNames = s.columns.map((c) => c.name);
    const pNames = p.columns.map((c) => c.name);
    for (const c of s.columns) {
      const q = p.columns.find((x) => x.name === c.name);
      if (!q) {
        out.push(`column ${table}.${c.name}: in SQLite, missing on PostgreSQL`);
        continue;
      }
      for (const k of ["type", "notNull", "default"] as const) {
        if (c[k] !== q[k])
          out.push(`column ${table}.${c.name}: ${k} ${show(c[k])} in SQLite, ${show(q[k])} on PostgreSQL`);
      }
    }
    for (const name of pNames) {
      if (!sNames.includes(name)) out.push(`column ${table}.${name}: on PostgreSQL, missing in SQLite`);
    }
    const common = sNames.filter((n) => pNames.includes(n));
    if (show(common) !== show(pNames.filter((n) => sNames.includes(n))))
      out.push(`table ${table}: columns in order ${show(sNames)} in SQLite, ${show(pNames)} on PostgreSQL`);
    if (show(s.primaryKey) !== show(p.primaryKey))
      out.push(
        `table ${table}: primary key ${show(s.primaryKey)} in SQLite, ${show(p.primaryKey)} on PostgreSQL`,
      );
    if (show(s.uniques) !== show(p.uniques))
      out.push(
        `table ${table}: unique constraints ${show(s.uniques)} in SQLite, ${show(p.uniques)} on PostgreSQL`,
      );
    if (show(s.foreignKeys) !== show(p.foreignKeys))
      out.push(
        `table ${table}: foreign keys ${show(s.foreignKeys)} in SQLite, ${show(p.foreignKeys)} on PostgreSQL`,
      );
    for (const i of s.indexes) {
      const j = p.indexes.find((x) => x.name === i.name);
      if (!j) out.push(`index ${i.name} on ${table}: in SQLite ${show(i)}, missing on PostgreSQL`);
      else if (show(i) !== show(j))
        out.push(`index ${i.name} on ${table}: ${show(i)} in SQLite, ${show(j)} on PostgreSQL`);
    }
    for (const j of p.indexes) {
      if (!s.indexes.some((i) => i.name === j.name))
        out.push(`index ${j.name} on ${table}: on PostgreSQL ${show(j)}, missing in SQLite`);
    }
    if (show(s.triggers) !== show(p.triggers))
      out.push(`table ${table}: triggers ${show(s.triggers)} in SQLite, ${show(p.triggers)} on PostgreSQL`);
  }
  return out;
}
