/**
 * Retention over a database of a realistic size: 50,000 messages received over 500 days (370 MB),
 * as fillVolume writes them. The pruner must remove what the policy says and nothing else, make the
 * file shrink (incremental auto-vacuum) or stop growing (a database made before it), and never hold
 * up the requests that write to the same connection meanwhile.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { DEFAULT_RETENTION } from "../../src/store/retention-policy.ts";
import { startCheckpointer } from "../../src/store/sqlite/checkpointer.ts";
import { convertToIncrementalVacuum } from "../../src/store/sqlite/compaction.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { migrate } from "../../src/store/sqlite/migrations.ts";
import { type PruneReport, retentionSteps, runSteps } from "../../src/store/sqlite/pruner.ts";
import { DEFAULT_RESERVE_PAGES, spaceFacts } from "../../src/store/sqlite/retention.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { removeTempDirs, tempDir } from "./_temp-dir.ts";
import { fillVolume, type VolumeFacts } from "./_volume.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const MESSAGES = 50_000;

let folder: string;
let original: string;
let facts: VolumeFacts;

beforeAll(() => {
  folder = tempDir();
  original = join(folder, "original.db");
  // Made as isched made databases before incremental auto-vacuum: the case that needs conversion.
  const db = new Database(original, { create: true, readwrite: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA foreign_keys = ON");
  migrate(db);
  facts = fillVolume(db, { messages: MESSAGES, days: 500, nowMs: NOW });
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}, 60_000);

afterAll(removeTempDirs);

/** A copy of the original under a fresh name (with no WAL: it was checkpointed and closed). */
function copy(name: string): string {
  const path = join(folder, name, "isched.db");
  mkdirSync(join(folder, name));
  copyFileSync(original, path);
  return path;
}

const pruneAll = (db: Database): Promise<PruneReport> =>
  runSteps(retentionSteps(db, { policy: DEFAULT_RETENTION, nowMs: NOW }), {
    startedAtMs: NOW,
    sleep: async () => {},
  });

const one = <T>(db: Database, sql: string): T => db.query(sql).get() as T;

const fileBytes = (db: Database, path: string): number => {
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  return statSync(path).size;
};

