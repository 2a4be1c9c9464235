/**
 * Memory and speed of the delivery queue with a long backlog: fills a temporary database with
 * 1,000,000 queued deliveries (10,000 messages × 100 recipients), then leases and completes 10,000
 * of them in batches, and prints the process RSS and the time per lease batch. Leasing must not load
 * the backlog into memory: the target is an RSS under 150 MB.
 *
 *   npx bun scripts/bench/queue-rss.ts [--messages N] [--recipients N] [--batch N] [--keep]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DeliveryQueue, type NewDelivery } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "10000" },
    recipients: { type: "string", default: "100" },
    batch: { type: "string", default: "100" },
    leased: { type: "string", default: "10000" },
    keep: { type: "boolean", default: false },
  },
});
const messages = Number(values.messages);
const recipients = Number(values.recipients);
const batch = Number(values.batch);
const toLease = Number(values.leased);

const dir = mkdtempSync(join(tmpdir(), "isched-queue-rss-"));
const path = join(dir, "isched.db");
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const rss = () => process.memoryUsage().rss;
let peakRss = rss();
const sample = () => {
  peakRss = Math.max(peakRss, rss());
};

const body = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n${"X-PAD:0123456789abcdef0123456789abcdef\r\n".repeat(20)}END:VCALENDAR\r\n`;
console.log(`database ${path}; start RSS ${mb(rss())}`);

const db = openDatabase(path);
const perTransaction = 100;
// `perTransaction` accepts made together are one transaction (the store's group commit).
const queue = new DeliveryQueue(createSqliteStore(db, { groupCommit: { maxWrites: perTransaction } }));
const fillStart = performance.now();
const fillChunk = (first: number) => {
  const accepted: Promise<unknown>[] = [];
  for (let m = first; m < Math.min(first + perTransaction, messages); m++) {
    const deliveries: NewDelivery[] = [];
    for (let r = 0; r < recipients; r++) {
      deliveries.push({
        recipient: `mailto:user${r}@peer${m % 50}.example`,
        domain: `peer${m % 50}.example`,
        route: "ischedule",
      });
    }
    accepted.push(
      queue.accept(
        {
          direction: "outbound",
          intake: "api",
          originator: `mailto:organizer${m}@example.com`,
          method: "REQUEST",
          component: "VEVENT",
          uid: `event-${m}@example.com`,
          summary: `Meeting ${m}`,
          contentType: "text/calendar; charset=utf-8; method=REQUEST",
          body,
        },
        deliveries,
      ),
    );
  }
  return Promise.all(accepted);
};
for (let first = 0; first < messages; first += perTransaction) {
  await fillChunk(first);
  sample();
}
const fillMs = performance.now() - fillStart;
console.log(
  `filled ${messages * recipients} deliveries (${messages} messages) in ${(fillMs / 1000).toFixed(1)} s; ` +
    `file ${mb(statSync(path).size)}; RSS ${mb(rss())}`,
);

async function timed<T>(fn: () => Promise<T>): Promise<[Awaited<T>, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

const leaseTimes: number[] = [];
const completeTimes: number[] = [];
let leased = 0;
while (leased < toLease) {
  const [got, ms] = await timed(() =>
    queue.lease({ owner: "bench", limit: Math.min(batch, toLease - leased) }),
  );
  leaseTimes.push(ms);
  if (got.length === 0) break;
  const start = performance.now();
  for (const d of got) {
    const now = Date.now();
    await queue.complete(
      d.id,
      "bench",
      { startedAt: now, durationMs: 1, route: d.route, outcome: "delivered", requestStatus: "2.0;Success" },
      { state: "delivered", requestStatus: "2.0;Success" },
    );
  }
  completeTimes.push((performance.now() - start) / got.length);
  leased += got.length;
  sample();
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `mean ${mean.toFixed(2)} ms, p50 ${at(0.5).toFixed(2)} ms, p95 ${at(0.95).toFixed(2)} ms, max ${s.at(-1)!.toFixed(2)} ms`;
};
console.log(`leased and completed ${leased} in ${leaseTimes.length} batches of ${batch}`);
console.log(`  lease batch:  ${stats(leaseTimes)}`);
console.log(`  complete one: ${stats(completeTimes)}`);

const [counts, countMs] = await timed(() => queue.countByState());
console.log(`countByState ${countMs.toFixed(1)} ms: ${JSON.stringify(counts)}`);
const [, nextDueMs] = await timed(() => queue.nextDue());
console.log(`nextDue ${nextDueMs.toFixed(2)} ms`);
const [page, pageMs] = await timed(() => queue.listMessages({ limit: 50 }));
const [, deepPageMs] = await timed(() =>
  queue.listMessages({ limit: 50, beforeId: Math.floor(messages / 2) }),
);
console.log(
  `listMessages first page ${pageMs.toFixed(2)} ms, middle page ${deepPageMs.toFixed(2)} ms (${page.messages.length} rows)`,
);
const [, detailMs] = await timed(() => queue.getMessage(1));
console.log(`getMessage with ${recipients} deliveries and their attempts ${detailMs.toFixed(2)} ms`);
const [none, routeMs] = await timed(() => queue.lease({ owner: "bench", limit: batch, routes: ["imip"] }));
console.log(
  `lease of a route with nothing due behind the backlog ${routeMs.toFixed(1)} ms (${none.length} leased)`,
);
const [, recoverMs] = await timed(() => queue.recoverExpiredLeases());
console.log(`recoverExpiredLeases with nothing expired ${recoverMs.toFixed(2)} ms`);
sample();

console.log(`RSS now ${mb(rss())}, peak sampled ${mb(peakRss)} (target: under 150 MB)`);
db.close();
if (values.keep) console.log(`kept ${dir}`);
else rmSync(dir, { recursive: true, force: true });
