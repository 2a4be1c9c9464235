/**
 * Outbound benchmark (issue 4), three parts:
 *
 * 1. Drain rate: N messages (one recipient each at b.test) pre-filled in isched A's queue, A started
 *    (`isched serve`, pinned to CPU 0) and timed from its first attempt to its last completion while
 *    it sends them, DKIM-signed (rsa-sha256, 2048 bits), over HTTPS to isched B (`isched serve
 *    --deliver store`, pinned to CPU 1), found through SRV in dnsmasq. Beside it, the single-core
 *    RSA-2048 signing rate (crypto.sign("sha256") in a loop on CPU 0), the floor cost of each request.
 *    Target: A's drain rate at least 60% of the signing rate (issue 16; it was 70%). On a shared
 *    machine A may not get its whole core, so the table also gives A's rate per CPU second of A
 *    (messages/s divided by A's share of a core), the figure to compare when others load the machine. Runs with the dispatcher's default
 *    per-target limit (8, --max-per-peer) and with other limits (--limits), set with that flag
 *    (see _two-ischeds.ts); and, to tell A's cost from B's, the same drain into a
 *    bare receiver that verifies and stores nothing (the "sink").
 * 2. Fan-out: one invitation to 1,000 recipients in 100 domains (10 each), submitted through A's
 *    API; B hosts the 100 domains, each with its own SRV record in dnsmasq. Timed from the submission
 *    until every delivery has a final status.
 * 3. Memory: RSS (VmRSS) of `isched serve` on a database holding 1,000,000 queued deliveries due in
 *    30 days, right after start-up and over a minute of idling; then scripts/bench/queue-rss.ts (the
 *    queue library alone). Target: under 150 MB.
 *
 *   npx bun scripts/bench/outbound.ts [--messages 3000] [--limits 4,16] [--no-sink] [--no-fanout]
 *                                     [--no-rss] [--idle 60] [--profile DIR] [--write BENCHMARKS.md]
 *                                     [--trust system|ca-file]
 *
 * --trust system (default): the drain's A trusts B's certificate the way production trusts a peer's
 * public certificate, without the network: the test CA sits in Bun's default store
 * (NODE_EXTRA_CA_CERTS) and A runs without --ca-file, so no CA list goes with each request.
 * --trust ca-file: A runs with --ca-file (Bun's roots plus the test CA with every request).
 *
 * --profile DIR: run A (and, in the fan-out, B) with --cpu-prof, one folder per run in DIR.
 *
 * The orchestrator (this process, which also runs dnsmasq) is pinned to CPU 1, with B; it only polls
 * A's database every 100 ms.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  captureCapabilities,
  cpuMsOf,
  type DrainResult,
  invitation,
  machineLine,
  measureDrain,
  pinSelf,
  prefillOutbound,
  prepareTwoOrgs,
  replaceBetweenMarkers,
  rssKbOf,
  signingRate,
  spawnIsched,
  type TwoOrgs,
  waitFor,
  waitForPort,
} from "./_two-ischeds.ts";

const { values: args } = parseArgs({
  options: {
    messages: { type: "string", default: "3000" },
    limits: { type: "string", default: "8,16" },
    "no-sink": { type: "boolean", default: false },
    "no-fanout": { type: "boolean", default: false },
    "no-rss": { type: "boolean", default: false },
    idle: { type: "string", default: "60" },
    "sign-seconds": { type: "string", default: "5" },
    profile: { type: "string" },
    trust: { type: "string", default: "system" },
    write: { type: "string" },
  },
});

const DEFAULT_PER_TARGET = 8; // isched serve --max-per-peer default

interface DrainRow {
  receiver: string;
  limit: number;
  result: DrainResult;
}

interface FanoutResult {
  recipients: number;
  domains: number;
  answeredSeconds: number;
  finalSeconds: number;
  states: Record<string, number>;
  atB: number;
  /** CPU time (s) A and B used from the submission until all were final. */
  cpuA: number;
  cpuB: number;
}

interface RssResult {
  deliveries: number;
  fillSeconds: number;
  startupSeconds: number;
  afterStartupMb: number;
  afterIdleMb: number;
  peakMb: number;
  idleSeconds: number;
  queueRss: string;
}

