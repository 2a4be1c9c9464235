import type { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { RefusalLog } from "../../src/inbound/refusal-log.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { DEFAULT_RETENTION, type RetentionPolicy } from "../../src/store/retention-policy.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { getMessageRow } from "../../src/store/sqlite/messages.ts";
import { retentionSteps, runSteps } from "../../src/store/sqlite/pruner.ts";
import {
  BODIES_CURSOR,
  bodyPruning,
  compaction,
  keyPruning,
  MAX_HELD,
  messagePruning,
  refusalPruning,
  type SqlitePruneStep,
  spaceFacts,
} from "../../src/store/sqlite/retention.ts";
import { getSetting } from "../../src/store/sqlite/settings.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { attempt, invitation, queueOptions, recipients, T0, TestClock } from "../queue/_fixtures.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const DAY = 86_400_000;

const count = (db: Database, sql: string): number => db.query<{ n: number }, []>(sql).get()!.n;

/** Runs a step to its end without pausing; returns the rows it pruned. */
function drain(step: SqlitePruneStep, limit = 3): number {
  let rows = 0;
  for (let i = 0; i < 10_000; i++) {
    const b = step.batch(limit);
    rows += b.rows;
    if (b.done) return rows;
  }
  throw new Error(`${step.name} never finished`);
}

/** Runs a whole policy at `nowMs`, as the pruner does (without its pauses). */
async function prune(db: Database, nowMs: number, policy: RetentionPolicy = DEFAULT_RETENTION) {
  const report = await runSteps(retentionSteps(db, { policy, nowMs }), {
    startedAtMs: nowMs,
    sleep: async () => {},
  });
  expect(report.problem).toBeUndefined();
  return Object.fromEntries(report.steps.map((s) => [s.name, s]));
}

/** A message received at `receivedAt`, with `n` deliveries delivered at intake (one attempt each). */
async function delivered(queue: DeliveryQueue, o: { receivedAt: number; n?: number; uid?: string }) {
  const accepted = await queue.accept(
    invitation({ receivedAt: o.receivedAt, uid: o.uid ?? `e${o.receivedAt}` }),
    recipients(o.n ?? 2, { state: "delivered", requestStatus: "2.0;Success", attempt: attempt() }),
  );
  return accepted;
}

describe("bodies are emptied after --retain-bodies", () => {
  test("an old message keeps its metadata, deliveries and attempts, and the size of its body", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0 + 40 * DAY);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const old = await delivered(queue, { receivedAt: T0 });
    const young = await delivered(queue, { receivedAt: T0 + 20 * DAY });
    const size = getMessageRow(db, old.messageId)!.body.byteLength;

    const report = await prune(db, c.ms);

    expect(report.bodies!.rows).toBe(1);
    expect(report.bodies!.bytes).toBe(size);
    const m = getMessageRow(db, old.messageId)!;
    expect({ body: m.body.byteLength, bodySize: m.bodySize, summary: m.summary, refusal: m.refusal }).toEqual(
      {
        body: 0,
        bodySize: size,
        summary: "Planning",
        refusal: null,
      },
    );
    expect(
      (await queue.getMessage(old.messageId))!.deliveries.map((d) => [d.state, d.attemptList.length]),
    ).toEqual([
      ["delivered", 1],
      ["delivered", 1],
    ]);
    expect(getMessageRow(db, young.messageId)!.body.byteLength).toBe(size);
    db.close();
  });

  test("a message with a delivery queued or in flight keeps its body until the delivery ends, then loses it", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const queued = await queue.accept(invitation({ uid: "queued" }), recipients(1));
    const leased = await queue.accept(
      invitation({ uid: "leased" }),
      recipients(1, { route: "local", target: "store" }),
    );
    await queue.lease({ owner: "w", limit: 10, routes: ["local"] });
    const size = getMessageRow(db, queued.messageId)!.body.byteLength;
    c.advance(40 * DAY);

    expect((await prune(db, c.ms)).bodies!.rows).toBe(0);
    expect(getMessageRow(db, queued.messageId)!.body.byteLength).toBe(size);
    expect(getMessageRow(db, leased.messageId)!.body.byteLength).toBe(size);
    expect(JSON.parse(getSetting(db, BODIES_CURSOR)!).held).toEqual([queued.messageId, leased.messageId]);

    // The leased one is delivered; the queued one still waits.
    const [d] = (await queue.getMessage(leased.messageId))!.deliveries;
    await queue.complete(d!.id, "w", attempt({ route: "local" }), { state: "delivered" });
    expect((await prune(db, c.ms)).bodies!.rows).toBe(1);
    expect(getMessageRow(db, leased.messageId)!.body.byteLength).toBe(0);
    expect(getMessageRow(db, queued.messageId)!.body.byteLength).toBe(size);
    expect(JSON.parse(getSetting(db, BODIES_CURSOR)!).held).toEqual([queued.messageId]);
    db.close();
  });

  test("a run starts where the last one stopped: emptied messages are not read again", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0 + 40 * DAY);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    for (let i = 0; i < 10; i++) await delivered(queue, { receivedAt: T0 + i * 1000 });
    expect(drain(bodyPruning(db, { beforeMs: c.ms - 30 * DAY }))).toBe(10);
    // Were the cursor lost, this batch would read five of the ten again and not be done.
    const again = bodyPruning(db, { beforeMs: c.ms - 30 * DAY }).batch(5);
    expect(again).toEqual({ rows: 0, bytes: 0, done: true });
    await delivered(queue, { receivedAt: T0 + 20_000 });
    expect(drain(bodyPruning(db, { beforeMs: c.ms - 30 * DAY }))).toBe(1);
    db.close();
  });

  test(`past ${MAX_HELD} messages held back, the cursor waits at the next one instead of forgetting it`, async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const ids: number[] = [];
    for (let i = 0; i <= MAX_HELD; i++)
      ids.push(
        (await queue.accept(invitation({ uid: `q${i}`, receivedAt: T0 + i }), recipients(1))).messageId,
      );
    const after = await delivered(queue, { receivedAt: T0 + MAX_HELD + 1 });
    c.advance(40 * DAY);
    const step = bodyPruning(db, { beforeMs: c.ms - 30 * DAY });
    expect(drain(step, 500)).toBe(0);
    const cursor = JSON.parse(getSetting(db, BODIES_CURSOR)!);
    expect(cursor.held.length).toBe(MAX_HELD);
    expect(cursor.id).toBe(ids[MAX_HELD - 1]);
    // The message after the one it could not remember keeps its body for now...
    expect(getMessageRow(db, after.messageId)!.body.byteLength).toBeGreaterThan(0);
    // ...and loses it once the held ones are gone.
    await queue.cancel(
      db
        .query<{ id: number }, []>("SELECT id FROM deliveries")
        .all()
        .map((r) => r.id),
    );
    expect(drain(bodyPruning(db, { beforeMs: c.ms - 30 * DAY }), 500)).toBe(MAX_HELD + 2);
    expect(JSON.parse(getSetting(db, BODIES_CURSOR)!).held).toEqual([]);
    db.close();
  });

  test("a failed delivery whose body is gone can no longer be retried or sent by email (it would go out empty)", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const failed = async (uid: string) =>
      (
        await queue.accept(
          invitation({ uid }),
          recipients(1, { state: "failed", attempt: attempt({ outcome: "permanent" }) }),
        )
      ).deliveryIds[0]!;
    const old = [await failed("old-1"), await failed("old-2")];
    c.advance(40 * DAY);
    const young = await failed("young");
    expect((await prune(db, c.ms)).bodies!.rows).toBe(2);
    expect(await queue.retryNow([old[0]!, young])).toBe(1);
    expect(await queue.requestImip([old[1]!])).toBe(0);
    expect(
      old.map(
        (id) =>
          db.query<{ state: string }, [number]>("SELECT state FROM deliveries WHERE id = ?").get(id)!.state,
      ),
    ).toEqual(["failed", "failed"]);
    db.close();
  });

  test("a refusal is left to its own step (its body is already gone)", async () => {
    const db = openDatabase(":memory:");
    const log = new RefusalLog(createSqliteStore(db), { nowMs: () => T0 });
    log.record({
      direction: "inbound",
      intake: "ischedule",
      originator: "mailto:x@stranger.example",
      method: "REQUEST",
      component: "VEVENT",
      contentType: "text/calendar",
      refusal: "no signature",
      bodySize: 5000,
    });
    await log.close();
    expect(drain(bodyPruning(db, { beforeMs: T0 + DAY }))).toBe(0);
    expect(count(db, "SELECT body_size AS n FROM messages")).toBe(5000);
    db.close();
  });
});

