/**
 * Retention on PostgreSQL (src/store/postgres/retention.ts) on a real server (test/support/postgres.ts):
 * what goes and what stays, as on SQLite (retention.test.ts): refused requests after 7 days,
 * messages after --retain with their deliveries and attempts, bodies after --retain-bodies, expired
 * replay and iTIP keys; a message with a delivery queued or in flight keeps its row and its body.
 * Batches are short (a run of many rows takes many batches), and a run is made by one node at a
 * time: a second node's run while the first prunes is skipped, and a node that dies gives the right
 * to prune back with its connection.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { postgresRetentionSteps, takePruningLock } from "../../src/store/postgres/retention.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/store.ts";
import { DEFAULT_RETENTION, type RetentionPolicy } from "../../src/store/retention-policy.ts";
import { runSteps, startPruner } from "../../src/store/sqlite/pruner.ts";
import { BODIES_CURSOR } from "../../src/store/sqlite/retention.ts";
import type { DeliveryToStore } from "../../src/store/store.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { message, queued } from "./contract/_data.ts";

const DAY = 86_400_000;
const NOW = 1_800_000_000_000;
const POLICY: RetentionPolicy = { messagesMs: 30 * DAY, bodiesMs: 2 * DAY, refusalsMs: 7 * DAY };

let pg: RunningPostgres;
const stores: PostgresStore[] = [];
let databases = 0;

async function freshStore(url?: string): Promise<PostgresStore> {
  const store = await openPostgresStore(url ?? (await pg.createDatabase(`retention_${++databases}`)), {
    maxConnections: 4,
  });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {});
  await pg?.stop();
});

const delivered = (recipient: string): DeliveryToStore => ({
  ...queued(recipient),
  state: "delivered",
  nextAttemptAt: null,
  requestStatus: "2.0;Success",
  attempt: { startedAt: NOW, durationMs: 3, route: "local", outcome: "delivered" },
});

/** A message received `ageMs` ago with these deliveries; its id. */
async function received(
  store: PostgresStore,
  ageMs: number,
  deliveries: DeliveryToStore[],
  o: { replayKey?: string; itipKey?: string } = {},
): Promise<number> {
  const receivedAt = NOW - ageMs;
  const m = message({ receivedAt });
  if (o.replayKey) m.replay = { key: o.replayKey, expiresAt: receivedAt + DAY };
  if (o.itipKey)
    m.itipKeys = {
      keys: [{ recipient: deliveries[0]!.recipient, key: o.itipKey }],
      expiresAt: receivedAt + DAY,
    };
  return (await store.accept({ message: { ...m, receivedAt }, deliveries, nowMs: receivedAt })).messageId;
}

async function refused(store: PostgresStore, ageMs: number): Promise<void> {
  const receivedAt = NOW - ageMs;
  const { body: _body, ...m } = message({ receivedAt });
  await store.insertRefusals({
    rows: [{ ...m, receivedAt, refusal: "signature does not verify" }],
    totals: await store.refusalTotals(),
    limits: { maxCount: 1_000_000, maxBytes: 1 << 30 },
  });
}

async function count(store: PostgresStore, query: string): Promise<number> {
  const [r] = (await store.sql.unsafe(query)) as { n: string | number }[];
  return Number(r!.n);
}

async function prune(store: PostgresStore, policy = POLICY, startRows = 16) {
  return runSteps(postgresRetentionSteps(store.sql, { policy, nowMs: NOW }), {
    startedAtMs: NOW,
    sizing: { targetMs: 2, minRows: startRows, maxRows: startRows, startRows },
    sleep: async () => {},
  });
}

