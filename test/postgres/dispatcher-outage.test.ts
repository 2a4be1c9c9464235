/**
 * The dispatcher's loop while the real PostgreSQL is down (src/delivery/dispatcher.ts): it says so
 * once for the whole outage, waits longer after each failure instead of trying every second, says
 * when the queue works again, and delivers what was queued, without being restarted. The queue is
 * the real one on a PostgresStore; it counts how often the loop asked for due work.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Dispatcher } from "../../src/delivery/dispatcher.ts";
import { type DeliveryTarget, EVENT_AND_TODO_METHODS } from "../../src/delivery/target.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/store.ts";
import { invitation } from "../support/isched.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";

const START_MS = 120_000;
const OUTAGE_MS = 9000;

/** The real queue, counting the loop's look for due work (one per turn). */
class CountingQueue extends DeliveryQueue {
  looks = 0;
  override nextDue(): Promise<number | undefined> {
    this.looks++;
    return super.nextDue();
  }
}

let pg: RunningPostgres;
let store: PostgresStore;

beforeAll(async () => {
  pg = await startPostgres();
  store = await openPostgresStore(pg.url);
}, START_MS);

afterAll(async () => {
  await store?.close();
  await pg?.stop();
});

test(
  "PostgreSQL down for 9 s: one error reported, a few looks rather than one a second, one recovery, and the queued delivery made after",
  async () => {
    const queue = new CountingQueue(store);
    const delivered: string[] = [];
    const target: DeliveryTarget = {
      label: "recorder",
      handles: EVENT_AND_TODO_METHODS,
      async deliver(_message, recipients) {
        delivered.push(...recipients);
        return {
          target: "recorder",
          outcomes: recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" })),
        };
      },
    };
    const errors: string[] = [];
    const recoveries: number[] = [];
    const dispatcher = new Dispatcher({
      queue,
      targetFor: () => target,
      scheduleMs: [300],
      imipAvailable: false,
      owner: "outage-test",
      onError: (what) => errors.push(what),
      onRecovered: (downMs) => recoveries.push(downMs),
    });
    dispatcher.start();
    try {
      await Bun.sleep(300);
      await pg.stop({ keepData: true });
      const looksBefore = queue.looks;
      // The loop looks at once (as when work arrives), and meets the outage.
      dispatcher.poke();
      try {
        await Bun.sleep(OUTAGE_MS);
      } finally {
        await pg.start();
      }
      const looks = queue.looks - looksBefore;
      expect(errors).toEqual(["cannot lease deliveries"]);
      // Waits of 0.5, 1, 2, 4 s after the failures: five looks in 9 s (a look a second would be nine).
      expect(looks).toBeGreaterThanOrEqual(3);
      expect(looks).toBeLessThanOrEqual(6);

      // Back: work that arrives wakes the loop, which says the queue works again and delivers it.
      await queue.accept(
        {
          direction: "inbound",
          intake: "ischedule",
          originator: "mailto:bernard@peer.test",
          method: "REQUEST",
          component: "VEVENT",
          contentType: "text/calendar",
          body: invitation({ uid: "after-outage", organizer: "mailto:bernard@peer.test", attendees: [] }),
        },
        [{ recipient: "mailto:ann@org.test", domain: "org.test", route: "local" }],
      );
      dispatcher.poke();
      const end = Date.now() + 20_000;
      while (!delivered.includes("mailto:ann@org.test") && Date.now() < end) await Bun.sleep(50);
      expect(delivered).toEqual(["mailto:ann@org.test"]);
      expect(recoveries).toHaveLength(1);
      // From the first failure to the first success.
      expect(recoveries[0]!).toBeGreaterThanOrEqual(OUTAGE_MS - 500);
      expect(errors).toHaveLength(1);
    } finally {
      await dispatcher.stop(1000);
    }
  },
  START_MS,
);
