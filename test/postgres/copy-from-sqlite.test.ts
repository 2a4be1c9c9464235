/**
 * The copier under `isched migrate-data` (src/store/postgres/copy-from-sqlite.ts), in process against
 * the real PostgreSQL: its table list is the whole schema on both backends, it copies in batches and
 * says how far it got after each, and a copy that fails leaves the target without a row.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { SQL } from "bun";
import { progressLines } from "../../src/cli/commands/migrate-data.ts";
import {
  COPIED_TABLES,
  type CopyProgress,
  copyFromSqlite,
} from "../../src/store/postgres/copy-from-sqlite.ts";
import { POSTGRES_ONLY_TABLES } from "../../src/store/postgres/migrations.ts";
import { openPostgresStore } from "../../src/store/postgres/store.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";

const START_MS = 60_000;
/** Every byte value, in a body that differs per message. */
const bodyOf = (i: number) => new Uint8Array(300).map((_, j) => (i + j) % 256);
let pg: RunningPostgres;

beforeAll(async () => {
  pg = await startPostgres();
}, START_MS);
afterAll(async () => {
  await pg?.stop();
});

test("the copied tables are every table of both schemas (but PostgreSQL's own)", async () => {
  const db = openDatabase(":memory:");
  const sqlite = db
    .query<{ name: string }, []>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all()
    .map((r) => r.name);
  db.close();
  const store = await openPostgresStore(await pg.createDatabase("tables"));
  const found =
    await store.sql`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`;
  await store.close();
  const postgres = (found as { tablename: string }[])
    .map((r) => r.tablename)
    .filter((t) => !POSTGRES_ONLY_TABLES.includes(t));
  const copied = COPIED_TABLES.map((t) => t.name).sort();
  expect(copied).toEqual(sqlite);
  expect(copied).toEqual(postgres.sort());
});

test(
  "2,500 messages are copied in batches, each reported, with their bodies byte for byte",
  async () => {
    const db = openDatabase(":memory:");
    const store = createSqliteStore(db);
    const n = 2500;
    for (let i = 0; i < n; i++) {
      const body = bodyOf(i);
      await store.accept({
        message: {
          uuid: `m-${i}`,
          receivedAt: 1_000_000 + i,
          direction: "inbound",
          intake: "ischedule",
          originator: "mailto:a@peer.test",
          method: "REQUEST",
          component: "VEVENT",
          contentType: "text/calendar",
          body,
        },
        deliveries: [],
        nowMs: 1_000_000 + i,
      });
    }
    const sql = new SQL({ url: await pg.createDatabase("batches"), max: 2 });
    try {
      const seen: CopyProgress[] = [];
      // What migrate-data prints, on a clock that moves 600 ms per batch: a line every second batch.
      let clockMs = 0;
      const printed: string[] = [];
      const print = progressLines({ nowMs: () => clockMs, write: (line) => printed.push(line) });
      const report = await copyFromSqlite({
        sqlite: db,
        postgres: sql,
        onProgress: (p) => {
          seen.push(p);
          clockMs += 600;
          print(p);
        },
      });
      const messages = seen.filter((p) => p.table === "messages");
      expect(messages.length).toBeGreaterThan(1);
      expect(messages.map((p) => p.copied)).toEqual([...messages.map((p) => p.copied)].sort((a, b) => a - b));
      expect(messages.at(-1)).toEqual({ table: "messages", copied: n, total: n });
      // Batches of 50 rows, then 1,000 (bodies this small fit): 50, 1,050, 2,050, 2,500.
      expect(messages.map((p) => p.copied)).toEqual([50, 1050, 2050, 2500]);
      expect(printed).toEqual(["  messages: 1,050 of 2,500 rows (42%)\n"]);
      expect(report.counts.find((c) => c.table === "messages")).toEqual({
        table: "messages",
        sqlite: n,
        postgres: n,
      });
      const copied = (await sql`SELECT uuid, body FROM messages`) as { uuid: string; body: Uint8Array }[];
      expect(copied.length).toBe(n);
      for (const m of copied)
        expect(Buffer.from(m.body).equals(Buffer.from(bodyOf(Number(m.uuid.slice(2)))))).toBe(true);
    } finally {
      db.close();
      await sql.close();
    }
  },
  START_MS,
);

test(
  "a copy that fails part-way leaves no row in the target",
  async () => {
    const db = openDatabase(":memory:");
    const store = createSqliteStore(db);
    await store.setPeerPolicy({
      domain: "peer.test",
      trust: "dkim",
      allowFrom: null,
      signers: null,
      note: null,
      updatedAt: 1,
    });
    await store.setSetting("a", "b");
    const url = await pg.createDatabase("halfway");
    const sql = new SQL({ url, max: 2 });
    try {
      let calls = 0;
      const failing = copyFromSqlite({
        sqlite: db,
        postgres: sql,
        onProgress: () => {
          // After peer_policies is in, the settings' batch fails.
          if (++calls === 2) throw new Error("interrupted");
        },
      });
      await expect(failing).rejects.toThrow("interrupted");
      const [row] =
        await sql`SELECT (SELECT count(*) FROM peer_policies)::int + (SELECT count(*) FROM settings)::int AS n`;
      expect(row.n).toBe(0);
    } finally {
      db.close();
      await sql.close();
    }
  },
  START_MS,
);