/** Part 2: 1,000 recipients in 100 domains, all served by B. */
async function fanout(dir: string): Promise<FanoutResult> {
  const { Database } = await import("bun:sqlite");
  const { freePort } = await import("../../test/support/ports.ts");
  const domains = Array.from({ length: 100 }, (_, i) => `d${String(i).padStart(2, "0")}.test`);
  const recipients = domains.flatMap((d) => Array.from({ length: 10 }, (_, j) => `mailto:user${j}@${d}`));
  const orgs = await prepareTwoOrgs({ dir: join(dir, "orgs"), bDomains: domains });
  const consolePort = await freePort();
  const tokenFile = join(dir, "api-token");
  writeFileSync(tokenFile, "bench-token\n");
  const profile = (who: string) => (args.profile ? join(args.profile, `fanout-${who}`) : undefined);
  const b = spawnIsched({
    cpu: 1,
    flags: orgs.flagsB({ dataDir: join(dir, "b-data") }),
    profileDir: profile("b"),
  });
  const dataA = join(dir, "a-data");
  const a = spawnIsched({
    cpu: 0,
    flags: orgs.flagsA({ dataDir: dataA, consolePort, apiTokenFile: tokenFile }),
    profileDir: profile("a"),
  });
  try {
    await waitForPort(orgs.portB);
    await waitForPort(consolePort);
    const calendar = invitation({ uid: "fanout-1@a.test", attendees: recipients });
    const cpuStart = { a: cpuMsOf(a.pid), b: cpuMsOf(b.pid) };
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${consolePort}/api/v1/messages`, {
      method: "POST",
      headers: { Authorization: "Bearer bench-token", "Content-Type": "application/json" },
      body: JSON.stringify({ calendar, originator: "mailto:alice@a.test", recipients }),
    });
    const answer = await res.text();
    const answeredSeconds = (performance.now() - started) / 1000;
    if (res.status >= 300) throw new Error(`submission refused: ${res.status} ${answer}`);
    const db = new Database(join(dataA, "isched.db"), { readonly: true });
    const done = db.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM deliveries WHERE state NOT IN ('queued', 'in-flight')",
    );
    await waitFor("1,000 final deliveries", () => done.get()!.n >= recipients.length, 10 * 60_000, 20);
    const finalSeconds = (performance.now() - started) / 1000;
    const cpuA = (cpuMsOf(a.pid) - cpuStart.a) / 1000;
    const cpuB = (cpuMsOf(b.pid) - cpuStart.b) / 1000;
    const states: Record<string, number> = {};
    for (const r of db
      .query<{ state: string; n: number }, []>("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
      .all())
      states[r.state] = r.n;
    db.close();
    await b.stop();
    const dbB = new Database(join(dir, "b-data", "isched.db"), { readonly: true });
    const atB = dbB.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries").get()!.n;
    dbB.close();
    return {
      recipients: recipients.length,
      domains: domains.length,
      answeredSeconds,
      finalSeconds,
      states,
      atB,
      cpuA,
      cpuB,
    };
  } finally {
    await a.stop();
    await b.stop();
    await orgs.stop();
  }
}

/** Part 3: RSS of `isched serve` over 1,000,000 queued deliveries, then queue-rss.ts. */
async function rss(dir: string, idleSeconds: number): Promise<RssResult> {
  const { freePort } = await import("../../test/support/ports.ts");
  const dataA = join(dir, "a-data");
  const messages = 10_000;
  const perMessage = 100;
  const body = invitation({
    uid: "rss@a.test",
    attendees: Array.from({ length: perMessage }, (_, r) => `mailto:user${r}@peer.example`),
  });
  const fillStart = performance.now();
  await prefillOutbound({
    dataDir: dataA,
    messages,
    recipients: (m) => Array.from({ length: perMessage }, (_, r) => `mailto:user${r}@peer${m % 50}.example`),
    nextAttemptAt: Date.now() + 30 * 86_400_000,
    body: () => body,
  });
  const fillSeconds = (performance.now() - fillStart) / 1000;
  const consolePort = await freePort();
  const started = performance.now();
  const a = spawnIsched({
    cpu: 0,
    flags: [
      "--domain",
      "a.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      `127.0.0.1:${consolePort}`,
      "--data",
      dataA,
    ],
  });
  let peak = 0;
  try {
    await waitForPort(consolePort, 120_000);
    const startupSeconds = (performance.now() - started) / 1000;
    const afterStartup = rssKbOf(a.pid);
    peak = afterStartup;
    const end = Date.now() + idleSeconds * 1000;
    while (Date.now() < end) {
      await Bun.sleep(1000);
      peak = Math.max(peak, rssKbOf(a.pid));
    }
    const afterIdle = rssKbOf(a.pid);
    peak = Math.max(peak, afterIdle);
    const queueRss = await runQueueRss();
    return {
      deliveries: messages * perMessage,
      fillSeconds,
      startupSeconds,
      afterStartupMb: afterStartup / 1024,
      afterIdleMb: afterIdle / 1024,
      peakMb: peak / 1024,
      idleSeconds,
      queueRss,
    };
  } finally {
    await a.stop();
  }
}

/** scripts/bench/queue-rss.ts on CPU 0; its last line (RSS now, peak). */
function runQueueRss(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", "0", process.execPath, join(import.meta.dir, "queue-rss.ts")], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`queue-rss.ts exited with ${code}`));
      else resolve(out.trim().split("\n").at(-1)!);
    });
  });
}

async function drains(orgs: TwoOrgs, dir: string, messages: number): Promise<DrainRow[]> {
  const limits = args.limits!.split(",").map(Number);
  const rows: DrainRow[] = [];
  let run = 0;
  const drain = async (receiver: "isched" | "sink", limit: number, capabilitiesFile?: string) => {
    const result = await measureDrain({
      orgs,
      dir: join(dir, `drain-${run++}`),
      messages,
      receiver,
      capabilitiesFile,
      // The default is left alone (the command line as shipped); others are set with --max-per-peer.
      maxPerTarget: limit === DEFAULT_PER_TARGET ? undefined : limit,
      profileDir: args.profile ? join(args.profile, `${receiver}-${limit}`) : undefined,
    });
    console.log(`  ${receiver}, per-target limit ${limit}: ${JSON.stringify(result)}`);
    rows.push({ receiver, limit, result });
  };
  for (const limit of limits) await drain("isched", limit);
  if (!args["no-sink"]) {
    const capabilitiesFile = join(dir, "capabilities.json");
    await captureCapabilities(orgs, capabilitiesFile);
    for (const limit of limits) await drain("sink", limit, capabilitiesFile);
  }
  return rows;
}

function report(o: {
  signRate: number;
  rows: DrainRow[];
  messages: number;
  fan?: FanoutResult;
  mem?: RssResult;
}): string {
  const pct = (x: number) => `${Math.round(x)}%`;
  const lines = [
    machineLine(),
    `Command: \`npx bun scripts/bench/outbound.ts ${process.argv.slice(2).join(" ")}\``,
    `Trust (drain): ${args.trust === "system" ? "as production trusts a public certificate: the test CA in Bun's default store (NODE_EXTRA_CA_CERTS), A without --ca-file" : "--ca-file with the test CA"}.`,
    "",
    `Single-core RSA-2048 signing rate (crypto.sign, CPU 0, per CPU second): **${Math.round(o.signRate)}/s** (${Math.round(1e6 / o.signRate)} µs per signature).`,
    "",
    `| A sends ${o.messages} messages to | per-target limit | messages/s | % of signing rate | A's CPU | A's CPU µs/message | per CPU second of A: % of signing rate | receiver's CPU | delivered |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...o.rows.map(
      (r) =>
        `| ${r.receiver === "isched" ? "isched B (store)" : "bare sink (diagnosis)"} | ${r.limit}${r.limit === DEFAULT_PER_TARGET ? " (default)" : ""} | ${Math.round(r.result.perSecond)} | ${pct((r.result.perSecond / o.signRate) * 100)} | ${pct(r.result.cpuA)} | ${Math.round((r.result.cpuA * 1e4) / r.result.perSecond)} | ${pct((r.result.perSecond / (r.result.cpuA / 100) / o.signRate) * 100)} | ${pct(r.result.cpuB)} | ${r.result.delivered}/${r.result.messages}${r.result.atB !== undefined ? ` (B holds ${r.result.atB})` : ""} |`,
    ),
  ];
  const best = Math.max(...o.rows.filter((r) => r.receiver === "isched").map((r) => r.result.perSecond));
  const byDefault = o.rows.find((r) => r.receiver === "isched" && r.limit === DEFAULT_PER_TARGET);
  lines.push("");
  if (byDefault) {
    const share = (byDefault.result.perSecond / o.signRate) * 100;
    const perCpu = share / (byDefault.result.cpuA / 100);
    lines.push(
      `- A → isched B with the default limit: ${pct(share)} of the signing rate, ${pct(perCpu)} per CPU second of A (target ≥ 60%: ${share >= 60 ? "met" : "missed"}).`,
    );
  }
  if (Number.isFinite(best)) {
    const share = (best / o.signRate) * 100;
    lines.push(
      `- Best A → isched B rate: ${pct(share)} of the signing rate (${share >= 60 ? "met" : "missed"}).`,
    );
  }
  if (o.fan) {
    const f = o.fan;
    lines.push(
      "",
      "| fan-out | recipients | domains | API answered after | all final after | final states | deliveries at B | CPU used by A / B |",
      "|---|---:|---:|---:|---:|---|---:|---:|",
      `| one invitation through A's API | ${f.recipients} | ${f.domains} | ${f.answeredSeconds.toFixed(2)} s | ${f.finalSeconds.toFixed(2)} s | ${Object.entries(
        f.states,
      )
        .map(([s, n]) => `${s} ${n}`)
        .join(", ")} | ${f.atB} | ${f.cpuA.toFixed(1)} s / ${f.cpuB.toFixed(1)} s |`,
    );
  }
  if (o.mem) {
    const m = o.mem;
    const mb = (x: number) => `${x.toFixed(1)} MB`;
    lines.push(
      "",
      "| memory | queued deliveries | VmRSS after start-up | after " +
        `${m.idleSeconds} s idle | peak (1 s samples) | target < 150 MB |`,
      "|---|---:|---:|---:|---:|---|",
      `| \`isched serve\` (start-up ${m.startupSeconds.toFixed(1)} s) | ${m.deliveries.toLocaleString("en")} | ${mb(m.afterStartupMb)} | ${mb(m.afterIdleMb)} | ${mb(m.peakMb)} | ${m.peakMb < 150 ? "met" : "missed"} |`,
      "",
      `queue-rss.ts (the queue library alone, 1,000,000 deliveries, 10,000 leased and completed): ${m.queueRss}`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  pinSelf(1);
  const messages = Number(args.messages);
  const dir = mkdtempSync(join(tmpdir(), "isched-bench-outbound-"));
  try {
    console.log("signing rate on CPU 0...");
    const signRate = signingRate({ cpu: 0, seconds: Number(args["sign-seconds"]) });
    console.log(`  ${Math.round(signRate)} signatures/s`);
    console.log(`drain of ${messages} messages:`);
    if (args.trust !== "ca-file" && args.trust !== "system")
      throw new Error(`--trust must be ca-file or system, not ${args.trust}`);
    const orgs = await prepareTwoOrgs({ dir: join(dir, "orgs"), trust: args.trust });
    let rows: DrainRow[];
    try {
      rows = await drains(orgs, dir, messages);
    } finally {
      await orgs.stop();
    }
    let fan: FanoutResult | undefined;
    if (!args["no-fanout"]) {
      console.log("fan-out: 1,000 recipients in 100 domains...");
      fan = await fanout(join(dir, "fanout"));
      console.log(`  ${JSON.stringify(fan)}`);
    }
    let mem: RssResult | undefined;
    if (!args["no-rss"]) {
      console.log("RSS with 1,000,000 queued deliveries...");
      mem = await rss(join(dir, "rss"), Number(args.idle));
      console.log(`  ${JSON.stringify(mem)}`);
    }
    const text = report({ signRate, rows, messages, fan, mem });
    console.log(`\n${text}`);
    if (args.write) replaceBetweenMarkers(args.write, "outbound-figures", text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
