import { expect, test } from "bun:test";
import { Dispatcher } from "../../src/delivery/dispatcher.ts";
import type { DeliveryTarget } from "../../src/delivery/target.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";

/** A target that takes a while and counts how many attempts run at once. */
function slowTarget(delayMs: number) {
  let running = 0;
  let most = 0;
  let calls = 0;
  const target: DeliveryTarget = {
    label: "slow",
    handles: [],
    async deliver(_m, recipients) {
      calls++;
      running++;
      most = Math.max(most, running);
      await Bun.sleep(delayMs);
      running--;
      return {
        outcomes: recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" })),
        target: "slow",
      };
    },
  };
  return { target, most: () => most, calls: () => calls };
}

async function fill(queue: DeliveryQueue, messages: number, domain: string) {
  for (let i = 0; i < messages; i++) {
    await queue.accept(
      {
        direction: "outbound",
        intake: "api",
        originator: "mailto:a@home.test",
        method: "REQUEST",
        component: "VEVENT",
        contentType: "text/calendar",
        body: "x",
      },
      [{ recipient: `mailto:u${i}@${domain}`, domain, route: "ischedule" }],
    );
  }
}

test("the dispatcher keeps at most maxPerTarget attempts per target and delivers everything", async () => {
  const db = openDatabase(":memory:");
  const queue = new DeliveryQueue(createSqliteStore(db));
  await fill(queue, 30, "peer.test");
  const slow = slowTarget(20);
  const d = new Dispatcher({
    queue,
    targetFor: () => slow.target,
    scheduleMs: [1000],
    imipAvailable: false,
    owner: "t",
    maxConcurrent: 16,
    maxPerTarget: 3,
  });
  d.start();
  const deadline = Date.now() + 10_000;
  while ((await queue.countByState()).delivered < 30 && Date.now() < deadline) await Bun.sleep(20);
  await d.stop();
  expect((await queue.countByState()).delivered).toBe(30);
  expect(slow.most()).toBe(3);
  expect(slow.calls()).toBe(30);
  db.close();
});

test("work leased but waiting for a slot is given back on stop, due now, nothing lost", async () => {
  const db = openDatabase(":memory:");
  const queue = new DeliveryQueue(createSqliteStore(db));
  await fill(queue, 10, "peer.test");
  const slow = slowTarget(300);
  const d = new Dispatcher({
    queue,
    targetFor: () => slow.target,
    scheduleMs: [1000],
    imipAvailable: false,
    owner: "t",
    maxConcurrent: 16,
    maxPerTarget: 2,
  });
  d.start();
  // Stop once the first two attempts run (the rest is then leased and waiting, or given back).
  const started = Date.now() + 5000;
  while (slow.calls() < 2 && Date.now() < started) await Bun.sleep(5);
  await d.stop(5000);
  const states = await queue.countByState();
  expect(states["in-flight"]).toBe(0);
  expect(states.delivered + states.queued).toBe(10);
  expect(states.delivered).toBe(2);
  db.close();
});