describe("messages are deleted after --retain", () => {
  test("an old message goes with its deliveries and attempts; one being delivered stays", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const done = await delivered(queue, { receivedAt: T0, n: 3 });
    const failed = await queue.accept(
      invitation({ uid: "failed" }),
      recipients(1, { state: "failed", attempt: attempt({ outcome: "permanent" }) }),
    );
    const queued = await queue.accept(invitation({ uid: "queued" }), recipients(2));
    const inFlight = await queue.accept(
      invitation({ uid: "in-flight" }),
      recipients(1, { route: "local", target: "store" }),
    );
    await queue.lease({ owner: "w", limit: 10, routes: ["local"] });
    c.advance(401 * DAY);
    const young = await delivered(queue, { receivedAt: c.ms - DAY });

    const report = await prune(db, c.ms);

    expect(report.messages!.rows).toBe(2);
    expect(report.messages!.deliveries).toBe(4);
    const left = db
      .query<{ id: number }, []>("SELECT id FROM messages ORDER BY id")
      .all()
      .map((r) => r.id);
    expect(left).toEqual([queued.messageId, inFlight.messageId, young.messageId]);
    expect(
      count(
        db,
        `SELECT count(*) AS n FROM deliveries WHERE message_id IN (${done.messageId}, ${failed.messageId})`,
      ),
    ).toBe(0);
    expect(
      count(
        db,
        "SELECT count(*) AS n FROM attempts a LEFT JOIN deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL",
      ),
    ).toBe(0);
    expect(count(db, "SELECT count(*) AS n FROM attempts")).toBe(2);
    db.close();
  });

  test("messages held back at the head of the log are passed, not read again in every batch", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    for (let i = 0; i < 5; i++)
      await queue.accept(invitation({ uid: `q${i}`, receivedAt: T0 + i }), recipients(1));
    for (let i = 0; i < 5; i++) await delivered(queue, { receivedAt: T0 + 10 + i });
    const step = messagePruning(db, { beforeMs: T0 + 401 * DAY });
    // Five held, then five deleted, in batches of three: 0, 1 (two held passed), 3, 1.
    const batches = [step.batch(3), step.batch(3), step.batch(3), step.batch(3)];
    expect(batches.map((b) => b.rows)).toEqual([0, 1, 3, 1]);
    expect(batches.at(-1)!.done).toBe(true);
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(5);
    db.close();
  });

  test("with --retain forever nothing is deleted, and bodies follow their own period", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0 + 5000 * DAY);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const m = await delivered(queue, { receivedAt: T0 });
    const report = await prune(db, c.ms, { ...DEFAULT_RETENTION, messagesMs: undefined });
    expect(report.messages).toBeUndefined();
    expect(report.bodies!.rows).toBe(1);
    expect(getMessageRow(db, m.messageId)).toBeDefined();
    db.close();
  });
});

