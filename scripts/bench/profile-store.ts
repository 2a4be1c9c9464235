/**
 * What the accept transaction of one inbound request costs in SQLite, piece by piece: CPU (this
 * thread's, clock_gettime(CLOCK_THREAD_CPUTIME_ID)) and wall time per request, and the WAL it
 * writes, for the message, delivery and attempt rows the `store` target commits for one
 * invitation, with its replay key and iTIP copy key claimed, written with the queue's own accept() on a database made by openDatabase() (the real
 * schema).
 *
 *   npx bun scripts/bench/profile-store.ts [--requests 3000] [--prefill 20000] [--dir DIR]
 *                                          [--only TEXT]   (the variants whose name contains TEXT)
 *                                          [--baseline REF]
 *
 * Variants, each on a fresh copy of the same pre-filled database (--prefill messages, like a server
 * that has run for a while), WAL checkpoints off during the measurement so that the WAL's growth is
 * exactly what the transactions wrote:
 * - today: synchronous=NORMAL, every index;
 * - synchronous=FULL (an fsync of the WAL per commit) and OFF;
 * - each secondary index dropped in turn (what that one index costs per request);
 * - every index the accept path does not need dropped at once (only the primary keys, uuid and
 *   (message_id, recipient) uniqueness, the replay index and the queue's own partial indexes);
 * - group commit: N requests' rows in one transaction (N = 2 .. 64), per request, as the store
 *   commits them (src/store/sqlite/group-commit.ts: N accepts made together, one savepoint each);
 * - the WAL file written again from its start (as after a checkpoint that reset it) instead of
 *   growing into new blocks of the file, which is what a server under steady load does today;
 * - the server's checkpointer running beside the writes (src/store/checkpointer.ts: a worker thread
 *   with its own connection, on the schedule of checkpoint-plan.ts);
 * - the WAL already 2 GB long before the measurement (what a server under steady load reached in
 *   about 20 s before checkpoints truncated the WAL).
 *
 * --baseline REF: the first variant (one request per transaction, every index) is also measured with
 * REF's sources (git archive: its queue, store and schema, on a database it pre-fills itself).
 *
 * The folder (default: a temporary one under /tmp) must be on the disk the server would use.
 */

import type { Database } from "bun:sqlite";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { DeliveryQueue, NewDelivery } from "../../src/queue/queue.ts";
import { startCheckpointer } from "../../src/store/sqlite/checkpointer.ts";
import type { NewMessage } from "../../src/store/sqlite/messages.ts";
import { baselineCopy, threadCpuClockUs } from "./_instrument.ts";

/** The queue, store and schema a variant runs on: this tree's, or --baseline's. */
interface Sources {
  DeliveryQueue: typeof import("../../src/queue/queue.ts").DeliveryQueue;
  openDatabase: typeof import("../../src/store/sqlite/database.ts").openDatabase;
  createSqliteStore: typeof import("../../src/store/sqlite/store.ts").createSqliteStore;
}

async function sourcesIn(src: string): Promise<Sources> {
  const { DeliveryQueue } = (await import(
    join(src, "queue/queue.ts")
  )) as typeof import("../../src/queue/queue.ts");
  const { openDatabase } = (await import(
    join(src, "store/sqlite/database.ts")
  )) as typeof import("../../src/store/sqlite/database.ts");
  const { createSqliteStore } = (await import(
    join(src, "store/sqlite/store.ts")
  )) as typeof import("../../src/store/sqlite/store.ts");
  return { DeliveryQueue, openDatabase, createSqliteStore };
}

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    prefill: { type: "string", default: "20000" },
    dir: { type: "string" },
    only: { type: "string" },
    baseline: { type: "string" },
  },
});

const REQUESTS = Number(args.requests);
const PREFILL = Number(args.prefill);
const WAL_FRAME = 4096 + 24;

