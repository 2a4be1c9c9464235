/**
 * The delivery queue over the Store, on both backends (test/support/store-backends.ts): accept,
 * lease, complete, renew, release. Two SQLite connections to one file are SQLite's own case, kept
 * SQLite-only at the end (PostgreSQL's two nodes are in test/store/contract/queue.test.ts).
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type Completion, DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { removeTempDirs, tempDatabasePath } from "../store/_temp-dir.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { attempt, invitation, queueOptions, recipients, T0, TestClock } from "./_fixtures.ts";

afterEach(removeTempDirs);

onBothBackends("DeliveryQueue", (b) => {
  let store: Store;
  let clock: TestClock;
  let queue: DeliveryQueue;

  beforeEach(async () => {
    store = await b.fresh();
    clock = new TestClock();
    queue = new DeliveryQueue(store, queueOptions(clock, { leaseMs: 60_000 }));
  });

  const count = async (sql: string): Promise<number> => (await b.rows<{ n: number }>(store, sql))[0]!.n;
  const stateOf = async (id: number): Promise<string> =>
    (await b.rows<{ state: string }>(store, "SELECT state FROM deliveries WHERE id = $1", [id]))[0]!.state;

  describe("accept()", () => {
    test("stores one message and one queued delivery per recipient, due now", async () => {
      const accepted = await queue.accept(invitation(), recipients(3));
      expect(accepted.deliveryIds).toHaveLength(3);
      const detail = (await queue.getMessage(accepted.messageId))!;
      expect(detail.message).toMatchObject({
        uuid: accepted.uuid,
        receivedAt: T0,
        method: "REQUEST",
        dkimResult: "none",
      });
      expect(new TextDecoder().decode(detail.message.body)).toBe(
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
      );
      expect(
        detail.deliveries.map((d) => [d.id, d.recipient, d.state, d.nextAttemptAt, d.attempts, d.finalAt]),
      ).toEqual([
        [accepted.deliveryIds[0]!, "mailto:user0@peer.example", "queued", T0, 0, null],
        [accepted.deliveryIds[1]!, "mailto:user1@peer.example", "queued", T0, 0, null],
        [accepted.deliveryIds[2]!, "mailto:user2@peer.example", "queued", T0, 0, null],
      ]);
    });

    test("records recipients decided at intake in their final state, never to be leased", async () => {
      const accepted = await queue.accept(invitation(), [
        ...recipients(1),
        {
          recipient: "mailto:nobody@example.com",
          domain: "example.com",
          route: "local",
          state: "failed",
          requestStatus: "3.7;Invalid calendar user",
        },
      ]);
      const refused = (await queue.getMessage(accepted.uuid))!.deliveries[1]!;
      expect(refused).toMatchObject({
        state: "failed",
        requestStatus: "3.7;Invalid calendar user",
        nextAttemptAt: null,
        finalAt: T0,
      });
      expect((await queue.lease({ owner: "w", limit: 10 })).map((d) => d.id)).toEqual([
        accepted.deliveryIds[0]!,
      ]);
    });

    test("is atomic: a delivery that cannot be inserted leaves no message behind", async () => {
      await queue.accept(invitation({ uid: "first" }), recipients(1));
      const twice = [...recipients(2), recipients(1)[0]!];
      await expect(queue.accept(invitation({ uid: "second" }), twice)).rejects.toThrow(b.refused("unique"));
      expect(await count("SELECT count(*) AS n FROM messages")).toBe(1);
      expect(await count("SELECT count(*) AS n FROM deliveries")).toBe(1);
      expect(await count("SELECT count(*) AS n FROM messages WHERE uid = 'second'")).toBe(0);
    });

    test("keeps a caller's uuid and otherwise makes a UUIDv7 from the clock", async () => {
      const given = await queue.accept(
        invitation({ uuid: "5f0c6b9e-1111-4222-8333-444455556666" }),
        recipients(1),
      );
      expect(given.uuid).toBe("5f0c6b9e-1111-4222-8333-444455556666");
      const made = await queue.accept(invitation(), recipients(1));
      expect(made.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Number.parseInt(made.uuid.replace("-", "").slice(0, 12), 16)).toBe(T0);
    });

    test("keeps the headers as a list of pairs and the DKIM outcome", async () => {
      const headers = [
        ["Originator", "mailto:alice@example.com"],
        ["Recipient", "mailto:bob@peer.example"],
        ["Recipient", "mailto:carol@peer.example"],
      ] as const;
      const { messageId } = await queue.accept(
        invitation({
          direction: "inbound",
          intake: "ischedule",
          headers,
          dkimResult: "pass",
          dkimDomain: "example.com",
          dkimSelector: "s1",
        }),
        recipients(1),
      );
      expect((await queue.getMessage(messageId))!.message).toMatchObject({
        headers: headers.map((h) => [...h]),
        dkimResult: "pass",
        dkimDomain: "example.com",
        dkimSelector: "s1",
      });
    });
  });

  describe("lease()", () => {
    test("hands out due deliveries oldest due first, up to the limit, each only once", async () => {
      const late = (await queue.accept(invitation(), recipients(2, { nextAttemptAt: T0 - 1000 })))
        .deliveryIds;
      const early = (await queue.accept(invitation(), recipients(2, { nextAttemptAt: T0 - 5000 })))
        .deliveryIds;
      const first = await queue.lease({ owner: "w1", limit: 3 });
      expect(first.map((d) => d.id)).toEqual([early[0]!, early[1]!, late[0]!]);
      expect(
        first.every(
          (d) => d.state === "in-flight" && d.leaseOwner === "w1" && d.leaseExpiresAt === T0 + 60_000,
        ),
      ).toBe(true);
      expect((await queue.lease({ owner: "w2", limit: 3 })).map((d) => d.id)).toEqual([late[1]!]);
      expect(await queue.lease({ owner: "w3", limit: 3 })).toEqual([]);
    });

    test("leaves deliveries alone until their next_attempt_at", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1, { nextAttemptAt: T0 + 30_000 })))
        .deliveryIds;
      expect(await queue.lease({ owner: "w", limit: 10 })).toEqual([]);
      clock.advance(29_999);
      expect(await queue.lease({ owner: "w", limit: 10 })).toEqual([]);
      clock.advance(1);
      expect((await queue.lease({ owner: "w", limit: 10 })).map((d) => d.id)).toEqual([id!]);
    });

    test("with routes, leases only those routes, oldest due first across them", async () => {
      const ischedule = (await queue.accept(invitation(), recipients(2, { nextAttemptAt: T0 - 10 })))
        .deliveryIds;
      const imip = (
        await queue.accept(invitation(), recipients(2, { route: "imip", nextAttemptAt: T0 - 20 }))
      ).deliveryIds;
      const local = (
        await queue.accept(invitation(), recipients(1, { route: "local", nextAttemptAt: T0 - 30 }))
      ).deliveryIds;
      expect((await queue.lease({ owner: "w", limit: 10, routes: ["imip"] })).map((d) => d.id)).toEqual(imip);
      expect(
        (await queue.lease({ owner: "w", limit: 2, routes: ["ischedule", "local"] })).map((d) => d.id),
      ).toEqual([local[0]!, ischedule[0]!]);
      expect(await queue.lease({ owner: "w", limit: 10, routes: [] })).toEqual([]);
      expect(await queue.lease({ owner: "w", limit: 0 })).toEqual([]);
      expect((await queue.lease({ owner: "w", limit: 10 })).map((d) => d.id)).toEqual([ischedule[1]!]);
    });

    test("leaseIds() leases those still queued, due or not, and nothing else", async () => {
      const ids = (await queue.accept(invitation(), recipients(3, { nextAttemptAt: T0 + 3_600_000 })))
        .deliveryIds;
      await queue.cancel([ids[2]!]);
      expect((await queue.leaseIds("now", ids)).map((d) => d.id)).toEqual([ids[0]!, ids[1]!]);
      expect(await queue.leaseIds("again", ids)).toEqual([]);
      expect(await stateOf(ids[2]!)).toBe("cancelled");
    });
  });

  describe("a delivery that waits for isched (its key not yet in DNS)", () => {
    test("goes back to the queue with the reason, no attempt counted or recorded, and wakes by its reason", async () => {
      const { deliveryIds } = await queue.accept(invitation(), recipients(1));
      const [leased] = await queue.lease({ owner: "w", limit: 1 });
      const reason = "Waiting for isched's DKIM key s._domainkey.example.com to be visible in DNS";
      expect(
        await queue.complete(leased!.id, "w", attempt(), {
          state: "waiting",
          nextAttemptAt: T0 + 60_000,
          error: reason,
        }),
      ).toBe(true);
      const d = (await queue.getMessage(leased!.messageId))!.deliveries[0]!;
      expect(d).toMatchObject({
        state: "queued",
        attempts: 0,
        nextAttemptAt: T0 + 60_000,
        lastError: reason,
      });
      expect(d.attemptList).toEqual([]);
      expect(await queue.wakeWaiting("ischedule", "Waiting for something else")).toBe(0);
      expect(await queue.wakeWaiting("ischedule", "Waiting for isched's DKIM key")).toBe(1);
      expect((await queue.getMessage(leased!.messageId))!.deliveries[0]!.nextAttemptAt).toBe(T0);
      expect(deliveryIds).toEqual([leased!.id]);
    });
  });

  describe("complete()", () => {
    test("records the attempt and the final state in one step", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds;
      await queue.lease({ owner: "w", limit: 1 });
      clock.advance(250);
      expect(
        await queue.complete(id!, "w", attempt(), { state: "delivered", requestStatus: "2.0;Success" }),
      ).toBe(true);
      const d = (await queue.getMessage(1))!.deliveries[0]!;
      expect(d).toMatchObject({
        state: "delivered",
        attempts: 1,
        requestStatus: "2.0;Success",
        leaseOwner: null,
        leaseExpiresAt: null,
        nextAttemptAt: null,
        finalAt: T0 + 250,
        updatedAt: T0 + 250,
      });
      expect(d.attemptList.map((a) => [a.outcome, a.httpStatus, a.requestStatus, a.durationMs])).toEqual([
        ["delivered", 200, "2.0;Success", 120],
      ]);
    });

    test("with state queued, reschedules the delivery and keeps the last status when none is given", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1, { requestStatus: "1.0;Pending" })))
        .deliveryIds;
      await queue.lease({ owner: "w", limit: 1 });
      const failure = attempt({
        outcome: "temporary",
        httpStatus: 503,
        requestStatus: undefined,
        error: "503 Service Unavailable",
      });
      expect(
        await queue.complete(id!, "w", failure, {
          state: "queued",
          nextAttemptAt: T0 + 60_000,
          error: "503 Service Unavailable",
        }),
      ).toBe(true);
      expect((await queue.getMessage(1))!.deliveries[0]).toMatchObject({
        state: "queued",
        attempts: 1,
        nextAttemptAt: T0 + 60_000,
        requestStatus: "1.0;Pending",
        lastError: "503 Service Unavailable",
        finalAt: null,
      });
      expect(await queue.nextDue()).toBe(T0 + 60_000);
    });

    test("with a lost lease returns false, leaves the delivery alone, and still records the attempt", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds;
      await queue.lease({ owner: "w", limit: 1 });
      expect(await queue.cancel([id!])).toBe(1);
      expect(await queue.complete(id!, "w", attempt(), { state: "delivered" })).toBe(false);
      const d = (await queue.getMessage(1))!.deliveries[0]!;
      expect(d).toMatchObject({ state: "cancelled", attempts: 0 });
      expect(d.attemptList.map((a) => a.outcome)).toEqual(["delivered"]);
    });

    test("by a worker whose lease expired and went to another worker returns false and spares the new lease", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds;
      await queue.lease({ owner: "slow", limit: 1 });
      clock.advance(60_001);
      await queue.recoverExpiredLeases();
      clock.advance(10_000);
      expect((await queue.lease({ owner: "fresh", limit: 1 })).map((d) => d.id)).toEqual([id!]);
      expect(
        await queue.complete(id!, "slow", attempt({ outcome: "temporary" }), {
          state: "queued",
          nextAttemptAt: T0,
        }),
      ).toBe(false);
      expect((await queue.getMessage(1))!.deliveries[0]).toMatchObject({
        state: "in-flight",
        leaseOwner: "fresh",
        attempts: 0,
      });
      expect(await queue.complete(id!, "fresh", attempt(), { state: "delivered" })).toBe(true);
      expect((await queue.getMessage(1))!.deliveries[0]).toMatchObject({ state: "delivered", attempts: 1 });
    });
    test("that fails (a queued state without a due time) changes nothing, not even the attempts", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds;
      await queue.lease({ owner: "w", limit: 1 });
      const broken = { state: "queued" } as unknown as Completion;
      await expect(queue.complete(id!, "w", attempt(), broken)).rejects.toThrow(b.refused("check"));
      expect((await queue.getMessage(1))!.deliveries[0]).toMatchObject({
        state: "in-flight",
        leaseOwner: "w",
        attempts: 0,
      });
      expect(await count("SELECT count(*) AS n FROM attempts")).toBe(0);
    });
  });

  describe("renewLease() and release()", () => {
    test("renewLease() extends only the leases the owner still holds", async () => {
      const ids = (await queue.accept(invitation(), recipients(3))).deliveryIds;
      await queue.lease({ owner: "w", limit: 2 });
      await queue.lease({ owner: "other", limit: 1 });
      clock.advance(50_000);
      expect(await queue.renewLease(ids, "w")).toEqual([ids[0]!, ids[1]!]);
      const leases = (await queue.getMessage(1))!.deliveries.map((d) => [d.leaseOwner, d.leaseExpiresAt]);
      expect(leases).toEqual([
        ["w", T0 + 110_000],
        ["w", T0 + 110_000],
        ["other", T0 + 60_000],
      ]);
    });

    test("release() puts the owner's leased deliveries back, due now, without counting an attempt", async () => {
      const ids = (await queue.accept(invitation(), recipients(2, { nextAttemptAt: T0 - 100 }))).deliveryIds;
      await queue.lease({ owner: "w", limit: 2 });
      clock.advance(2_000);
      expect(await queue.release(ids, "someone else")).toBe(0);
      expect(await queue.release(ids, "w")).toBe(2);
      expect(
        (await queue.getMessage(1))!.deliveries.map((d) => [
          d.state,
          d.nextAttemptAt,
          d.attempts,
          d.leaseOwner,
        ]),
      ).toEqual([
        ["queued", T0 + 2_000, 0, null],
        ["queued", T0 + 2_000, 0, null],
      ]);
      expect(await count("SELECT count(*) AS n FROM attempts")).toBe(0);
    });
  });
});

// SQLite's own case: two connections to one database file in one process.
describe("lease() on SQLite", () => {
  const clock = new TestClock();
  test("two queues on two connections to the same file never lease the same delivery", async () => {
    const path = tempDatabasePath();
    const [dbA, dbB] = [openDatabase(path), openDatabase(path)];
    const a = new DeliveryQueue(createSqliteStore(dbA), queueOptions(clock));
    const b = new DeliveryQueue(createSqliteStore(dbB), queueOptions(clock));
    const all: number[] = [];
    for (let m = 0; m < 20; m++) all.push(...(await a.accept(invitation(), recipients(10))).deliveryIds);
    const seen: number[] = [];
    for (let round = 0; seen.length < all.length && round < 100; round++) {
      seen.push(...(await a.lease({ owner: "a", limit: 7 })).map((d) => d.id));
      seen.push(...(await b.lease({ owner: "b", limit: 11 })).map((d) => d.id));
    }
    expect(seen).toHaveLength(200);
    expect(new Set(seen).size).toBe(200);
    expect([...seen].sort((x, y) => x - y)).toEqual(all);
    dbA.close();
    dbB.close();
  });
});
