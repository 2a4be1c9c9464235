/**
 * The store boundary of docs/store-interface.md, kept by the suite: outside src/store, no file
 * imports bun:sqlite, writes SQL or opens a transaction on a connection; everything that reaches the
 * database goes through the Store interface (src/store/store.ts), so that a second backend is an
 * added folder. The files not yet converted are listed below with the reason, and the list may only
 * shrink: a listed file that no longer crosses the boundary fails the test until it is taken off.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const SRC = join(ROOT, "src");

/** Files outside src/store that still reach the database directly, and why. */
const NOT_YET: Record<string, string> = {
  // Diagnostics of a data folder, run while isched may be stopped: they open the file read-only
  // (store/sqlite/backup.ts openReadOnly) and read its schema facts, which no backend shares.
  "src/cli/commands/doctor.ts": "reads the database file read-only (openReadOnly, application_id, keys)",
  "src/cli/commands/validate.ts":
    "reads the database file read-only (openReadOnly, schema version, keys, policies)",
};

/** Comments out (a comment may name a statement or the driver), strings and code kept. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

const CROSSINGS: readonly { what: string; pattern: RegExp }[] = [
  {
    what: "imports bun:sqlite",
    pattern:
      /\bfrom\s+["']bun:sqlite["']|\bimport\(\s*["']bun:sqlite["']\s*\)|\brequire\(\s*["']bun:sqlite["']\s*\)/,
  },
  {
    what: "writes SQL",
    pattern:
      /["'`][^"'`]*\b(SELECT\s+(?:[\w*]+\s*(?:,|FROM|AS)|count\(|max\(|min\(|DISTINCT)|INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|UNIQUE)|ALTER\s+TABLE|DROP\s+(?:TABLE|INDEX)|PRAGMA\s+\w)/,
  },
  {
    what: "runs statements on a connection",
    pattern: /\.(query|prepare)(<[^>]*>)?\(\s*["'`]|\.transaction\(/,
  },
];

/** What a file does that only the store may do. */
export function crossings(source: string): string[] {
  const code = withoutComments(source);
  return CROSSINGS.filter((c) => c.pattern.test(code)).map((c) => c.what);
}

/**
 * Outside src/store, who may name the SQLite implementation itself: the places that open a data
 * folder's database, and the retention pruner's wiring. Everything else takes a Store and imports src/store/store.ts (or errors.ts and
 * the shared values beside it).
 */
const OPENS_SQLITE = [
  "src/server/database.ts",
  // Retention is not behind the Store yet: the pruner runs on the SQLite connection.
  "src/server/observability.ts",
  "src/cli/commands/admin.ts",
  "src/cli/commands/backup.ts",
  "src/cli/running-server.ts",
  "src/cli/commands/doctor.ts",
  "src/cli/commands/validate.ts",
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

const outsideStore = sourceFiles(SRC)
  .map((path) => relative(ROOT, path))
  .filter((path) => !path.startsWith("src/store/"))
  .sort();

describe("only src/store reaches the database", () => {
  test("no file outside src/store imports bun:sqlite, writes SQL or runs statements (but those listed)", () => {
    const found = outsideStore
      .filter((path) => !(path in NOT_YET))
      .map((path) => ({ path, crossings: crossings(readFileSync(join(ROOT, path), "utf8")) }))
      .filter((f) => f.crossings.length > 0)
      .map((f) => `${f.path}: ${f.crossings.join(", ")}`);
    expect(found).toEqual([]);
  });

  test("every file listed as not yet converted still crosses the boundary (the list only shrinks)", () => {
    const stale = Object.keys(NOT_YET).filter(
      (path) =>
        !outsideStore.includes(path) || crossings(readFileSync(join(ROOT, path), "utf8")).length === 0,
    );
    expect(stale).toEqual([]);
  });

  test("only the places that open a database import src/store/sqlite", () => {
    const naming = outsideStore.filter(
      (path) =>
        !OPENS_SQLITE.includes(path) &&
        /from\s+["'][./]*\/?store\/sqlite\//.test(readFileSync(join(ROOT, path), "utf8")),
    );
    expect(naming).toEqual([]);
  });

  test("the Store interface itself is types only: no driver, no SQL", () => {
    const source = readFileSync(join(SRC, "store", "store.ts"), "utf8");
    expect(crossings(source)).toEqual([]);
    expect(withoutComments(source)).not.toMatch(/^import (?!type )/m);
  });
});

describe("the check itself", () => {
  test("finds a driver import, a statement, a query call and a transaction", () => {
    expect(crossings('import type { Database } from "bun:sqlite";')).toEqual(["imports bun:sqlite"]);
    expect(crossings('const s = "SELECT id FROM messages WHERE id = ?";')).toEqual(["writes SQL"]);
    expect(crossings("db.run(`DELETE FROM settings WHERE key = ?`, [k]);")).toEqual(["writes SQL"]);
    expect(crossings('db.query<{ n: number }, []>("x").get();')).toEqual(["runs statements on a connection"]);
    expect(crossings("db.transaction(() => {}).immediate();")).toEqual(["runs statements on a connection"]);
  });

  test("leaves comments and prose alone", () => {
    expect(crossings("// SELECT id FROM messages: the store's job\nconst a = 1;")).toEqual([]);
    expect(crossings("/* import from 'bun:sqlite' */ const b = 2;")).toEqual([]);
    expect(crossings('const t = "Select the message to delete from the list";')).toEqual([]);
    expect(crossings('log("one mail transaction", { transaction: 1 });')).toEqual([]);
  });
});
