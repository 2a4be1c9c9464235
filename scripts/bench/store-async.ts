/**
 * What an asynchronous store interface costs the SQLite path. A PostgreSQL client is asynchronous,
 * so a store interface both backends implement returns promises; this measures isched's accept
 * transaction (DeliveryQueue.accept: a message with a ~5 KB body, one delivery decided at intake,
 * its attempt and the request's replay key; one IMMEDIATE transaction, WAL with synchronous=NORMAL
 * as `isched serve` runs it) in the shapes such an interface could take over bun:sqlite:
 *
 * - sync: today's call, `await queue.accept(...)`.
 * - async method: `await store.accept(...)`, an async method whose body is the same synchronous
 *   transaction (no await inside it): one promise and one microtask per call.
 * - async method, 8 callers: the same with 8 concurrent callers awaiting (as the endpoint's requests
 *   would): still one transaction at a time, since the body never yields.
 * - async statements: a transaction whose statements are each awaited (the shape of a generic
 *   `transaction(async (tx) => { await tx.insertMessage(); ... })` API): the single connection must
 *   then be held by a mutex from BEGIN to COMMIT, or two callers' statements would interleave in
 *   one transaction. With 1 caller and with 8.
 *
 * Each shape runs for `seconds` per round, the shapes alternating, over `rounds` rounds; the table
 * gives medians. On a file (WAL, the checkpointer thread running, as `isched serve` has it) the
 * tail is the disk's and the machine's; in memory the same code shows the CPU cost of each shape
 * alone.
 *
 *   npx bun scripts/bench/store-async.ts [--seconds 0.5] [--rounds 10]
 */
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Accepted, DeliveryQueue, type NewDelivery } from "../../src/queue/queue.ts";
import { insertAttempt } from "../../src/store/sqlite/attempts.ts";
import { startCheckpointer } from "../../src/store/sqlite/checkpointer.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { insertDelivery } from "../../src/store/sqlite/deliveries.ts";
import { insertMessage, type NewMessage } from "../../src/store/sqlite/messages.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { closedLoop, percentile } from "./_closed-loop.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "0.5" }, rounds: { type: "string", default: "10" } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);

const dir = mkdtempSync(join(tmpdir(), "isched-store-async-"));

const body = Buffer.from(
  `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n${"DESCRIPTION:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\r\n".repeat(68)}END:VEVENT\r\nEND:VCALENDAR\r\n`,
);

let sequence = 0;

function input(i: number): { message: NewMessage; deliveries: NewDelivery[] } {
  const now = Date.now();
  return {
    message: {
      direction: "inbound",
      intake: "ischedule",
      peerDomain: `peer${i % 50}.example`,
      remoteMessageId: `${i}-${now}@peer.example`,
      originator: `mailto:organizer${i % 50}@peer${i % 50}.example`,
      method: "REQUEST",
      component: "VEVENT",
      contentType: "text/calendar; charset=utf-8; method=REQUEST; component=VEVENT",
      body,
      bodyHash: "x",
      dkimResult: "pass",
      // Claimed in the same transaction, as the endpoint does for a signed request (replays.ts).
      replay: { key: `dkim\npeer${i % 50}.example\n${++sequence}\nx`, expiresAt: now + 3_600_000 },
    },
    deliveries: [
      {
        recipient: `mailto:user${i % 200}@example.com`,
        domain: "example.com",
        route: "local",
        target: "store",
        state: "delivered",
        requestStatus: "2.0;Success",
        attempt: {
          startedAt: now,
          durationMs: 0,
          route: "local",
          target: "store",
          requestStatus: "2.0;Success",
          outcome: "delivered",
        },
      },
    ],
  };
}

/** The async-method shape: the whole transaction inside one async call, nothing awaited inside. */
class AsyncStore {
  constructor(readonly queue: DeliveryQueue) {}
  async accept(message: NewMessage, deliveries: readonly NewDelivery[]): Promise<Accepted> {
    return await this.queue.accept(message, deliveries);
  }
}

/** The async-statements shape: BEGIN, each statement awaited, COMMIT, under a connection mutex. */
class StatementStore {
  #tail: Promise<void> = Promise.resolve();
  constructor(readonly db: Database) {}

  /** Holds the connection from BEGIN to COMMIT, so that callers' statements never interleave. */
  async transaction<T>(fn: (tx: StatementTx) => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let done: () => void = () => {};
    this.#tail = new Promise<void>((r) => {
      done = r;
    });
    await previous;
    try {
      this.db.run("BEGIN IMMEDIATE");
      try {
        const result = await fn(new StatementTx(this.db));
        this.db.run("COMMIT");
        return result;
      } catch (e) {
        this.db.run("ROLLBACK");
        throw e;
      }
    } finally {
      done();
    }
  }
}