/** The rows the store target commits for one of inbound.ts's invitations (sizes as stored there). */
function request(i: number, nowMs: number): { message: NewMessage; deliveries: NewDelivery[] } {
  const id = `bench-${nowMs.toString(36)}-${i}`;
  const body = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//peer.test//bench//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:${id}@peer.test\r\n${"X".repeat(700)}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n`;
  const b64 = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("base64");
  const bodyHash = b64(32);
  const headers: [string, string][] = [
    ["cache-control", "no-cache, no-transform"],
    ["content-length", String(body.length)],
    ["content-type", "text/calendar; component=VEVENT; method=REQUEST"],
    [
      "dkim-signature",
      `v=1; a=rsa-sha256; d=peer.test; s=s1; c=ischedule-relaxed/simple; q=dns/txt:http/well-known; t=1796425352; x=1796428952; h=Originator:Recipient:Content-Type:iSchedule-Version:iSchedule-Message-ID:User-Agent; bh=${b64(32)}; b=${b64(256)}`,
    ],
    ["host", "127.0.0.1"],
    ["ischedule-message-id", id],
    ["ischedule-version", "1.0"],
    ["originator", "mailto:bernard@peer.test"],
    ["recipient", "mailto:ann@org.test"],
    ["user-agent", "isched-bench/1.0"],
  ];
  const xml = `<?xml version="1.0" encoding="utf-8" ?>\n<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule">\n  <response>\n    <recipient>mailto:ann@org.test</recipient>\n    <request-status>2.0;Success</request-status>\n    <response-description>Delivered to the isched inbox.</response-description>\n  </response>\n</schedule-response>\n`;
  return {
    message: {
      direction: "inbound",
      intake: "ischedule",
      peerAddress: "127.0.0.1",
      peerDomain: "peer.test",
      remoteMessageId: id,
      originator: "mailto:bernard@peer.test",
      method: "REQUEST",
      component: "VEVENT",
      uid: `${id}@peer.test`,
      summary: "Quarterly planning",
      organizer: "mailto:bernard@peer.test",
      contentType: "text/calendar; component=VEVENT; method=REQUEST",
      body,
      bodyHash,
      headers,
      // The endpoint's claims: the replay key (signing domain, message id, body hash) and the
      // recipient's copy of this iTIP revision (a SHA-256, src/intake/copies.ts).
      replay: { key: ["dkim", "peer.test", id, bodyHash].join("\n"), expiresAt: nowMs + 3_600_000 },
      itipKeys: {
        keys: [{ recipient: "mailto:ann@org.test", key: b64(32) }],
        expiresAt: nowMs + 3_600_000,
      },
      dkimResult: "pass",
      dkimDomain: "peer.test",
      dkimSelector: "s1",
      dkimReason: "verified with the key from private-exchange (2048 bits)",
      responseStatus: 200,
      responseBody: xml,
    },
    deliveries: [
      {
        recipient: "mailto:ann@org.test",
        domain: "org.test",
        route: "local",
        target: "store",
        state: "delivered",
        requestStatus: "2.0;Success",
        attempt: {
          startedAt: nowMs,
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

/** This thread's CPU time, µs (other processes' time on the core left out). */
const cpuUs = threadCpuClockUs();

interface Measured {
  cpuUs: number;
  wallUs: number;
  walBytes: number;
}

interface Variant {
  name: string;
  sync?: "normal" | "full" | "off";
  dropIndexes?: readonly string[];
  /** Requests per transaction. */
  group?: number;
  /** Checkpoint and reset the WAL before measuring, so frames overwrite the file from its start. */
  reuseWal?: boolean;
  /** Let the WAL grow by this many requests' commits first, as it does under steady load today. */
  grownBy?: number;
  /** Run the server's checkpointer (src/store/checkpointer.ts: a worker thread, PASSIVE every second). */
  checkpointer?: boolean;
  /** --baseline's sources instead of this tree's. */
  baseline?: boolean;
}

/**
 * Secondary indexes the accept path writes; none of them is read by accept() itself
 * (deliveries_done, the ninth of earlier runs, is gone from the schema).
 */
const SECONDARY = [
  "messages_uid",
  "messages_received_at",
  "messages_peer",
  "deliveries_recipient",
  "deliveries_domain",
  "deliveries_updated",
  "attempts_delivery",
  "attempts_started",
];

async function measure(
  o: { base: string; work: string; sources: Sources },
  v: Variant,
  salt: number,
): Promise<Measured> {
  const { base, work } = o;
  const { DeliveryQueue, openDatabase, createSqliteStore } = o.sources;
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${work}${suffix}`, { force: true });
  copyFileSync(base, work);
  const db = openDatabase(work, { synchronous: v.sync === "full" ? "full" : "normal" });
  try {
    if (v.sync === "off") db.run("PRAGMA synchronous = OFF");
    // The store prepares all of a table's statements at once, some of them INDEXED BY an index
    // dropped below: prepare them first (one accept), then drop; only the INSERTs run afterwards.
    const warm = request(90_000_000 + salt, 1_796_000_000_000);
    // Every accept below is awaited in chunks: the store commits the accepts made together as one
    // transaction once it holds maxWrites of them (or at the end of the event loop's turn).
    await new DeliveryQueue(createSqliteStore(db)).accept(warm.message, warm.deliveries);
    for (const index of v.dropIndexes ?? []) db.run(`DROP INDEX ${index}`);
    db.run("PRAGMA wal_autocheckpoint = 0");
    // Start from an empty WAL. With reuseWal the file keeps its size (frames overwrite cached
    // pages), without it the file is cut to nothing so every frame lands in a new block.
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    if (v.reuseWal) {
      // As many commits as the measurement makes, so the WAL file is as long as it will need; then
      // RESTART: every frame is in the database and the next writer starts at the WAL's beginning,
      // over the same file (kept whole: journal_size_limit would cut it to 64 MB).
      db.run("PRAGMA journal_size_limit = -1");
      const preheat = new DeliveryQueue(createSqliteStore(db), { nowMs: () => 1_796_000_000_000 });
      await acceptAll(
        preheat,
        Array.from({ length: REQUESTS }, (_, i) => request(i + 50_000_000 + salt, 1_796_000_000_000)),
        64,
      );
      db.run("PRAGMA wal_checkpoint(RESTART)");
    }
    if (v.grownBy) {
      const grow = new DeliveryQueue(createSqliteStore(db, { groupCommit: { maxWrites: 1 } }), {
        nowMs: () => 1_796_000_000_000,
      });
      await acceptAll(
        grow,
        Array.from({ length: v.grownBy }, (_, i) =>
          request(i + 60_000_000 + salt * 100_000, 1_796_000_000_000),
        ),
        64,
      );
    }
    // A checkpoint would reset the grown WAL: its growth is read from the file's size instead.
    const walSize = () => statSync(`${work}-wal`).size;
    const sizeBefore = v.grownBy ? walSize() : 0;
    const checkpointer = v.checkpointer
      ? startCheckpointer({
          db,
          path: work,
          onProblem: (problem) => {
            if (problem) console.error(`checkpointer: ${problem}`);
          },
        })
      : undefined;
    const group = v.group ?? 1;
    const queue = new DeliveryQueue(createSqliteStore(db, { groupCommit: { maxWrites: group } }), {
      nowMs: () => 1_796_000_000_000 + salt,
    });
    const requests = Array.from({ length: REQUESTS }, (_, i) =>
      request(i + salt * 1_000_000, 1_796_000_000_000),
    );
    const c0 = cpuUs();
    const w0 = performance.now();
    await acceptAll(queue, requests, group);
    const wallUs = (performance.now() - w0) * 1000;
    const cpu = cpuUs() - c0;
    await checkpointer?.stop();
    const walBytes = v.grownBy ? walSize() - sizeBefore : walFramesWritten(db) * WAL_FRAME;
    return { cpuUs: cpu / REQUESTS, wallUs: wallUs / REQUESTS, walBytes: walBytes / REQUESTS };
  } finally {
    db.close();
  }
}

/** Frames in the WAL since it was last reset (a PASSIVE checkpoint's report; run after the timing). */
function walFramesWritten(db: Database): number {
  const row = db.query<{ log: number }, []>("PRAGMA wal_checkpoint(PASSIVE)").get();
  return row?.log ?? 0;
}

/** Accepts `requests` `together` at a time (one transaction each with a store whose maxWrites is that). */
async function acceptAll(
  queue: DeliveryQueue,
  requests: readonly { message: NewMessage; deliveries: NewDelivery[] }[],
  together: number,
): Promise<void> {
  for (let i = 0; i < requests.length; i += together)
    await Promise.all(requests.slice(i, i + together).map((r) => queue.accept(r.message, r.deliveries)));
}

async function prefill(
  path: string,
  { DeliveryQueue, openDatabase, createSqliteStore }: Sources,
): Promise<void> {
  const db = openDatabase(path);
  const queue = new DeliveryQueue(createSqliteStore(db, { groupCommit: { maxWrites: 1000 } }), {
    nowMs: () => 1_795_000_000_000,
  });
  await acceptAll(
    queue,
    Array.from({ length: PREFILL }, (_, i) => request(i, 1_795_000_000_000)),
    1000,
  );
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

const dir = args.dir ?? mkdtempSync(join(tmpdir(), "isched-profile-store-"));
mkdirSync(dir, { recursive: true });
const here = await sourcesIn(join(import.meta.dir, "..", "..", "src"));
const baseline = args.baseline
  ? await sourcesIn(join(baselineCopy(join(dir, "baseline"), args.baseline), "src"))
  : undefined;
const base = join(dir, "base.db");
const baselineBase = join(dir, "baseline-base.db");
const work = join(dir, "work.db");
try {
  console.log(`pre-filling ${PREFILL} messages...`);
  await prefill(base, here);
  if (baseline) await prefill(baselineBase, baseline);
  const variants: Variant[] = [
    { name: "this tree, one request per transaction: synchronous=NORMAL, every index" },
    ...(baseline ? [{ name: `${args.baseline}: synchronous=NORMAL, all its indexes`, baseline: true }] : []),
    { name: "synchronous=FULL", sync: "full" },
    { name: "synchronous=OFF", sync: "off" },
    ...SECONDARY.map((i) => ({ name: `without ${i}`, dropIndexes: [i] })),
    { name: `without all ${SECONDARY.length} secondary indexes`, dropIndexes: SECONDARY },
    { name: "today, WAL written from its start (reset after a checkpoint)", reuseWal: true },
    { name: "today, the WAL already 2 GB long (about 26,000 commits)", grownBy: 26_000 },
    { name: "today, with the server's checkpointer running", checkpointer: true },
    ...[2, 4, 8, 16, 32, 64].map((g) => ({ name: `group commit, ${g} requests per transaction`, group: g })),
    // What each index costs once commits are grouped: an index whose new entries all land on one
    // leaf (time-ordered keys) costs a frame per batch, one with scattered keys a leaf per request.
    ...SECONDARY.map((i) => ({ name: `group commit of 16, without ${i}`, group: 16, dropIndexes: [i] })),
    {
      name: `group commit of 16, without the ${SECONDARY.length} secondary indexes`,
      group: 16,
      dropIndexes: SECONDARY,
    },
    {
      name: `group commit of 16, without the ${SECONDARY.length} secondary indexes, WAL reset`,
      group: 16,
      dropIndexes: SECONDARY,
      reuseWal: true,
    },
  ];
  if (args.only) {
    const keep = variants.filter((v, i) => i === 0 || v.baseline || v.name.includes(args.only!));
    variants.splice(0, variants.length, ...keep);
  }
  // Each variant twice, interleaved, so a change in the machine's load shows as a spread.
  const results = new Map<string, Measured[]>();
  for (let round = 0; round < 2; round++) {
    for (const [k, v] of variants.entries()) {
      const m = await measure(
        v.baseline ? { base: baselineBase, work, sources: baseline! } : { base, work, sources: here },
        v,
        round * 100 + k + 1,
      );
      results.set(v.name, [...(results.get(v.name) ?? []), m]);
    }
  }
  const today = results.get(variants[0]!.name)!;
  const mean = (ms: Measured[], f: (m: Measured) => number) => ms.reduce((a, m) => a + f(m), 0) / ms.length;
  const todayCpu = mean(today, (m) => m.cpuUs);
  console.log(
    `\nMachine: ${navigator.hardwareConcurrency} cores; Bun ${Bun.version}; SQLite ${sqliteVersion()}`,
  );
  console.log(`Command: npx bun scripts/bench/profile-store.ts ${process.argv.slice(2).join(" ")}`);
  console.log(`${REQUESTS} requests per variant and round, on ${PREFILL} messages already stored; ${dir}\n`);
  console.log(
    "| variant | CPU µs/request (2 rounds) | wall µs/request | WAL KB/request | WAL frames/request | CPU vs today |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const v of variants) {
    const ms = results.get(v.name)!;
    const cpu = mean(ms, (m) => m.cpuUs);
    console.log(
      `| ${v.name} | ${ms.map((m) => m.cpuUs.toFixed(0)).join(", ")} | ${ms.map((m) => m.wallUs.toFixed(0)).join(", ")} | ${(mean(ms, (m) => m.walBytes) / 1024).toFixed(1)} | ${(mean(ms, (m) => m.walBytes) / WAL_FRAME).toFixed(1)} | ${(((cpu - todayCpu) / todayCpu) * 100).toFixed(0)}% |`,
    );
  }
} finally {
  if (!args.dir) rmSync(dir, { recursive: true, force: true });
}

function sqliteVersion(): string {
  const db = here.openDatabase(":memory:");
  try {
    return db.query<{ v: string }, []>("SELECT sqlite_version() AS v").get()!.v;
  } finally {
    db.close();
  }
}
