/**
 * Retention in the compiled binary on PostgreSQL (serve --database): the start-up summary states the
 * policy (no longer "kept until deleted by hand"), and the node's pruner empties a body older than
 * --retain-bodies, as on SQLite (operations.test.ts, "retention in the running binary"). The node is
 * started again 31 days later on a clock 30 times as fast (libfaketime), so that its first run, a
 * minute after start, comes within seconds. One node at a time is proven at the store level
 * (test/store/retention-postgres.test.ts).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ClusterWorld, startClusterWorld } from "../support/cluster.ts";
import { invitation } from "../support/isched.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

let world: ClusterWorld;

beforeAll(async () => {
  world = await startClusterWorld();
}, 90_000);

afterAll(async () => {
  await world?.stop();
}, 30_000);

async function startNode(o: { clockOffsetSeconds?: number; clockRate?: number } = {}): Promise<ServeProcess> {
  const args = [...world.nodeArgs("n1", { leaseSeconds: 60, logLevel: "info" }), "--retain-bodies", "30d"];
  return running(await serveProcess(args, { timeoutMs: 30_000, ...o }));
}

async function bodyLength(uuidOrId: number): Promise<string> {
  return world.pg.admin(
    `SELECT octet_length(body) || ' ' || coalesce(body_size::text, '-') FROM messages WHERE id = ${uuidOrId}`,
    world.pg.database,
  );
}

test("serve on PostgreSQL states its retention and its pruner empties a body older than --retain-bodies", async () => {
  const today = await startNode();
  let id: number;
  try {
    expect(today.stdout()).toMatch(
      /retention\s+messages 400d, bodies 30d, refusals 7d \(pruned by one node at a time\)/,
    );
    expect(today.stdout()).not.toContain("kept until deleted");
    const token = readFileSync(join(world.dir, "data-n1", "api-token"), "utf8").trim();
    const res = await fetch(`${today.consoleUrl}/api/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "text/calendar" },
      body: invitation({ uid: "keep-1", organizer: "mailto:alice@a.test", attendees: ["mailto:ann@a.test"] }),
    });
    expect(res.status).toBe(202);
    id = ((await res.json()) as { id: number }).id;
    await world.hook.waitFor((d) => d.some((x) => x.uid === "keep-1"), 10_000);
    expect((await bodyLength(id)).split(" ")[1]).toBe("-");
  } finally {
    expect(await today.stop()).toBe(0);
  }

  const later = await startNode({ clockOffsetSeconds: 31 * 86_400, clockRate: 30 });
  try {
    const end = Date.now() + 20_000;
    while (!later.stderr().includes("retention pruned") && Date.now() < end) await Bun.sleep(100);
    expect(later.stderr()).toMatch(/retention pruned bodies=1 /);
    const [emptied, size] = (await bodyLength(id)).split(" ");
    expect(emptied).toBe("0");
    expect(Number(size)).toBeGreaterThan(100);
    const metrics = await (await fetch(`${later.consoleUrl}/metrics`)).text();
    expect(metrics).toMatch(/^isched_pruned_total\{kind="bodies"\} 1$/m);
  } finally {
    await later.stop();
  }
}, 60_000);