describe("refusal records are deleted after 7 days", () => {
  test("oldest first, younger ones kept, with the bytes their metadata weighed", async () => {
    const db = openDatabase(":memory:");
    let now = T0;
    const log = new RefusalLog(createSqliteStore(db), { nowMs: () => now, windowMs: 1 });
    for (let day = 0; day < 10; day++) {
      now = T0 + day * DAY;
      log.record({
        direction: "inbound",
        intake: "ischedule",
        originator: `mailto:x${day}@stranger.example`,
        method: "REQUEST",
        component: "VEVENT",
        contentType: "text/calendar",
        refusal: "no signature",
      });
      await log.flush();
    }
    await log.close();
    const step = refusalPruning(db, { beforeMs: T0 + 9 * DAY - 7 * DAY });
    const first = step.batch(1);
    expect(first.rows).toBe(1);
    expect(first.bytes).toBeGreaterThan(200);
    expect(drain(step, 4)).toBe(1);
    const left = db
      .query<{ at: number }, []>("SELECT received_at AS at FROM messages ORDER BY id")
      .all()
      .map((r) => (r.at - T0) / DAY);
    expect(left).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    db.close();
  });
});

describe("expired replay and iTIP keys", () => {
  test("go in batches; keys in force stay", () => {
    const db = openDatabase(":memory:");
    const insert = (table: string, key: string, expiresAt: number) =>
      db.run(`INSERT INTO ${table} (key, message_id, expires_at) VALUES (?, 1, ?)`, [key, expiresAt]);
    for (let i = 0; i < 7; i++) insert("replay_keys", `r${i}`, T0 - 1);
    insert("replay_keys", "live", T0 + 1);
    insert("itip_keys", "old", T0);
    insert("itip_keys", "live", T0 + 1);
    expect(drain(keyPruning(db, { table: "replay_keys", nowMs: T0 }), 3)).toBe(7);
    expect(drain(keyPruning(db, { table: "itip_keys", nowMs: T0 }), 3)).toBe(1);
    expect(
      db.query<{ key: string }, []>("SELECT key FROM replay_keys UNION ALL SELECT key FROM itip_keys").all(),
    ).toEqual([{ key: "live" }, { key: "live" }]);
    db.close();
  });
});

describe("compaction", () => {
  test("a new database file gives pages back beyond the reserve, a batch at a time", () => {
    const db = openDatabase(tempDatabasePath());
    expect(spaceFacts(db).autoVacuum).toBe("incremental");
    db.run("CREATE TABLE filler (x BLOB)");
    for (let i = 0; i < 300; i++) db.run("INSERT INTO filler VALUES (randomblob(4000))");
    db.run("DELETE FROM filler");
    const before = spaceFacts(db);
    expect(before.freePages).toBeGreaterThanOrEqual(300);
    const step = compaction(db, { reservePages: 50 });
    const first = step.batch(100);
    expect({ rows: first.rows, bytes: first.bytes, done: first.done }).toEqual({
      rows: 100,
      bytes: 100 * before.pageBytes,
      done: false,
    });
    drain(step, 100);
    const after = spaceFacts(db);
    expect(after.freePages).toBe(50);
    expect(after.pages).toBe(before.pages - (before.freePages - 50));
    db.close();
  });

  test("a database without incremental auto-vacuum is left alone (its free pages are reused)", () => {
    const db = openDatabase(":memory:");
    expect(spaceFacts(db).autoVacuum).toBe("none");
    expect(compaction(db).batch(100)).toEqual({ rows: 0, bytes: 0, done: true });
    db.close();
  });
});
