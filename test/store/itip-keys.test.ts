import { afterEach, describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { ItipCopyError } from "../../src/store/errors.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const countIn = (db: ReturnType<typeof openDatabase>, table: string): number =>
  db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;

/** Claims for recipients user0..user(n-1) of recipients(n), one key each. */
const claims = (n: number, expiresAt: number, prefix = "k") => ({
  keys: Array.from({ length: n }, (_, i) => ({
    recipient: `mailto:user${i}@peer.example`,
    key: `${prefix}${i}`,
  })),
  expiresAt,
});

onBothBackends("iTIP keys (one recipient's copy of one iTIP revision)", (b) => {
  const count = async (store: Store, table: string) =>
    (await b.rows<{ n: number }>(store, `SELECT count(*) AS n FROM ${table}`))[0]!.n;

  test("a message whose every recipient's copy is held stores nothing, and names the holders", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
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
    expect({
      messages: await count(store, "messages"),
      deliveries: await count(store, "deliveries"),
    }).toEqual({
      messages: 1,
      deliveries: 2,
    });
  });

  test("a copy with one more recipient stores a delivery for that one only", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    const first = await queue.accept(invitation({ itipKeys: claims(1, c.ms + 60_000) }), recipients(1));
    const wider = await queue.accept(
      invitation({ uid: "wider", itipKeys: claims(2, c.ms + 60_000) }),
      recipients(2),
    );
    expect([...wider.copies]).toEqual([["mailto:user0@peer.example", first.messageId]]);
    expect(wider.deliveryIds.length).toBe(1);
    const stored = await b.rows<{ recipient: string }>(
      store,
      "SELECT recipient FROM deliveries WHERE message_id = $1",
      [wider.messageId],
    );
    expect(stored.map((d) => d.recipient)).toEqual(["mailto:user1@peer.example"]);
  });

  test("an expired key is taken over: the same revision after the window is delivered again", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    await queue.accept(invitation({ itipKeys: claims(1, c.ms + 1000) }), recipients(1));
    c.advance(1000);
    const later = await queue.accept(invitation({ itipKeys: claims(1, c.ms + 1000) }), recipients(1));
    expect(later.copies.size).toBe(0);
    expect(later.deliveryIds.length).toBe(1);
    expect(await count(store, "itip_keys")).toBe(1);
  });
});

// SQLite only: two connections to one database file (PostgreSQL's two nodes: test/store/contract/claims.test.ts).
describe("iTIP keys on one SQLite file", () => {
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
    expect(countIn(b, "deliveries")).toBe(1);
    a.close();
    b.close();
  });
});
