/**
 * The store contract, several nodes: the same cases against SQLite and PostgreSQL (_stores.ts; on
 * PostgreSQL the two nodes are two connection pools on one database). What `isched serve` relies on
 * when nodes share a queue (src/server/cluster.ts): a node's start-up takes back the leases of its
 * own earlier process and the expired ones, never the live leases of another node; a node that
 * renews keeps its leases; a dead node's leases are taken over once they expire, and its late
 * completion is then refused, so a delivery is recorded once.
 */
import { expect, test } from "bun:test";
import { DEFAULT_RECOVERY_DELAY_MS, DeliveryQueue } from "../../../src/queue/queue.ts";
import type { Store } from "../../../src/store/store.ts";
import { acceptQueued, T0 } from "./_data.ts";
import { contract } from "./_stores.ts";

const LEASE_MS = 10_000;
const ATTEMPT = { startedAt: T0, durationMs: 5, route: "local" as const, outcome: "delivered" as const };

/** A node's queue on `store`, with its own clock. */
function nodeQueue(store: Store, clock: { now: number }) {
  return new DeliveryQueue(store, { nowMs: () => clock.now, leaseMs: LEASE_MS, random: () => 0 });
}

contract("store node leases", (b) => {
  test("a node's start-up takes its earlier process's leases and the expired ones, not another node's live ones", async () => {
    const storeA = await b.fresh();
    const storeB = await b.another(storeA);
    const { deliveryIds: ids } = await acceptQueued(storeA, 4);
    const clock = { now: T0 + 100 };
    const a = nodeQueue(storeA, clock);
    const bq = nodeQueue(storeB, clock);
    // node-a (alive) holds 2; node-b's earlier process (dead) holds 1; an old lease of node-c expired.
    await bq.leaseIds("node-c:7", [ids[3]!]);
    clock.now += LEASE_MS + 1;
    await a.leaseIds("node-a:100", [ids[0]!, ids[1]!]);
    await bq.leaseIds("node-b:200", [ids[2]!]);
    clock.now += 1000;
    const report = await bq.recoverExpiredLeases({ startOfNode: "node-b:" });
    expect(report).toEqual({ requeued: [ids[2]!, ids[3]!], broken: [] });
    const rows = await Promise.all(ids.map((id) => storeA.deliveryRow(id)));
    expect(rows.map((d) => [d!.state, d!.leaseOwner])).toEqual([
      ["in-flight", "node-a:100"],
      ["in-flight", "node-a:100"],
      ["queued", null],
      ["queued", null],
    ]);
    // node-a completes its deliveries: nothing was taken from it.
    const done = await a.completeMany(
      "node-a:100",
      ids.slice(0, 2).map((deliveryId) => ({ deliveryId, attempt: ATTEMPT, next: { state: "delivered" } })),
    );
    expect(done).toEqual([true, true]);
    // A node whose name is a prefix of another's takes nothing of it ("node-a:" is not "node-ab:").
    await bq.leaseIds("node-ab:300", [ids[2]!]);
    expect(await a.recoverExpiredLeases({ startOfNode: "node-a:" })).toEqual({ requeued: [], broken: [] });
  });

  test("a dead node's leases are taken over after the lease time, and its late completion is refused", async () => {
    const storeA = await b.fresh();
    const storeB = await b.another(storeA);
    const { deliveryIds: ids } = await acceptQueued(storeA, 3);
    const clock = { now: T0 + 100 };
    const a = nodeQueue(storeA, clock);
    const bq = nodeQueue(storeB, clock);
    const held = await a.lease({ owner: "node-a:1", limit: 3 });
    expect(held.map((d) => d.id)).toEqual(ids);
    // node-a stops renewing (it died). Before its leases expire node-b takes nothing.
    clock.now += LEASE_MS - 1;
    expect(await bq.recoverExpiredLeases()).toEqual({ requeued: [], broken: [] });
    expect(await bq.lease({ owner: "node-b:2", limit: 3 })).toEqual([]);
    // Once they expire node-b takes them over, leases them when due, and delivers them.
    clock.now += 2;
    expect((await bq.recoverExpiredLeases()).requeued).toEqual(ids);
    clock.now += DEFAULT_RECOVERY_DELAY_MS;
    const taken = await bq.lease({ owner: "node-b:2", limit: 3 });
    expect(taken.map((d) => d.id)).toEqual(ids);
    const items = ids.map((deliveryId) => ({
      deliveryId,
      attempt: ATTEMPT,
      next: { state: "delivered" as const },
    }));
    // node-a's outcome arrives late (it was not dead, only stalled): refused, nothing recorded twice.
    expect(await a.completeMany("node-a:1", items)).toEqual([false, false, false]);
    expect(await bq.completeMany("node-b:2", items)).toEqual([true, true, true]);
    const detail = (await storeA.messageDetail((await storeA.deliveryRow(ids[0]!))!.messageId))!;
    // One delivery each, delivered, one attempt counted; the stalled node's attempt stays in the log
    // (it was made) without changing the delivery.
    expect(detail.deliveries.map((d) => [d.state, d.attempts, d.leaseOwner])).toEqual([
      ["delivered", 1, null],
      ["delivered", 1, null],
      ["delivered", 1, null],
    ]);
  });

  test("a node that renews keeps its leases past their first expiry", async () => {
    const storeA = await b.fresh();
    const storeB = await b.another(storeA);
    const { deliveryIds: ids } = await acceptQueued(storeA, 2);
    const clock = { now: T0 + 100 };
    const a = nodeQueue(storeA, clock);
    const bq = nodeQueue(storeB, clock);
    await a.lease({ owner: "node-a:1", limit: 2 });
    clock.now += LEASE_MS / 2;
    expect(await a.renewLease(ids, "node-a:1")).toEqual(ids);
    clock.now += LEASE_MS / 2 + 1;
    expect(await bq.recoverExpiredLeases()).toEqual({ requeued: [], broken: [] });
    expect((await storeB.deliveryRow(ids[0]!))?.leaseOwner).toBe("node-a:1");
  });
});
