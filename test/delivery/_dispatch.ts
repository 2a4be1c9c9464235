/** Helpers of the dispatcher tests: a slow target that counts attempts at once, a backlog, a started dispatcher. */
import { Dispatcher } from "../../src/delivery/dispatcher.ts";
import type { DeliveryTarget } from "../../src/delivery/target.ts";
import type { DeliveryQueue } from "../../src/queue/queue.ts";

/** A target that takes a while and counts how many attempts run at once. */
export function slowTarget(delayMs: number) {
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

export async function fill(queue: DeliveryQueue, messages: number, domain: string) {
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

/** A started dispatcher over `queue` with these limits. */
export function startDispatcher(
  queue: DeliveryQueue,
  targetFor: (d: { domain: string }) => DeliveryTarget,
  limits: { maxConcurrent: number; maxPerTarget: number },
  owner = "t",
): Dispatcher {
  const d = new Dispatcher({
    queue,
    targetFor,
    scheduleMs: [1000],
    imipAvailable: false,
    owner,
    ...limits,
  });
  d.start();
  return d;
}

/** Waits until `delivered` deliveries are, or 10 s pass. */
export async function drained(queue: DeliveryQueue, delivered: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await queue.countByState()).delivered < delivered && Date.now() < deadline) await Bun.sleep(10);
}