/** What the endpoint stores for a request delivered at once into isched's inbox: one transaction. */
async function acceptOne(queue: DeliveryQueue, i: number, bodyBytes: number): Promise<void> {
  await queue.accept(
    {
      direction: "inbound",
      intake: "ischedule",
      originator: "mailto:a@peer.example",
      method: "REQUEST",
      component: "VEVENT",
      contentType: "text/calendar",
      body: `BEGIN:VCALENDAR\r\nDESCRIPTION:${"x".repeat(bodyBytes)}${i}\r\nEND:VCALENDAR\r\n`,
      peerDomain: "peer.example",
    },
    [
      {
        recipient: "mailto:b@example.com",
        domain: "example.com",
        route: "local",
        target: "store",
        state: "delivered",
      },
    ],
  );
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;

describe(`retention over ${MESSAGES} messages received over 500 days`, () => {
  test("prunes as the policy says, and the converted file shrinks to what is kept", async () => {
    const path = copy("converted");
    const conversion = convertToIncrementalVacuum(path);
    expect(conversion.converted).toBe(true);
    const db = openDatabase(path);
    const before = fileBytes(db, path);
    const report = await pruneAll(db);
    expect(report.problem).toBeUndefined();
    const by = Object.fromEntries(report.steps.map((s) => [s.name, s]));

    const held = JSON.stringify(facts.held);
    // Nothing received before --retain is left but messages still being delivered.
    const oldLeft = db
      .query<{ id: number }, [number]>("SELECT id FROM messages WHERE received_at < ? ORDER BY id")
      .all(NOW - 400 * DAY)
      .map((r) => r.id);
    expect(oldLeft.length).toBeGreaterThan(0);
    expect(oldLeft.every((id) => facts.held.includes(id))).toBe(true);
    // Every body older than --retain-bodies is gone, but those still being delivered; its size is kept.
    expect(
      one<{ n: number }>(
        db,
        `SELECT count(*) AS n FROM messages WHERE received_at < ${NOW - 30 * DAY} AND length(body) > 0
          AND id NOT IN (SELECT value FROM json_each('${held}'))`,
      ).n,
    ).toBe(0);
    expect(
      one<{ n: number }>(
        db,
        `SELECT count(*) AS n FROM messages WHERE received_at < ${NOW - 30 * DAY} AND refusal IS NULL
          AND (body_size IS NULL OR body_size < 2048) AND id NOT IN (SELECT value FROM json_each('${held}'))`,
      ).n,
    ).toBe(0);
    // Younger bodies are all there.
    expect(
      one<{ n: number }>(
        db,
        `SELECT count(*) AS n FROM messages WHERE received_at >= ${NOW - 30 * DAY} AND refusal IS NULL AND length(body) = 0`,
      ).n,
    ).toBe(0);
    // No refusal older than 7 days; the younger ones stay.
    expect(
      one<{ n: number }>(
        db,
        `SELECT count(*) AS n FROM messages WHERE refusal IS NOT NULL AND received_at < ${NOW - 7 * DAY}`,
      ).n,
    ).toBe(0);
    expect(
      one<{ n: number }>(db, `SELECT count(*) AS n FROM messages WHERE refusal IS NOT NULL`).n,
    ).toBeGreaterThan(0);
    // Deliveries and attempts went with their messages.
    expect(
      one<{ n: number }>(
        db,
        "SELECT count(*) AS n FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id WHERE m.id IS NULL",
      ).n,
    ).toBe(0);
    expect(
      one<{ n: number }>(
        db,
        "SELECT count(*) AS n FROM attempts a LEFT JOIN deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL",
      ).n,
    ).toBe(0);
    expect(one<{ n: number }>(db, "PRAGMA foreign_key_check") ?? null).toBeNull();

    // The file gives back what went, down to the reserve of free pages.
    const after = fileBytes(db, path);
    const space = spaceFacts(db);
    expect(space.freePages).toBeLessThanOrEqual(DEFAULT_RESERVE_PAGES);
    expect(after).toBe(space.pages * space.pageBytes);
    expect(after).toBeLessThan(before * 0.6);
    console.log(
      `retention: ${by.messages!.rows} messages (${by.messages!.deliveries} deliveries), ${by.bodies!.rows} bodies (${mb(by.bodies!.bytes)}), ${by.refusals!.rows} refusals; ` +
        `file ${mb(before)} -> ${mb(after)}; busy ${report.steps.reduce((t, s) => t + s.busyMs, 0).toFixed(0)} ms in ` +
        `${report.steps.reduce((n, s) => n + s.batches, 0)} batches; conversion ${conversion.converted && conversion.ms} ms`,
    );
    db.close();
  }, 60_000);

  test("a database made before: pruned space is used again, so new traffic does not grow the file", async () => {
    const insert = async (db: Database, n: number) => {
      const queue = new DeliveryQueue(createSqliteStore(db), { nowMs: () => NOW });
      for (let i = 0; i < n; i++) await acceptOne(queue, i, 4000);
    };
    // The same new traffic grows a file that was not pruned (so the comparison below can fail)...
    const control = openDatabase(copy("control"));
    const controlBefore = fileBytes(control, join(folder, "control", "isched.db"));
    await insert(control, 10_000);
    const controlGrowth = fileBytes(control, join(folder, "control", "isched.db")) - controlBefore;
    expect(controlGrowth).toBeGreaterThan(40 * 1048576);
    control.close();

    // ...and fits in the space pruning freed.
    const path = copy("legacy");
    const db = openDatabase(path);
    expect(spaceFacts(db).autoVacuum).toBe("none");
    expect((await pruneAll(db)).problem).toBeUndefined();
    const pruned = fileBytes(db, path);
    expect(pruned).toBe(statSync(original).size);
    await insert(db, 10_000);
    expect(fileBytes(db, path)).toBe(pruned);
    console.log(
      `retention: a file without incremental auto-vacuum stays at ${mb(pruned)} with 10,000 new messages (it grew by ${mb(controlGrowth)} unpruned)`,
    );
    db.close();
  }, 60_000);

  test("requests writing meanwhile wait no longer than without the pruner", async () => {
    const path = copy("latency");
    const db = openDatabase(path);
    const checkpointer = startCheckpointer({ db, path, onProblem: () => {} });
    await Bun.sleep(200);
    const queue = new DeliveryQueue(createSqliteStore(db), { nowMs: () => NOW });
    // Half-second windows, alternately with and without the pruner, under the same machine load.
    const windowMs = 500;
    const phaseMs = 12_000;
    let allowed = false;
    let stopped = false;
    const started = performance.now();
    // Started in the first window with it; between batches it waits while a window without it lasts.
    let pruning: Promise<PruneReport> | undefined;
    const startPruning = () =>
      runSteps(retentionSteps(db, { policy: DEFAULT_RETENTION, nowMs: NOW }), {
        startedAtMs: NOW,
        sleep: async (ms) => {
          await Bun.sleep(ms);
          while (!allowed && !stopped) await Bun.sleep(2);
        },
        shouldStop: () => stopped,
      });
    /** Each window's waits, by window number (odd: with the pruner). */
    const windows: number[][] = [];
    let next = performance.now();
    for (let i = 0; performance.now() - started < phaseMs; i++) {
      next += 5;
      const wait = next - performance.now();
      if (wait > 0) await Bun.sleep(wait);
      else await new Promise((r) => setImmediate(r));
      const window = Math.floor((next - started) / windowMs);
      allowed = window % 2 === 1;
      if (allowed) pruning ??= startPruning();
      await acceptOne(queue, i, 5000);
      windows[window] = [...(windows[window] ?? []), Math.max(0, performance.now() - next)];
    }
    stopped = true;
    const report = (await pruning)!;
    await checkpointer.stop();
    db.close();
    const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * q)]!;
    const of = (on: boolean) => windows.filter((w, i) => w && i % 2 === (on ? 1 : 0));
    const waits = { with: of(true).flat(), without: of(false).flat() };
    // The worst wait of a typical half-second: the median over windows of each window's longest wait.
    // A checkpoint that holds writers (the WAL at its limit, whoever filled it) lands in one window;
    // a pruner that holds requests up does so in every window it runs in.
    const typicalWorst = (on: boolean) =>
      p(
        of(on).map((w) => Math.max(...w)),
        0.5,
      );
    const pruned = report.steps.reduce((n, s) => n + s.rows, 0);
    const longest = Math.max(...report.steps.map((s) => s.maxBatchMs));
    console.log(
      `retention: accept wait p50/p99/max without the pruner ${p(waits.without, 0.5).toFixed(1)}/${p(waits.without, 0.99).toFixed(1)}/${p(waits.without, 1).toFixed(1)} ms, ` +
        `with ${p(waits.with, 0.5).toFixed(1)}/${p(waits.with, 0.99).toFixed(1)}/${p(waits.with, 1).toFixed(1)} ms; ` +
        `a half-second's worst wait, median over windows: ${typicalWorst(false).toFixed(1)} ms without, ${typicalWorst(true).toFixed(1)} ms with ` +
        `(${waits.with.length + waits.without.length} accepts; pruner: ${pruned} rows, longest batch ${longest.toFixed(1)} ms)`,
    );
    // The pruner did real work in its windows...
    expect(pruned).toBeGreaterThan(1500);
    // ...never in a batch long enough to hold a request up noticeably...
    expect(longest).toBeLessThan(50);
    // ...and a typical half-second's worst wait is at most a batch's length longer with it.
    expect(typicalWorst(true)).toBeLessThan(typicalWorst(false) + 10);
  }, 60_000);
});
