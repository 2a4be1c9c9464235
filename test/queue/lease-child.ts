/**
 * Test helper run as a child process: waits for the file `GO`, then leases (in small batches) and
 * completes deliveries from the database at PATH until none is left, and prints the ids it
 * delivered as JSON. It opens a plain connection: the data lock rightly keeps a second process out
 * of openDatabase(), and this helper exists to race two connections on purpose.
 *
 *   bun lease-child.ts PATH OWNER GO
 */
import { Database } from "bun:sqlite";
import { existsSync, writeSync } from "node:fs";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";

const [path, owner, go] = process.argv.slice(2) as [string, string, string];
const db = new Database(path, { strict: true });
db.run("PRAGMA busy_timeout = 5000");
const queue = new DeliveryQueue(createSqliteStore(db));
writeSync(1, "ready\n");
while (!existsSync(go)) await Bun.sleep(1);

const mine: number[] = [];
for (;;) {
  const leased = await queue.lease({ owner, limit: 1 + Math.floor(Math.random() * 5) });
  if (leased.length === 0) break;
  for (const d of leased) {
    const now = Date.now();
    const attempt = { startedAt: now, durationMs: 0, route: d.route, outcome: "delivered" as const };
    if (!(await queue.complete(d.id, owner, attempt, { state: "delivered" })))
      throw new Error(`lost the lease of ${d.id}`);
    mine.push(d.id);
  }
  // A real worker spends this time on the network; without it, SQLite's busy wait (which is not fair)
  // can let one process take every batch.
  await Bun.sleep(1);
}
writeSync(1, `${JSON.stringify(mine)}\n`);
db.close();
