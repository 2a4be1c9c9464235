import { afterEach, describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { ItipCopyError } from "../../src/store/sqlite/itip-keys.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const count = (db: ReturnType<typeof openDatabase>, table: string): number =>
  db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;

/** Claims for recipients user0..user(n-1) of recipients(n), one key each. */
const claims = (n: number, expiresAt: number, prefix = "k") => ({
  keys: Array.from({ length: n }, (_, i) => ({
    recipient: `mailto:user${i}@peer.example`,
    key: `${prefix}${i}`,
  })),
  expiresAt,
});

describe("iTIP keys (one recipient's copy of one iTIP revision)", () => {
  test("a message whose every recipient's copy is held stores nothing, and names the holders", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const first = await queue.accept(invitation({ itipKeys: claims(2, c.ms + 60_000) }), recipients(2));
    expect(first.copies.size).toBe(0);
    let error: unknown;
    try {
      await queue.accept(invitation({ uid: "copy", itipKeys: claims(2, c.ms + 60_000) }), recipients(2));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ItipCopyError);
    expect([...(error as ItipCopyError).held]).toEqual([
      ["mailto:user0@peer.example", first.messageId],
      ["mailto:user1@peer.example", first.messageId],
    ]);
    expect({ messages: count(db, "messages"), deliveries: count(db, "deliveries") }).toEqual({
      messages: 1,
      deliveries: 2,
    });
    db.close();
  });

  test("a copy with one more recipient stores a delivery for that one only", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const first = await queue.accept(invitation({ itipKeys: claims(1, c.ms + 60_000) }), recipients(1));
    const wider = await queue.accept(
      invitation({ uid: "wider", itipKeys: claims(2, c.ms + 60_000) }),
      recipients(2),
    );
    expect([...wider.copies]).toEqual([["mailto:user0@peer.example", first.messageId]]);
    expect(wider.deliveryIds.length).toBe(1);
    const stored = db
      .query<{ recipient: string }, [number]>("SELECT recipient FROM deliveries WHERE message_id = ?")
      .all(wider.messageId);
    expect(stored.map((d) => d.recipient)).toEqual(["mailto:user1@peer.example"]);
    db.close();
  });

  test("an expired key is taken over: the same revision after the window is delivered again", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    await queue.accept(invitation({ itipKeys: claims(1, c.ms + 1000) }), recipients(1));
    c.advance(1000);
    const later = await queue.accept(invitation({ itipKeys: claims(1, c.ms + 1000) }), recipients(1));
    expect(later.copies.size).toBe(0);
    expect(later.deliveryIds.length).toBe(1);
    expect(count(db, "itip_keys")).toBe(1);
    db.close();
  });

  test("two connections claiming one key: one message gets it, the other is a copy", async () => {
    const path = tempDatabasePath();
    const a = openDatabase(path);
    const b = openDatabase(path);
    const c = new TestClock();
    const qa = new DeliveryQueue(createSqliteStore(a), queueOptions(c));
    const qb = new DeliveryQueue(createSqliteStore(b), queueOptions(c));
    const first = await qa.accept(invitation({ itipKeys: claims(1, c.ms + 60_000) }), recipients(1));
    await expect(
      qb.accept(invitation({ itipKeys: claims(1, c.ms + 60_000) }), recipients(1)),
    ).rejects.toThrow(ItipCopyError);
    expect(first.deliveryIds.length).toBe(1);
    expect(count(b, "deliveries")).toBe(1);
    a.close();
    b.close();
  });
});
