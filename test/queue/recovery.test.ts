/** Lease recovery over the Store, on both backends (test/support/store-backends.ts). */
import { beforeEach, describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import type { Store } from "../../src/store/store.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { attempt, invitation, queueOptions, recipients, T0, TestClock } from "./_fixtures.ts";

onBothBackends("DeliveryQueue lease recovery", (b) => {
  let store: Store;
  let clock: TestClock;
  let queue: DeliveryQueue;

  beforeEach(async () => {
    store = await b.fresh();
    clock = new TestClock();
    // random 0.5: a recovered delivery is due 5 s × 1.5 = 7.5 s after recovery.
    queue = new DeliveryQueue(store, queueOptions(clock, { leaseMs: 60_000, recoveryDelayMs: 5_000 }));
  });

  const delivery = async (id: number) => (await queue.getMessage(1))!.deliveries.find((d) => d.id === id)!;

  describe("recoverExpiredLeases()", () => {
    test("requeues expired leases after the recovery delay and leaves live leases alone", async () => {
      const [old, fresh] = (await queue.accept(invitation(), recipients(2))).deliveryIds as [number, number];
      await queue.leaseIds("dead", [old]);
      clock.advance(30_000);
      await queue.leaseIds("alive", [fresh]);
      clock.advance(30_000);
      // The first lease expires exactly now; the second has 30 s left.
      expect(await queue.recoverExpiredLeases()).toEqual({ requeued: [old], broken: [] });
      expect(await delivery(old)).toMatchObject({
        state: "queued",
        nextAttemptAt: T0 + 60_000 + 7_500,
        leaseOwner: null,
        leaseExpiresAt: null,
        leaseBreaks: 1,
        attempts: 0,
      });
      expect((await delivery(old)).lastError).toContain("The lease of dead expired");
      expect(await delivery(fresh)).toMatchObject({
        state: "in-flight",
        leaseOwner: "alive",
        leaseBreaks: 0,
      });
    });

    test("a recovered delivery is not leased again before its delay", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds as [number];
      await queue.lease({ owner: "dead", limit: 1 });
      clock.advance(60_000);
      await queue.recoverExpiredLeases();
      clock.advance(7_499);
      expect(await queue.lease({ owner: "w", limit: 1 })).toEqual([]);
      clock.advance(1);
      expect((await queue.lease({ owner: "w", limit: 1 })).map((d) => d.id)).toEqual([id]);
    });

    test("spreads recovered deliveries between one and two recovery delays", async () => {
      let r = 0;
      const randoms = [0, 0.999];
      const spread = new DeliveryQueue(
        store,
        queueOptions(clock, { recoveryDelayMs: 5_000, random: () => randoms[r++]! }),
      );
      const ids = (await spread.accept(invitation(), recipients(2))).deliveryIds;
      await spread.leaseIds("dead", ids);
      await spread.recoverExpiredLeases({ allInFlight: true });
      expect(await Promise.all(ids.map(async (id) => (await delivery(id)).nextAttemptAt))).toEqual([
        T0 + 5_000,
        T0 + 9_995,
      ]);
    });

    test("at start-up takes every in-flight delivery, expired or not", async () => {
      const ids = (await queue.accept(invitation(), recipients(3))).deliveryIds;
      await queue.leaseIds("previous-process", ids.slice(0, 2));
      clock.advance(1_000);
      expect(await queue.recoverExpiredLeases()).toEqual({ requeued: [], broken: [] });
      expect(await queue.recoverExpiredLeases({ allInFlight: true })).toEqual({
        requeued: ids.slice(0, 2),
        broken: [],
      });
      expect(await queue.countByState()).toMatchObject({ queued: 3, "in-flight": 0 });
    });

    test("marks a delivery broken when its lease has broken maxLeaseBreaks times in a row", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds as [number];
      for (let round = 1; round <= 3; round++) {
        clock.advance(10_000);
        expect((await queue.lease({ owner: `crash-${round}`, limit: 1 })).map((d) => d.id)).toEqual([id]);
        clock.advance(60_000);
        const expected = round < 3 ? { requeued: [id], broken: [] } : { requeued: [], broken: [id] };
        expect(await queue.recoverExpiredLeases()).toEqual(expected);
      }
      expect(await delivery(id)).toMatchObject({
        state: "broken",
        leaseBreaks: 3,
        nextAttemptAt: null,
        finalAt: null,
      });
      expect((await delivery(id)).lastError).toContain("expired 3 times in a row (last owner crash-3)");
      clock.advance(3_600_000);
      expect(await queue.lease({ owner: "w", limit: 1 })).toEqual([]);
    });

    test("at start-up, a delivery in flight at each of the last three deaths of the process is broken", async () => {
      // A poison delivery: each run leases it when it is due and dies holding it, with other work in flight.
      const [poison, ...others] = (await queue.accept(invitation(), recipients(4))).deliveryIds as [
        number,
        ...number[],
      ];
      for (let death = 1; death <= 3; death++) {
        clock.advance(10_000);
        const other = others[death - 1]!;
        await queue.leaseIds(`run-${death}`, [poison, other]);
        const expected = death < 3 ? [poison, other] : [other];
        expect(await queue.recoverExpiredLeases({ allInFlight: true })).toEqual({
          requeued: expected,
          broken: death < 3 ? [] : [poison],
        });
        expect((await delivery(poison)).leaseBreaks).toBe(death);
        // The other work caught with it counts one death, and forgets it at the next that does not hold it.
        expect(await Promise.all(others.map(async (id) => (await delivery(id)).leaseBreaks))).toEqual(
          others.map((id) => (id === other ? 1 : 0)),
        );
      }
      expect(await delivery(poison)).toMatchObject({ state: "broken", leaseBreaks: 3, nextAttemptAt: null });
      expect((await delivery(poison)).lastError).toContain("the last 3 times it died (last owner run-3)");
      clock.advance(3_600_000);
      expect((await queue.lease({ owner: "w", limit: 4 })).map((d) => d.id)).toEqual(others);
    });

    test("at start-up, a death that did not hold a delivery ends its count of lease breaks", async () => {
      // kill -9 again and again: a delivery caught in flight by a kill is queued, due seconds later,
      // while the next runs die holding other work; caught again later, it starts counting anew.
      const ids = (await queue.accept(invitation(), recipients(5))).deliveryIds as number[];
      const [caught, ...others] = ids as [number, ...number[]];
      const die = async (run: string, held: number[]) => {
        clock.advance(1_000);
        await queue.leaseIds(run, held);
        return queue.recoverExpiredLeases({ allInFlight: true });
      };
      // Caught at deaths 1, 3, 4, 6 and 8; never at two deaths in a row more than twice.
      expect(await die("run-1", [caught])).toEqual({ requeued: [caught], broken: [] });
      await die("run-2", [others[0]!]);
      expect((await delivery(caught)).leaseBreaks).toBe(0);
      await die("run-3", [caught]);
      expect(await die("run-4", [caught, others[1]!])).toEqual({
        requeued: [caught, others[1]!],
        broken: [],
      });
      expect((await delivery(caught)).leaseBreaks).toBe(2);
      await die("run-5", []);
      expect(await delivery(caught)).toMatchObject({ state: "queued", leaseBreaks: 0 });
      await die("run-6", [caught]);
      await die("run-7", [others[2]!]);
      expect(await die("run-8", [caught])).toEqual({ requeued: [caught], broken: [] });
      expect(await delivery(caught)).toMatchObject({ state: "queued", leaseBreaks: 1 });
      expect(await queue.countByState()).toMatchObject({ queued: 5, broken: 0 });
    });

    test("a recorded attempt resets the count of lease breaks", async () => {
      const [id] = (await queue.accept(invitation(), recipients(1))).deliveryIds as [number];
      const breakOnce = async () => {
        clock.advance(10_000);
        await queue.lease({ owner: "w", limit: 1 });
        clock.advance(60_000);
        await queue.recoverExpiredLeases();
      };
      await breakOnce();
      await breakOnce();
      expect((await delivery(id)).leaseBreaks).toBe(2);
      clock.advance(10_000);
      await queue.lease({ owner: "w", limit: 1 });
      await queue.complete(id, "w", attempt({ outcome: "temporary" }), {
        state: "queued",
        nextAttemptAt: clock.ms,
      });
      expect((await delivery(id)).leaseBreaks).toBe(0);
      await breakOnce();
      await breakOnce();
      expect(await delivery(id)).toMatchObject({ state: "queued", leaseBreaks: 2 });
    });

    test("retryNow() gives a broken delivery a fresh count of lease breaks", async () => {
      const q = new DeliveryQueue(store, queueOptions(clock, { leaseMs: 60_000, maxLeaseBreaks: 2 }));
      const [id] = (await q.accept(invitation(), recipients(1))).deliveryIds as [number];
      const breakOnce = async () => {
        clock.advance(10_000);
        expect((await q.lease({ owner: "w", limit: 1 })).map((d) => d.id)).toEqual([id]);
        clock.advance(60_000);
        return await q.recoverExpiredLeases();
      };
      expect(await breakOnce()).toEqual({ requeued: [id], broken: [] });
      expect(await breakOnce()).toEqual({ requeued: [], broken: [id] });
      expect(await q.retryNow([id])).toBe(1);
      expect(await delivery(id)).toMatchObject({ state: "queued", leaseBreaks: 0, nextAttemptAt: clock.ms });
      expect(await breakOnce()).toEqual({ requeued: [id], broken: [] });
    });

    test("refuses options that would make leases or recovery meaningless", () => {
      expect(() => new DeliveryQueue(store, { leaseMs: 0 })).toThrow(
        "leaseMs must be a whole number >= 1, not 0",
      );
      expect(() => new DeliveryQueue(store, { maxLeaseBreaks: 0 })).toThrow(RangeError);
      expect(() => new DeliveryQueue(store, { recoveryDelayMs: -1 })).toThrow(
        "recoveryDelayMs must be a whole number >= 0",
      );
    });
  });
});
