/**
 * Test helper run as a child process and killed with SIGKILL by crash.test.ts: accepts messages
 * (each with the number of its deliveries in `summary`), leases some deliveries and completes some of
 * those, in a tight loop. After each accept() has committed it prints `accepted UUID N` with a
 * synchronous write, so every line the parent reads names a committed message.
 *
 *   bun crash-child.ts PATH ROUND
 */
import { writeSync } from "node:fs";
import { DeliveryQueue, type NewDelivery } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";

const [path, round] = process.argv.slice(2) as [string, string];
const db = openDatabase(path);
const queue = new DeliveryQueue(createSqliteStore(db), { leaseMs: 3_600_000 });
const owner = `crash-child-${process.pid}`;
writeSync(1, `ready ${process.pid}\n`);

for (let i = 0; ; i++) {
  const n = 1 + (i % 17);
  const deliveries: NewDelivery[] = Array.from({ length: n }, (_, r) => ({
    recipient: `mailto:r${r}@peer${i % 7}.example`,
    domain: `peer${i % 7}.example`,
    route: r % 5 === 0 ? "imip" : "ischedule",
  }));
  const accepted = await queue.accept(
    {
      direction: "inbound",
      intake: "ischedule",
      originator: "mailto:organizer@example.com",
      method: "REQUEST",
      component: "VEVENT",
      uid: `round-${round}-${i}`,
      summary: `deliveries=${n}`,
      contentType: "text/calendar",
      body: `BEGIN:VCALENDAR\r\nX-ROUND:${round}\r\nX-I:${i}\r\n${"X-PAD:calendar data\r\n".repeat(50)}END:VCALENDAR\r\n`,
    },
    deliveries,
  );
  writeSync(1, `accepted ${accepted.uuid} ${n}\n`);
  // "Deliver now" for the first recipient, and a worker's batch; complete every other one and leave
  // the rest in flight, as a worker that is killed mid-attempt would.
  const leased = [
    ...(await queue.leaseIds(owner, accepted.deliveryIds.slice(0, 1))),
    ...(await queue.lease({ owner, limit: 4 })),
  ];
  for (const [k, d] of leased.entries()) {
    if (k % 2 === 1) continue;
    const attempt = { startedAt: Date.now(), durationMs: 1, route: d.route, outcome: "delivered" as const };
    await queue.complete(d.id, owner, attempt, { state: "delivered", requestStatus: "2.0;Success" });
  }
}