describe("PostgreSQL retention", () => {
  test("prunes what SQLite prunes: old refusals, old messages with deliveries and attempts, old bodies, expired keys; keeps what is being delivered", async () => {
    const store = await freshStore();
    await refused(store, 8 * DAY);
    await refused(store, 6 * DAY);
    // The young message first: a claim prunes a few keys expired at its time, which would take the old ones.
    const young = await received(store, DAY / 2, [delivered("mailto:c@example.com")], {
      replayKey: "replay-young",
      itipKey: "itip-young",
    });
    const old = await received(store, 40 * DAY, [delivered("mailto:a@example.com")], {
      replayKey: "replay-old",
      itipKey: "itip-old",
    });
    const oldQueued = await received(store, 40 * DAY, [queued("mailto:q@example.com")]);
    const middle = await received(store, 10 * DAY, [delivered("mailto:b@example.com")]);
    const report = await prune(store);
    expect(report.problem).toBeUndefined();
    const byStep = Object.fromEntries(report.steps.map((s) => [s.name, s.rows]));
    expect(byStep).toEqual({ refusals: 1, messages: 1, bodies: 1, "replay-keys": 1, "itip-keys": 1 });
    expect(report.steps.find((s) => s.name === "messages")!.deliveries).toBe(1);
    // The old message went with its delivery and attempt; the one still queued stays, body and all.
    const ids = (await store.sql.unsafe("SELECT id FROM messages WHERE refusal IS NULL ORDER BY id")) as {
      id: string;
    }[];
    expect(ids.map((r) => Number(r.id))).toEqual([young, oldQueued, middle]);
    expect(await count(store, `SELECT count(*) AS n FROM deliveries WHERE message_id = ${old}`)).toBe(0);
    expect(await count(store, "SELECT count(*) AS n FROM attempts")).toBe(2);
    expect(await count(store, "SELECT count(*) AS n FROM messages WHERE refusal IS NOT NULL")).toBe(1);
    // Bodies: the 10-day-old one emptied (its size kept), the queued one and the young one kept.
    const bodies = (await store.sql.unsafe(
      "SELECT id, octet_length(body) AS len, body_size FROM messages WHERE refusal IS NULL ORDER BY id",
    )) as { id: string; len: number; body_size: string | null }[];
    expect(
      bodies.map((b) => [Number(b.id), b.len, b.body_size === null ? null : Number(b.body_size)]),
    ).toEqual([
      [young, 10, null],
      [oldQueued, 10, null],
      [middle, 0, 10],
    ]);
    expect((await store.messageRow(middle))?.bodySize).toBe(10);
    // Keys: the expired ones went, the young message's stay in force.
    expect(await store.replayHolder({ key: "replay-young", nowMs: NOW })).toBe(young);
    expect(await count(store, "SELECT count(*) AS n FROM replay_keys")).toBe(1);
    expect(await count(store, "SELECT count(*) AS n FROM itip_keys")).toBe(1);
    // The queued message's body is remembered by the cluster's cursor, and emptied once delivered.
    expect(JSON.parse((await store.getSetting(BODIES_CURSOR))!).held).toEqual([oldQueued]);
    await store.sql.unsafe(
      `UPDATE deliveries SET state = 'delivered', next_attempt_at = NULL WHERE message_id = ${oldQueued}`,
    );
    const again = await prune(store);
    expect(Object.fromEntries(again.steps.map((s) => [s.name, s.rows]))).toMatchObject({ messages: 1 });
    expect(await count(store, "SELECT count(*) AS n FROM messages WHERE refusal IS NULL")).toBe(2);
  });

  test("works in short batches: 60 old messages take many batches of the size asked", async () => {
    const store = await freshStore();
    for (let i = 0; i < 60; i++) await received(store, 40 * DAY, [delivered(`mailto:u${i}@example.com`)]);
    const report = await prune(store, POLICY, 8);
    const messages = report.steps.find((s) => s.name === "messages")!;
    expect(messages.rows).toBe(60);
    expect(messages.batches).toBeGreaterThanOrEqual(8);
    expect(await count(store, "SELECT count(*) AS n FROM messages")).toBe(0);
    console.log(
      `60 messages pruned in ${messages.batches} batches, longest ${messages.maxBatchMs.toFixed(1)} ms`,
    );
  });

  test("one node at a time: another node's run while one prunes is skipped; a node killed while it holds the run frees it", async () => {
    const url = await pg.createDatabase("retention_nodes");
    const two = await freshStore(url);
    await received(two, 40 * DAY, [delivered("mailto:a@example.com")]);
    // Node one is another process that takes the run and is killed (-9) while it holds it.
    const one = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { openPostgresStore } = await import(${JSON.stringify(`${import.meta.dir}/../../src/store/postgres/store.ts`)});
         const { takePruningLock } = await import(${JSON.stringify(`${import.meta.dir}/../../src/store/postgres/retention.ts`)});
         const store = await openPostgresStore(${JSON.stringify(url)});
         console.log((await takePruningLock(store.sql)) ? "held" : "busy");
         await Bun.sleep(60_000);`,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    const reader = one.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value).trim()).toBe("held");
    const pruner = startPruner({
      steps: (nowMs) => postgresRetentionSteps(two.sql, { policy: POLICY, nowMs }),
      runLock: () => takePruningLock(two.sql),
      nowMs: () => NOW,
      firstRunAfterMs: 60_000,
      pauseMs: 0,
    });
    const skipped = await pruner.runNow();
    expect(skipped.skipped).toBe(true);
    expect(await count(two, "SELECT count(*) AS n FROM messages")).toBe(1);
    one.kill("SIGKILL");
    await one.exited;
    // PostgreSQL ends the dead node's session, and its lock with it, once it sees the connection close.
    let ran = await pruner.runNow();
    for (let i = 0; i < 100 && ran.skipped; i++) {
      await Bun.sleep(50);
      ran = await pruner.runNow();
    }
    expect(ran.skipped).toBeUndefined();
    expect(ran.steps.find((s) => s.name === "messages")!.rows).toBe(1);
    // After a run the right is free again.
    const after = await takePruningLock(two.sql);
    expect(after).toBeDefined();
    await after!.release();
    await pruner.stop();
  });

  test("the default policy keeps a message of last month and its body of last week", async () => {
    const store = await freshStore();
    const m = await received(store, 20 * DAY, [delivered("mailto:a@example.com")]);
    const report = await runSteps(
      postgresRetentionSteps(store.sql, { policy: DEFAULT_RETENTION, nowMs: NOW }),
      {
        startedAtMs: NOW,
        sleep: async () => {},
      },
    );
    expect(report.steps.every((s) => s.rows === 0)).toBe(true);
    expect(await count(store, `SELECT octet_length(body) AS n FROM messages WHERE id = ${m}`)).toBe(10);
  });
});
