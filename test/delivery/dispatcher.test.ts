/** The dispatcher's limits and hand-back over a real queue, on both backends (test/support/store-backends.ts). */
import { expect, test } from "bun:test";
import type { DeliveryTarget } from "../../src/delivery/target.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { drained, fill, slowTarget, startDispatcher } from "./_dispatch.ts";

onBothBackends("Dispatcher", (b) => {
  test("the dispatcher keeps at most maxPerTarget attempts per target and delivers everything", async () => {
    const store = await b.fresh();
    const queue = new DeliveryQueue(store);
    await fill(queue, 30, "peer.test");
    const slow = slowTarget(20);
    const d = startDispatcher(queue, () => slow.target, { maxConcurrent: 16, maxPerTarget: 3 });
    await drained(queue, 30);
    await d.stop();
    expect((await queue.countByState()).delivered).toBe(30);
    expect(slow.most()).toBe(3);
    expect(slow.calls()).toBe(30);
  });

  test("work leased but waiting for a slot is given back on stop, due now, nothing lost", async () => {
    const store = await b.fresh();
    const queue = new DeliveryQueue(store);
    await fill(queue, 10, "peer.test");
    const slow = slowTarget(300);
    const d = startDispatcher(queue, () => slow.target, { maxConcurrent: 16, maxPerTarget: 2 });
    // Stop once the first two attempts run (the rest is then leased and waiting, or given back).
    const started = Date.now() + 5000;
    while (slow.calls() < 2 && Date.now() < started) await Bun.sleep(5);
    await d.stop(5000);
    const states = await queue.countByState();
    expect(states["in-flight"]).toBe(0);
    expect(states.delivered + states.queued).toBe(10);
    expect(states.delivered).toBe(2);
  });

  test("the loop leases only what can start or wait: nothing is leased and given back while a target is at its limit", async () => {
    const store = await b.fresh();
    // The real queue, counting what is given back.
    let givenBack = 0;
    class CountingQueue extends DeliveryQueue {
      override release(ids: readonly number[], owner: string): Promise<number> {
        givenBack += ids.length;
        return super.release(ids, owner);
      }
    }
    const queue = new CountingQueue(store);
    await fill(queue, 60, "peer.test");
    const slow = slowTarget(10);
    const d = startDispatcher(queue, () => slow.target, { maxConcurrent: 32, maxPerTarget: 4 });
    await drained(queue, 60);
    await d.stop();
    expect((await queue.countByState()).delivered).toBe(60);
    expect(slow.most()).toBe(4);
    expect(givenBack).toBe(0);
  });

  test("a long backlog for one busy target does not keep another target's delivery waiting behind it", async () => {
    const store = await b.fresh();
    const queue = new DeliveryQueue(store);
    await fill(queue, 400, "busy.test");
    await fill(queue, 1, "other.test");
    const busy = slowTarget(50);
    const deliveredAt = new Map<string, number>();
    const other: DeliveryTarget = {
      label: "other",
      handles: [],
      async deliver(_m, recipients) {
        deliveredAt.set("other", Date.now());
        return {
          outcomes: recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" })),
          target: "other",
        };
      },
    };
    const d = startDispatcher(queue, (r) => (r.domain === "other.test" ? other : busy.target), {
      maxConcurrent: 32,
      maxPerTarget: 2,
    });
    const startedAt = Date.now();
    const deadline = Date.now() + 5_000;
    while (!deliveredAt.has("other") && Date.now() < deadline) await Bun.sleep(10);
    const busyDelivered = (await queue.countByState()).delivered;
    await d.stop();
    // The busy target needs 400 × 50 ms / 2 = 10 s; the other delivery goes out long before that.
    expect(deliveredAt.get("other")! - startedAt).toBeLessThan(3_000);
    expect(busyDelivered).toBeLessThan(150);
  });
});