class StatementTx {
  constructor(readonly db: Database) {}
  async insertMessage(m: Parameters<typeof insertMessage>[1]): Promise<number> {
    return insertMessage(this.db, m);
  }
  async insertDelivery(d: Parameters<typeof insertDelivery>[1]): Promise<number> {
    return insertDelivery(this.db, d);
  }
  async insertAttempt(id: number, a: Parameters<typeof insertAttempt>[2]): Promise<boolean> {
    return insertAttempt(this.db, id, a);
  }
}

type Variant = { name: string; callers: number; run: (i: number) => unknown };

function variantsOver(db: Database): Variant[] {
  const queue = new DeliveryQueue(createSqliteStore(db));
  const asyncStore = new AsyncStore(queue);
  const statementStore = new StatementStore(db);
  const acceptByStatements = (i: number) => acceptByStatementsOn(statementStore, i);
  return [
    {
      name: "sync (today)",
      callers: 1,
      run: async (i) => {
        const x = input(i);
        await queue.accept(x.message, x.deliveries);
      },
    },
    {
      name: "async method",
      callers: 1,
      run: (i) => {
        const x = input(i);
        return asyncStore.accept(x.message, x.deliveries);
      },
    },
    {
      name: "async method",
      callers: 8,
      run: (i) => {
        const x = input(i);
        return asyncStore.accept(x.message, x.deliveries);
      },
    },
    { name: "async statements + mutex", callers: 1, run: acceptByStatements },
    { name: "async statements + mutex", callers: 8, run: acceptByStatements },
  ];
}

async function acceptByStatementsOn(statementStore: StatementStore, i: number): Promise<number> {
  const { message, deliveries } = input(i);
  const d = deliveries[0]!;
  const now = Date.now();
  return statementStore.transaction(async (tx) => {
    const messageId = await tx.insertMessage({
      ...message,
      uuid: Bun.randomUUIDv7("hex", now),
      receivedAt: now,
    });
    const deliveryId = await tx.insertDelivery({
      messageId,
      recipient: d.recipient,
      domain: d.domain,
      route: d.route,
      target: d.target ?? null,
      state: "delivered",
      requestStatus: d.requestStatus ?? null,
      lastError: null,
      nextAttemptAt: null,
      fallbackAt: null,
      nowMs: now,
      attempts: 1,
    });
    await tx.insertAttempt(deliveryId, d.attempt!);
    return messageId;
  });
}

async function measure(v: Variant): Promise<{ perSecond: number; p50: number; cpuUs: number }> {
  const r = await closedLoop({ callers: v.callers, seconds: SECONDS, run: v.run });
  return { perSecond: r.perSecond, p50: percentile(r.latenciesMs, 0.5), cpuUs: r.cpuUsPerOp };
}

try {
  const path = join(dir, "isched.db");
  const file = openDatabase(path);
  const checkpointer = startCheckpointer({
    db: file,
    path,
    onProblem: (problem) => {
      if (problem !== undefined) console.error(`checkpointer: ${problem}`);
    },
  });
  await table("a file (WAL, synchronous=NORMAL, checkpoints on their thread)", file);
  await checkpointer.stop();
  file.close();
  const memory = openDatabase(":memory:");
  await table("memory (CPU only)", memory);
  memory.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function table(what: string, db: Database): Promise<void> {
  const variants = variantsOver(db);
  // Warm-up: statements prepared, the WAL in use.
  for (const v of variants) for (let i = 0; i < 200; i++) await v.run(i);
  const rates = new Map<Variant, number[]>();
  const medians = new Map<Variant, number[]>();
  const cpus = new Map<Variant, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const r = await measure(v);
      rates.set(v, [...(rates.get(v) ?? []), r.perSecond]);
      medians.set(v, [...(medians.get(v) ?? []), r.p50]);
      cpus.set(v, [...(cpus.get(v) ?? []), r.cpuUs]);
    }
  }
  const base = median(rates.get(variants[0]!)!);
  const baseCpu = median(cpus.get(variants[0]!)!);
  console.log(`\nbun:sqlite on ${what}; ${ROUNDS} rounds of ${SECONDS} s, medians\n`);
  console.log("| shape | callers | accepts/s | vs sync | p50 latency µs | CPU µs per accept | CPU vs sync |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const v of variants) {
    const rate = median(rates.get(v)!);
    const p50 = median(medians.get(v)!);
    const cpu = median(cpus.get(v)!);
    const extra = cpu - baseCpu;
    console.log(
      `| ${v.name} | ${v.callers} | ${Math.round(rate)} | ${((rate / base) * 100).toFixed(0)}% | ${(p50 * 1000).toFixed(1)} | ${cpu.toFixed(1)} | ${extra >= 0 ? "+" : ""}${extra.toFixed(1)} µs |`,
    );
  }
  console.log("(with 8 callers a call's latency includes its wait for the 7 others)");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
