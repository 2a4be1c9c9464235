/**
 * Builds something once per Database connection (prepared statements, mostly) and keeps it for the
 * life of that connection. A WeakMap, so a closed and dropped connection takes its statements along.
 */
import type { Database } from "bun:sqlite";

export function perDatabase<T>(build: (db: Database) => T): (db: Database) => T {
  const cache = new WeakMap<Database, T>();
  return (db) => {
    let value = cache.get(db);
    if (value === undefined) {
      value = build(db);
      cache.set(db, value);
    }
    return value;
  };
}
