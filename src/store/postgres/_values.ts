/**
 * Values between Bun.SQL and the store's row types (docs/store-interface.md, "SQL that needs another
 * form on PostgreSQL"): int8 columns (ids, millisecond times) come back from Bun.SQL as strings and
 * become numbers here (every id and time stays below 2^53); bytea comes back as a Buffer and becomes
 * a plain Uint8Array; a set of ids is bound as one bigint[] literal, so a statement's text does not
 * depend on how many ids there are.
 */
import type { SQL } from "bun";

/** A connection pool or a transaction: what a statement runs on. */
export type Runner = SQL;

export type Row = Record<string, unknown>;

/** `row` with each of `columns` that holds an int8 string made a number (null stays null). */
export function withNumbers<T>(row: Row, columns: readonly string[]): T {
  const out: Row = { ...row };
  for (const c of columns) {
    const v = out[c];
    if (typeof v === "string" || typeof v === "bigint") out[c] = Number(v);
  }
  return out as T;
}

/** A bytea value as the SQLite store returns it: a Uint8Array of its own (not a Buffer view). */
export function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new TypeError(`expected bytea, got ${typeof v}`);
}

/** The ids as one `bigint[]` parameter (`= ANY($n::bigint[])`). */
export function idArray(ids: readonly number[]): string {
  for (const id of ids) if (!Number.isSafeInteger(id)) throw new RangeError(`not an id: ${id}`);
  return `{${ids.join(",")}}`;
}

/** Runs `text` with positional parameters ($1, $2, ...); its rows. */
export async function rows(q: Runner, text: string, params: readonly unknown[] = []): Promise<Row[]> {
  return (await q.unsafe(text, [...params])) as Row[];
}

/** Runs `text`; how many rows it changed. */
export async function changes(q: Runner, text: string, params: readonly unknown[] = []): Promise<number> {
  return (await q.unsafe(text, [...params])).count as number;
}
