/**
 * --max-per-peer across nodes: two dispatchers (two nodes) on one PostgreSQL queue, delivering a
 * backlog for one peer to one slow target that counts the attempts running at once. The peer sees
 * no more than the limit from both together (each node alone would allow the limit), and the
 * backlog is delivered. A real PostgreSQL (test/support/postgres.ts), two connection pools.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/store.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { drained, fill, slowTarget, startDispatcher } from "./_dispatch.ts";

let pg: RunningPostgres;
const stores: PostgresStore[] = [];

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.close();
  await pg?.stop();
});

test("two nodes together keep at most maxPerTarget attempts at once to one peer, and deliver everything", async () => {
  const url = await pg.createDatabase("peer_limit");
  for (let i = 0; i < 2; i++) stores.push(await openPostgresStore(url, { maxConnections: 4 }));
  const [one, two] = stores.map((s) => new DeliveryQueue(s));
  await fill(one!, 40, "peer.test");
  const slow = slowTarget(40);
  const limits = { maxConcurrent: 16, maxPerTarget: 3 };
  const nodes = [
    startDispatcher(one!, () => slow.target, limits, "node-a:1"),
    startDispatcher(two!, () => slow.target, limits, "node-b:2"),
  ];
  await drained(one!, 40);
  for (const d of nodes) await d.stop();
  expect((await one!.countByState()).delivered).toBe(40);
  expect(slow.calls()).toBe(40);
  expect(slow.most()).toBe(3);
}, 30_000);
