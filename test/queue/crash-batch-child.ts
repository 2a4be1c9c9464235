/**
 * Test helper run as a child process and killed with SIGKILL by crash.test.ts: eight loops accept
 * messages at the same time, so that the store commits them in shared transactions (group commit),
 * each message with the number of its deliveries in `summary`. Every fifth message of a loop reuses
 * the replay key its neighbour loop used for the same step, so some accepts in a batch are refused
 * as replays while the others commit. Once accept() has answered it prints `accepted UUID N`, or
 * `replay KEY` for a refusal, with a synchronous write: every line names an answered request.
 *
 *   bun crash-batch-child.ts PATH ROUND
 */
import { writeSync } from "node:fs";
import { DeliveryQueue, type NewDelivery } from "../../src/queue/queue.ts";
import { ReplayConflictError } from "../../src/store/errors.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";

const LOOPS = 8;
const [path, round] = process.argv.slice(2) as [string, string];
const queue = new DeliveryQueue(createSqliteStore(openDatabase(path)));
writeSync(1, `ready ${process.pid}\n`);

async function loop(k: number): Promise<never> {
  for (let i = 0; ; i++) {
    const n = 1 + ((i + k) % 5);
    const deliveries: NewDelivery[] = Array.from({ length: n }, (_, r) => ({
      recipient: `mailto:r${r}@peer${k}.example`,
      domain: `peer${k}.example`,
      route: "ischedule",
    }));
    const key = i % 5 === 0 ? `round-${round}-step-${i}-pair-${k >> 1}` : `round-${round}-loop-${k}-${i}`;
    try {
      const accepted = await queue.accept(
        {
          direction: "inbound",
          intake: "ischedule",
          originator: "mailto:organizer@example.com",
          method: "REQUEST",
          component: "VEVENT",
          uid: `round-${round}-${k}-${i}`,
          summary: `deliveries=${n}`,
          contentType: "text/calendar",
          body: `BEGIN:VCALENDAR\r\nX-I:${i}\r\n${"X-PAD:calendar data\r\n".repeat(50)}END:VCALENDAR\r\n`,
          replay: { key, expiresAt: Date.now() + 3_600_000 },
        },
        deliveries,
      );
      writeSync(1, `accepted ${accepted.uuid} ${n}\n`);
    } catch (e) {
      if (!(e instanceof ReplayConflictError)) throw e;
      writeSync(1, `replay ${key}\n`);
    }
  }
}

await Promise.all(Array.from({ length: LOOPS }, (_, k) => loop(k)));
