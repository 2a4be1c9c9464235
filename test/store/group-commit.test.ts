/**
 * Group commit in the SQLite store (src/store/sqlite/group-commit.ts): accepts made together share
 * one transaction (and so do the outcomes of attempts that finish together, and the lease made meanwhile), each answered once it has committed, each all or nothing on its own, and claiming
 * its replay and iTIP keys in the order the accepts were made.
 */
import type { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { ItipCopyError, ReplayConflictError } from "../../src/store/errors.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { attempt, invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";
import { walCommits } from "./_wal.ts";

afterEach(removeTempDirs);

const count = (db: Database, sql: string): number => db.query<{ n: number }, []>(sql).get()!.n;

/** WAL frames written since the last TRUNCATE checkpoint. */
function walFrames(db: Database): number {
  return db.query<{ log: number }, []>("PRAGMA wal_checkpoint(PASSIVE)").get()!.log;
}

function setUp() {
  const db = openDatabase(tempDatabasePath());
  const clock = new TestClock();
  const store = createSqliteStore(db);
  return { db, clock, store, queue: new DeliveryQueue(store, queueOptions(clock)) };
}

describe("group commit", () => {
  test("sixteen accepts made together write under a third of the WAL frames of sixteen made one by one", async () => {
    const { db, queue } = setUp();
    const one = (i: number) =>
      queue.accept(
        invitation({ uid: `event-${i}`, direction: "inbound", intake: "ischedule" }),
        recipients(1),
      );
    await one(-1);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    for (let i = 0; i < 16; i++) await one(i);
    const alone = walFrames(db);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const together = await Promise.all(Array.from({ length: 16 }, (_, i) => one(100 + i)));
    const grouped = walFrames(db);
    expect(together.map((a) => a.deliveryIds.length)).toEqual(Array(16).fill(1));
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(33);
    expect(alone).toBeGreaterThanOrEqual(16 * 5);
    expect(grouped * 3).toBeLessThan(alone);
    db.close();
  });

  test("sixteen attempts' outcomes recorded together are one commit, each answered once a second connection sees it", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(new TestClock()));
    const reader = openDatabase(path, { readOnly: true });
    const commits = () => walCommits(path);
    for (let i = 0; i < 32; i++) await queue.accept(invitation({ uid: `event-${i}` }), recipients(1));
    const leased = await queue.lease({ owner: "w", limit: 32 });
    expect(leased).toHaveLength(32);
    const record = (d: { id: number }) =>
      queue
        .complete(d.id, "w", attempt(), { state: "delivered", requestStatus: "2.0;Success" })
        .then((applied) => {
          // The outcome is durable before the caller acts on it: another connection reads it.
          const state = reader
            .query<{ state: string }, [number]>("SELECT state FROM deliveries WHERE id = ?")
            .get(d.id);
          return [applied, state?.state];
        });
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const alone: unknown[] = [];
    for (const d of leased.slice(0, 16)) alone.push(await record(d));
    const aloneCommits = commits();
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const together = await Promise.all(leased.slice(16).map(record));
    const togetherCommits = commits();
    expect([...alone, ...together]).toEqual(Array(32).fill([true, "delivered"]));
    expect(count(db, "SELECT count(*) AS n FROM attempts")).toBe(32);
    expect(aloneCommits).toBe(16);
    expect(togetherCommits).toBe(1);
    reader.close();
    db.close();
  });

  test("a lease made while attempts' outcomes are recorded shares their commit, and is answered only once a second connection sees it in flight", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(new TestClock()));
    const reader = openDatabase(path, { readOnly: true });
    const inFlightOf = (owner: string): number =>
      reader
        .query<{ n: number }, [string]>(
          "SELECT count(*) AS n FROM deliveries WHERE state = 'in-flight' AND lease_owner = ?",
        )
        .get(owner)!.n;
    for (let i = 0; i < 32; i++) await queue.accept(invitation({ uid: `event-${i}` }), recipients(1));
    const sent = await queue.lease({ owner: "w", limit: 16 });
    const done = (d: { id: number }) =>
      queue.complete(d.id, "w", attempt(), { state: "delivered", requestStatus: "2.0;Success" });
    // What the dispatcher does as a drain goes on: leases the next due while the last outcomes are recorded.
    const next = () =>
      queue
        .leaseFitting({ owner: "w", limit: 8, window: 8, fits: () => true, rotate: false })
        .then(({ leased }) => [leased.length, inFlightOf("w")]);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    for (const d of sent.slice(0, 4)) await done(d);
    const alone = await next();
    const aloneCommits = walCommits(path);
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    const [together] = await Promise.all([next(), ...sent.slice(4, 8).map(done)]);
    const togetherCommits = walCommits(path);
    // Leased once committed: the 8 leased, beside the 8 of `sent` still in flight (and then 4 fewer).
    expect(alone).toEqual([8, 12 + 8]);
    expect(together).toEqual([8, 8 + 16]);
    expect(aloneCommits).toBe(5);
    expect(togetherCommits).toBe(1);
    reader.close();
    db.close();
  });

  test("each accept is answered only once its batch has committed: a second connection sees it then", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(new TestClock()));
    const reader = openDatabase(path, { readOnly: true });
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        queue.accept(invitation({ uid: `event-${i}` }), recipients(2)).then((a) => {
          seen.push(count(reader, `SELECT count(*) AS n FROM deliveries WHERE message_id = ${a.messageId}`));
        }),
      ),
    );
    expect(seen).toEqual(Array(8).fill(2));
    reader.close();
    db.close();
  });

  test("two accepts of one replay key in one batch: the first is stored, the second refused as a replay, the rest stored", async () => {
    const { db, clock, queue } = setUp();
    const replay = { key: "dkim\npeer.example\nmsg-1\nBH", expiresAt: clock.ms + 60_000 };
    const results = await Promise.allSettled([
      queue.accept(invitation({ uid: "before" }), recipients(1)),
      queue.accept(invitation({ uid: "first", replay }), recipients(2)),
      queue.accept(invitation({ uid: "second", replay }), recipients(2)),
      queue.accept(invitation({ uid: "after" }), recipients(1)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    const refused = results[2] as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(ReplayConflictError);
    expect((refused.reason as ReplayConflictError).key).toBe(replay.key);
    const first = (results[1] as PromiseFulfilledResult<{ messageId: number }>).value;
    expect(await queue.replayHolder(replay.key)).toBe(first.messageId);
    expect(db.query("SELECT uid FROM messages ORDER BY id").all()).toEqual([
      { uid: "before" },
      { uid: "first" },
      { uid: "after" },
    ]);
    expect(count(db, "SELECT count(*) AS n FROM deliveries")).toBe(4);
    db.close();
  });

  test("a copy held by an earlier accept of the same batch is refused as a copy; a failing accept fails alone", async () => {
    const { db, clock, queue } = setUp();
    const itipKeys = (key: string) => ({
      keys: [{ recipient: "mailto:user0@peer.example", key }],
      expiresAt: clock.ms + 60_000,
    });
    const results = await Promise.allSettled([
      queue.accept(invitation({ uid: "a", itipKeys: itipKeys("copy-key") }), recipients(1)),
      queue.accept(invitation({ uid: "a-again", itipKeys: itipKeys("copy-key") }), recipients(1)),
      // Two deliveries to one recipient break deliveries' UNIQUE (message_id, recipient).
      queue.accept(invitation({ uid: "broken" }), [...recipients(1), ...recipients(1)]),
      queue.accept(invitation({ uid: "b" }), recipients(3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    const copy = (results[1] as PromiseRejectedResult).reason as ItipCopyError;
    expect(copy).toBeInstanceOf(ItipCopyError);
    const a = (results[0] as PromiseFulfilledResult<{ messageId: number }>).value;
    expect([...copy.held]).toEqual([["mailto:user0@peer.example", a.messageId]]);
    expect(String((results[2] as PromiseRejectedResult).reason)).toContain("UNIQUE");
    expect(db.query("SELECT uid FROM messages ORDER BY id").all()).toEqual([{ uid: "a" }, { uid: "b" }]);
    expect(count(db, "SELECT count(*) AS n FROM deliveries")).toBe(4);
    expect(count(db, "SELECT count(*) AS n FROM itip_keys")).toBe(1);
    db.close();
  });

  test("an error that ends the whole transaction rejects every accept of the batch and stores none", async () => {
    const { db, queue } = setUp();
    // RAISE(ROLLBACK) ends the transaction as SQLITE_FULL or an I/O error would.
    db.run(`CREATE TEMP TRIGGER fail_all BEFORE INSERT ON messages WHEN NEW.uid = 'doom'
      BEGIN SELECT RAISE(ROLLBACK, 'the disk is full'); END`);
    const results = await Promise.allSettled(
      ["a", "doom", "c"].map((uid) => queue.accept(invitation({ uid }), recipients(1))),
    );
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const r of results)
      expect(String((r as PromiseRejectedResult).reason)).toContain("the disk is full");
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(0);
    expect(db.inTransaction).toBe(false);
    // The next batch commits as usual.
    await Promise.all(["d", "e"].map((uid) => queue.accept(invitation({ uid }), recipients(1))));
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(2);
    db.close();
  });

  test("a batch commits as soon as it holds maxWrites accepts, without waiting for the end of the turn", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const queue = new DeliveryQueue(
      createSqliteStore(db, { groupCommit: { maxWrites: 4 } }),
      queueOptions(new TestClock()),
    );
    const reader = openDatabase(path, { readOnly: true });
    const committed = () => count(reader, "SELECT count(*) AS n FROM messages");
    const pending: Promise<unknown>[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      pending.push(queue.accept(invitation({ uid: `e${i}` }), recipients(1)));
      seen.push(committed());
    }
    // The queue's accept() is async: each call reaches the store synchronously, before it returns.
    expect(seen).toEqual([0, 0, 0, 4, 4, 4, 4, 8, 8, 8]);
    await Promise.all(pending);
    expect(committed()).toBe(10);
    reader.close();
    db.close();
  });

  test("a batch also commits once the bodies it holds reach maxBytes", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const queue = new DeliveryQueue(
      createSqliteStore(db, { groupCommit: { maxBytes: 100 } }),
      queueOptions(new TestClock()),
    );
    const reader = openDatabase(path, { readOnly: true });
    const seen: number[] = [];
    const pending = ["a", "b", "c", "d", "e"].map((uid) => {
      const accepted = queue.accept(invitation({ uid, body: "x".repeat(60) }), recipients(1));
      seen.push(count(reader, "SELECT count(*) AS n FROM messages"));
      return accepted;
    });
    expect(seen).toEqual([0, 2, 2, 4, 4]);
    await Promise.all(pending);
    expect(count(reader, "SELECT count(*) AS n FROM messages")).toBe(5);
    reader.close();
    db.close();
  });

  test("accepts made while writes are held wait, unanswered and unstored, and commit together once released", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const store = createSqliteStore(db);
    const queue = new DeliveryQueue(store, queueOptions(new TestClock()));
    const reader = openDatabase(path, { readOnly: true });
    store.holdWrites();
    let answered = 0;
    const commitsBefore = walCommits(path);
    const pending = Array.from({ length: 6 }, (_, i) =>
      queue.accept(invitation({ uid: `held-${i}` }), recipients(1)).then(() => answered++),
    );
    // Several turns of the event loop: a batch would have committed at the end of the first.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    await Bun.sleep(20);
    expect(answered).toBe(0);
    expect(count(reader, "SELECT count(*) AS n FROM messages")).toBe(0);
    store.releaseWrites();
    await Promise.all(pending);
    expect(answered).toBe(6);
    expect(count(reader, "SELECT count(*) AS n FROM messages")).toBe(6);
    expect(walCommits(path) - commitsBefore).toBe(1);
    reader.close();
    db.close();
  });

  test("close() commits accepts still held before it closes", async () => {
    const path = tempDatabasePath();
    const store = createSqliteStore(openDatabase(path));
    const queue = new DeliveryQueue(store, queueOptions(new TestClock()));
    store.holdWrites();
    const pending = Array.from({ length: 3 }, (_, i) =>
      queue.accept(invitation({ uid: `h${i}` }), recipients(1)),
    );
    await store.close();
    expect((await Promise.all(pending)).length).toBe(3);
    const db = openDatabase(path);
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(3);
    db.close();
  });

  test("close() commits the accepts still waiting for their batch before it closes", async () => {
    const path = tempDatabasePath();
    const store = createSqliteStore(openDatabase(path));
    const queue = new DeliveryQueue(store, queueOptions(new TestClock()));
    const pending = Array.from({ length: 5 }, (_, i) =>
      queue.accept(invitation({ uid: `e${i}` }), recipients(1)),
    );
    await store.close();
    expect((await Promise.all(pending)).length).toBe(5);
    const db = openDatabase(path);
    expect(count(db, "SELECT count(*) AS n FROM messages")).toBe(5);
    db.close();
  });
});
