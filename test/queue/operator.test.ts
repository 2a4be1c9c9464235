/** The queue's operator actions and reads over the Store, on both backends (test/support/store-backends.ts). */
import { beforeEach, describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import type { Store } from "../../src/store/store.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { attempt, invitation, queueOptions, recipients, T0, TestClock } from "./_fixtures.ts";

onBothBackends("DeliveryQueue operator actions", (b) => {
  let store: Store;
  let clock: TestClock;
  let queue: DeliveryQueue;

  beforeEach(async () => {
    store = await b.fresh();
    clock = new TestClock();
    queue = new DeliveryQueue(store, queueOptions(clock, { leaseMs: 60_000, maxLeaseBreaks: 1 }));
  });

  /**
   * One delivery in each state: queued, in-flight, delivered, failed, sent-imip, cancelled, broken.
   * Returns their ids in that order.
   */
  async function oneOfEach(): Promise<number[]> {
    const ids = (await queue.accept(invitation(), recipients(7, { nextAttemptAt: T0 + 3_600_000 })))
      .deliveryIds;
    const [, inFlight, delivered, failed, sentImip, cancelled, broken] = ids as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    await queue.leaseIds("w", [delivered, failed, sentImip]);
    await queue.complete(delivered, "w", attempt(), { state: "delivered", requestStatus: "2.0;Success" });
    await queue.complete(failed, "w", attempt({ outcome: "permanent" }), {
      state: "failed",
      requestStatus: "3.7;Invalid",
      error: "refused",
    });
    await queue.complete(sentImip, "w", attempt({ route: "imip", outcome: "sent-imip" }), {
      state: "sent-imip",
    });
    await queue.cancel([cancelled]);
    await queue.leaseIds("crashed", [broken]);
    clock.advance(60_001);
    await queue.recoverExpiredLeases();
    await queue.leaseIds("w", [inFlight]);
    clock.advance(1_000);
    expect((await stateRows()).map((r) => r.state)).toEqual([
      "queued",
      "in-flight",
      "delivered",
      "failed",
      "sent-imip",
      "cancelled",
      "broken",
    ]);
    return ids;
  }

  async function stateRows() {
    return (await queue.getMessage(1))!.deliveries.map((d) => ({
      state: d.state,
      route: d.route,
      target: d.target,
      nextAttemptAt: d.nextAttemptAt,
      attempts: d.attempts,
      finalAt: d.finalAt,
      leaseBreaks: d.leaseBreaks,
    }));
  }

  describe("operator actions", () => {
    test("retryNow() requeues queued, failed and broken deliveries due now, keeping their attempts", async () => {
      const ids = await oneOfEach();
      const now = clock.ms;
      expect(await queue.retryNow(ids)).toBe(3);
      expect(
        (await stateRows()).map((r) => [r.state, r.nextAttemptAt, r.attempts, r.finalAt, r.leaseBreaks]),
      ).toEqual([
        ["queued", now, 0, null, 0],
        ["in-flight", T0 + 3_600_000, 0, null, 0],
        ["delivered", null, 1, T0, 0],
        ["queued", now, 1, null, 0],
        ["sent-imip", null, 1, T0, 0],
        ["cancelled", null, 0, T0, 0],
        ["queued", now, 0, null, 0],
      ]);
    });

    test("cancel() cancels what is not final yet, including a delivery a worker holds", async () => {
      const ids = await oneOfEach();
      expect(await queue.cancel(ids)).toBe(3);
      expect((await stateRows()).map((r) => [r.state, r.finalAt])).toEqual([
        ["cancelled", clock.ms],
        ["cancelled", clock.ms],
        ["delivered", T0],
        ["failed", T0],
        ["sent-imip", T0],
        ["cancelled", T0],
        ["cancelled", clock.ms],
      ]);
      expect(await queue.complete(ids[1]!, "w", attempt(), { state: "delivered" })).toBe(false);
    });

    test("requestImip() moves queued, failed and broken deliveries to the imip route, due now", async () => {
      const ids = await oneOfEach();
      expect(await queue.requestImip(ids)).toBe(3);
      expect((await stateRows()).map((r) => [r.state, r.route, r.target, r.nextAttemptAt])).toEqual([
        ["queued", "imip", null, clock.ms],
        ["in-flight", "ischedule", "https://peer.example/.well-known/ischedule", T0 + 3_600_000],
        ["delivered", "ischedule", "https://peer.example/.well-known/ischedule", null],
        ["queued", "imip", null, clock.ms],
        ["sent-imip", "ischedule", "https://peer.example/.well-known/ischedule", null],
        ["cancelled", "ischedule", "https://peer.example/.well-known/ischedule", null],
        ["queued", "imip", null, clock.ms],
      ]);
      expect((await queue.lease({ owner: "mailer", limit: 10, routes: ["imip"] })).map((d) => d.id)).toEqual([
        ids[0]!,
        ids[3]!,
        ids[6]!,
      ]);
    });

    test("an action on no ids or unknown ids changes nothing", async () => {
      await oneOfEach();
      expect(await queue.retryNow([])).toBe(0);
      expect(await queue.cancel([999, 1000])).toBe(0);
      expect(await queue.requestImip([999])).toBe(0);
    });

    test("countByState() counts every state, with zeros", async () => {
      expect(await queue.countByState()).toEqual({
        queued: 0,
        "in-flight": 0,
        delivered: 0,
        failed: 0,
        "sent-imip": 0,
        cancelled: 0,
        broken: 0,
      });
      await oneOfEach();
      await queue.accept(invitation(), recipients(2));
      expect(await queue.countByState()).toEqual({
        queued: 3,
        "in-flight": 1,
        delivered: 1,
        failed: 1,
        "sent-imip": 1,
        cancelled: 1,
        broken: 1,
      });
    });

    test("nextDue() is the earliest due time of a queued delivery, or undefined", async () => {
      expect(await queue.nextDue()).toBeUndefined();
      await queue.accept(invitation(), recipients(1, { nextAttemptAt: T0 + 500 }));
      await queue.accept(invitation(), recipients(1, { nextAttemptAt: T0 + 200 }));
      expect(await queue.nextDue()).toBe(T0 + 200);
    });
  });

  describe("reading", () => {
    test("listMessages() pages newest first by id, and the last page has no next page", async () => {
      for (let i = 1; i <= 5; i++) await queue.accept(invitation({ uid: `event-${i}` }), recipients(i));
      const first = await queue.listMessages({ limit: 2 });
      expect(first.messages.map((m) => [m.id, m.uid])).toEqual([
        [5, "event-5"],
        [4, "event-4"],
      ]);
      expect(first.nextBeforeId).toBe(4);
      const second = await queue.listMessages({ limit: 2, beforeId: first.nextBeforeId });
      expect(second.messages.map((m) => m.id)).toEqual([3, 2]);
      const last = await queue.listMessages({ limit: 2, beforeId: second.nextBeforeId });
      expect(last.messages.map((m) => m.id)).toEqual([1]);
      expect(last.nextBeforeId).toBeUndefined();
      await expect(queue.listMessages({ limit: 0 })).rejects.toThrow(RangeError);
    });

    test("listMessages() summarises each message's deliveries by state", async () => {
      await oneOfEach();
      expect((await queue.listMessages({ limit: 10 })).messages[0]!.deliveryStates).toEqual({
        queued: 1,
        "in-flight": 1,
        delivered: 1,
        failed: 1,
        "sent-imip": 1,
        cancelled: 1,
        broken: 1,
      });
    });

    test("getMessage() finds a message by id or uuid, with each delivery's own attempts", async () => {
      const { messageId, uuid, deliveryIds } = await queue.accept(invitation(), recipients(2));
      await queue.leaseIds("w", deliveryIds);
      await queue.complete(deliveryIds[0]!, "w", attempt({ outcome: "temporary", httpStatus: 503 }), {
        state: "queued",
        nextAttemptAt: T0,
      });
      await queue.complete(deliveryIds[1]!, "w", attempt(), { state: "delivered" });
      await queue.leaseIds("w", [deliveryIds[0]!]);
      await queue.complete(deliveryIds[0]!, "w", attempt(), { state: "delivered" });
      const byId = (await queue.getMessage(messageId))!;
      expect(await queue.getMessage(uuid)).toEqual(byId);
      expect(byId.deliveries.map((d) => d.attemptList.map((a) => [a.deliveryId, a.httpStatus]))).toEqual([
        [
          [deliveryIds[0]!, 503],
          [deliveryIds[0]!, 200],
        ],
        [[deliveryIds[1]!, 200]],
      ]);
      expect(await queue.getMessage(12345)).toBeUndefined();
      expect(await queue.getMessage("no-such-uuid")).toBeUndefined();
    });

    test("reading the queue never changes it", async () => {
      await oneOfEach();
      // What a write would change: SQLite's count of changed rows; on PostgreSQL every row's xmin
      // (the transaction that last wrote it).
      const written = () =>
        b.name === "SQLite"
          ? b.rows(store, "SELECT total_changes() AS c")
          : b.rows(
              store,
              "SELECT 'm' AS t, id, xmin::text AS x FROM messages UNION ALL SELECT 'd', id, xmin::text FROM deliveries UNION ALL SELECT 'a', id, xmin::text FROM attempts ORDER BY 1, 2",
            );
      const before = await written();
      const snapshot = await b.rows(store, "SELECT * FROM deliveries ORDER BY id");
      await queue.getMessage(1);
      await queue.listMessages({ limit: 10 });
      await queue.countByState();
      await queue.nextDue();
      expect(await written()).toEqual(before);
      expect(await b.rows(store, "SELECT * FROM deliveries ORDER BY id")).toEqual(snapshot);
    });
  });
});
