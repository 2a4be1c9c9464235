/**
 * Several nodes on one PostgreSQL (issue 15): inbound and outbound throughput of the compiled
 * `dist/isched` as one node on SQLite, one node on PostgreSQL, and two and three nodes on one
 * PostgreSQL, side by side in one run, with where the time goes: the CPU time per request of each
 * isched process and of the PostgreSQL server's processes (postmaster, backends, WAL writer,
 * checkpointer), read from /proc, so that the figures mean something on a small machine shared
 * with other work. Target: two PostgreSQL nodes at least 1.6x one PostgreSQL node on inbound, when
 * each node has a core of its own.
 *
 *   npx bun scripts/bench/cluster.ts [--nodes 1,2,3] [--seconds 10] [--warmup 2] [--concurrency 16]
 *                                    [--messages 3000] [--sign-rate 3200] [--scale-cores] [--no-sqlite]
 *                                    [--no-inbound] [--no-outbound] [--statements]
 *                                    [--pg SETTING=VALUE ...] [--write BENCHMARKS.md [--marker NAME]]
 *
 * --write: the report replaces the text between the two `<!-- NAME -->` lines of the file
 * (--marker, default cluster-figures).
 *
 * Inbound: the generators of inbound.ts (its `--role sign` and `--role load`): 1.2 KB invitations to
 * org.test, each signed (rsa-sha256, 2048 bits) with its own iSchedule-Message-ID and UID, pre-signed
 * before the runs, written on raw keep-alive sockets; a closed loop of --concurrency connections in
 * all, spread evenly over the nodes (one generator process per node, each with its own requests).
 * Every configuration gets a fresh database (SQLite data folder, or a new PostgreSQL database on the
 * one server), so the same signed requests serve every configuration; no request is replayed within
 * one. A request counts when it is answered `2.0;Success`, after its message, delivery and attempt
 * are committed (store target).
 *
 * Outbound: --messages queued messages (one recipient each at b.test) drained to a remote receiving
 * isched B (SQLite, `store` target, HTTPS, found through SRV in dnsmasq; _two-ischeds.ts). The queue is
 * filled before the nodes start, due in an hour (SQLite: prefillOutbound; PostgreSQL: the same folder
 * copied with `isched migrate-data`), and made due at once when every node is up (an UPDATE, then a
 * NOTIFY on the nodes' queue channel), so that no node starts ahead of the others. The rate is the
 * messages over the time from the first attempt to the last completion (the attempts table); each
 * node keeps the default limits (8 per peer, 32 at once), which hold per node.
 *
 * CPU: each process's user + system time from /proc/PID/stat over the measured window; PostgreSQL's
 * is the postmaster's (its own and its children that ended) plus every live child's, so a backend
 * that ends within the window is still counted. "machine" is the busy time of the whole machine
 * (/proc/stat), "other" what is left when the processes of the benchmark are taken out: other
 * sessions' work that competed for the cores.
 *
 * Cores: without --scale-cores the kernel places every process on all the machine's cores. With
 * --scale-cores a configuration of n nodes runs on min(n, nproc) cores, CPUs 0..k-1, every one of its
 * processes pinned there (taskset: the nodes, PostgreSQL's postmaster and so each backend it forks,
 * the generators, B): one node gets one core to share with its PostgreSQL and its load, two nodes
 * get two. So "two nodes given a core each" against "one node given a core" is measured, with
 * PostgreSQL's cost inside each, on a 2-core machine. The "per node core" column is the rate one
 * node would reach with a whole core to itself: 1,000,000 divided by the nodes' µs of CPU per
 * request; "PostgreSQL cores", how much of a core PostgreSQL used, and would use at that rate.
 *
 * --statements: PostgreSQL loads pg_stat_statements, and the report lists what it executed per
 * request in each PostgreSQL configuration (it costs a little of PostgreSQL's CPU: leave it out of
 * the runs whose rates count).
 *
 * PostgreSQL 15 (test/support/postgres.ts) keeps its defaults (fsync on, synchronous_commit on,
 * full_page_writes on); --pg NAME=VALUE adds a server setting (repeatable) and the report names it.
 */

import { Database } from "bun:sqlite";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SQL } from "bun";
import { machineBusyMs, processCpuMs } from "./_perf.ts";
import {
  machineLine,
  prefillOutbound,
  prepareTwoOrgs,
  replaceBetweenMarkers,
  type TwoOrgs,
  waitForPort,
} from "./_two-ischeds.ts";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "1,2,3" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "16" },
    messages: { type: "string", default: "3000" },
    "sign-rate": { type: "string", default: "3200" },
    "scale-cores": { type: "boolean", default: false },
    "no-sqlite": { type: "boolean", default: false },
    "no-inbound": { type: "boolean", default: false },
    "no-outbound": { type: "boolean", default: false },
    pg: { type: "string", multiple: true, default: [] },
    statements: { type: "boolean", default: false },
    write: { type: "string" },
    marker: { type: "string", default: "cluster-figures" },
    keep: { type: "boolean", default: false },
  },
});

const BUN = process.execPath;
const INBOUND = join(import.meta.dir, "inbound.ts");
const CORES = cpus().length;
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);

interface Configuration {
  label: string;
  backend: "sqlite" | "postgres";
  nodes: number;
}

function configurations(): Configuration[] {
  const out: Configuration[] = [];
  if (!args["no-sqlite"]) out.push({ label: "1 node, SQLite", backend: "sqlite", nodes: 1 });
  for (const n of args.nodes!.split(",").map(Number))
    out.push({ label: `${n} node${n > 1 ? "s" : ""}, one PostgreSQL`, backend: "postgres", nodes: n });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Processes and their CPU time

interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  stop(): Promise<void>;
}

/** Starts a process (pinned to the CPU list `cpus` when given), stdout ignored, stderr into the file `log`. */
function start(o: { argv: string[]; cpus?: string; log: string }): Proc {
  const fd = openSync(o.log, "a");
  const argv = o.cpus === undefined ? o.argv : ["taskset", "-c", o.cpus, ...o.argv];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    pid: child.pid!,
    log: o.log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** The fields of /proc/PID/stat after the command name (state is [0], ppid [1], utime [11]). */
function statFields(pid: string | number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function childrenOf(root: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    if (f && Number(f[1]) === root) out.push(Number(entry));
  }
  return out;
}

/** What a PostgreSQL server process is, from the title it sets ("postgres: walwriter", "postgres: USER DB HOST(PORT) idle"). */
function postgresKind(pid: number): string {
  let title = "";
  try {
    title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "ended";
  }
  const m = /^postgres: (.*)$/.exec(title);
  if (!m) return "postmaster";
  const what = m[1]!;
  if (/\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]/.test(what)) return "client backends";
  return what.replace(/ .*$/, "").replace(/^logical$/, "logical replication launcher");
}

/**
 * CPU ms of PostgreSQL's processes (every server process is a child of the postmaster), by kind: the
 * postmaster's own time and that of its children that ended (cutime, cstime: "ended"), plus each
 * live child's, under its kind (client backends, walwriter, checkpointer, ...).
 */
function postgresCpuMs(root: number): Map<string, number> {
  const out = new Map<string, number>();
  const own = statFields(root);
  if (!own) return out;
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS;
  out.set("postmaster", ms(Number(own[11]) + Number(own[12])));
  out.set("ended", ms(Number(own[13]) + Number(own[14])));
  for (const pid of childrenOf(root)) {
    const f = statFields(pid);
    if (!f) continue;
    const kind = postgresKind(pid);
    out.set(kind, (out.get(kind) ?? 0) + ms(Number(f[11]) + Number(f[12])));
  }
  return out;
}

interface CpuMeter {
  /** CPU ms since the meter started: each node, PostgreSQL, the helpers (generators, B), the machine. */
  read(): {
    nodes: number[];
    postgres: number;
    postgresBy: Map<string, number>;
    /** Of the nodes' and PostgreSQL's, the part in the kernel (system time). */
    nodesKernel: number;
    postgresKernel: number;
    helpers: number;
    machine: number;
    wallMs: number;
  };
}

/** System (kernel) CPU ms of a process so far, all threads; of PostgreSQL's tree with `tree`. */
function kernelMs(pid: number, tree = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  let ticks = Number(f[12]) + (tree ? Number(f[14]) : 0);
  if (tree) for (const child of childrenOf(pid)) ticks += Number(statFields(child)?.[12] ?? 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

function cpuMeter(o: { nodes: readonly Proc[]; postmaster?: number; helpers: readonly number[] }): CpuMeter {
  const sample = () => ({
    nodesKernel: o.nodes.reduce((sum, n) => sum + kernelMs(n.pid), 0),
    postgresKernel: o.postmaster ? kernelMs(o.postmaster, true) : 0,
    nodes: o.nodes.map((n) => processCpuMs(n.pid)),
    postgresBy: o.postmaster ? postgresCpuMs(o.postmaster) : new Map<string, number>(),
    helpers: o.helpers.reduce((sum, pid) => sum + processCpuMs(pid), 0),
    machine: machineBusyMs(),
    at: performance.now(),
  });
  const first = sample();
  return {
    read() {
      const now = sample();
      const postgresBy = new Map<string, number>();
      for (const [kind, ms] of now.postgresBy) postgresBy.set(kind, ms - (first.postgresBy.get(kind) ?? 0));
      // A backend that ended moved its time from its kind to "ended": the total stays right.
      for (const [kind, ms] of first.postgresBy) if (!now.postgresBy.has(kind)) postgresBy.set(kind, -ms);
      return {
        nodes: now.nodes.map((ms, i) => ms - first.nodes[i]!),
        postgres: [...postgresBy.values()].reduce((a, b) => a + b, 0),
        postgresBy,
        nodesKernel: now.nodesKernel - first.nodesKernel,
        postgresKernel: now.postgresKernel - first.postgresKernel,
        helpers: now.helpers - first.helpers,
        machine: now.machine - first.machine,
        wallMs: now.at - first.at,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The run's fixtures

interface Fixtures {
  dir: string;
  binary: string;
  pg: import("../../test/support/postgres.ts").RunningPostgres;
  postmaster(): number;
  orgs?: TwoOrgs;
  /** Pre-signed request files, one per node slot. */
  requests: string[];
}

/** Each run's number: its database's and folders' names. */
let runs = 0;
const databaseOf = (url: string): string => new URL(url).pathname.slice(1);

function freshDatabase(f: Fixtures, what: string, run: number): Promise<string> {
  return f.pg.createDatabase(`bench_${what}_${run}`);
}

/** With --scale-cores, the CPU list a configuration's processes run on ("0", "0-1"). */
function coresOf(config: Configuration): string | undefined {
  if (!args["scale-cores"]) return undefined;
  const k = Math.min(config.nodes, CORES);
  return k === 1 ? "0" : `0-${k - 1}`;
}

/** Pins the PostgreSQL server (the postmaster, whose forks inherit it, and its live children) to `cpus`. */
function pinPostgres(postmaster: number, cpus: string | undefined): void {
  const all = cpus ?? `0-${CORES - 1}`;
  for (const pid of [postmaster, ...childrenOf(postmaster)])
    spawnSync("taskset", ["-a", "-p", "-c", all, String(pid)], { stdio: "ignore" });
}

/** `--database URL --node-id nI` on PostgreSQL, nothing on SQLite. */
function databaseFlags(url: string | undefined, i: number): string[] {
  return url ? ["--database", url, "--node-id", `n${i + 1}`] : [];
}

// ---------------------------------------------------------------------------------------------
// What PostgreSQL executes (--statements)

interface StatementRow {
  calls: number;
  totalMs: number;
  query: string;
}

/**
 * With --statements: pg_stat_statements (loaded at the server's start) emptied now; `read` gives the
 * statements run on `database` since, by total execution time (inside the server: parse, plan,
 * execution, and for COMMIT the wait for the WAL flush).
 */
async function statementsSince(f: Fixtures, database: string): Promise<() => Promise<StatementRow[]>> {
  await f.pg.admin("SELECT pg_stat_statements_reset()");
  return async () => {
    const out = await f.pg.admin(
      `SELECT calls, round(total_exec_time::numeric, 3), left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '${database}')
        ORDER BY total_exec_time DESC`,
    );
    return out
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const [calls, totalMs, ...query] = l.split("|");
        return { calls: Number(calls), totalMs: Number(totalMs), query: query.join("|") };
      });
  };
}

function statementLines(label: string, rows: readonly StatementRow[], served: number): string[] {
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  const ms = rows.reduce((s, r) => s + r.totalMs, 0);
  return [
    `${label}: ${(calls / served).toFixed(1)} statements per request, ${us(ms, served)} µs of execution time per request in all (pg_stat_statements).`,
    "",
    "| statement | calls per request | µs per call | µs per request |",
    "|---|---:|---:|---:|",
    ...rows
      .slice(0, 12)
      .map(
        (r) =>
          `| \`${r.query.replaceAll("|", "\\|")}\` | ${(r.calls / served).toFixed(2)} | ${us(r.totalMs, r.calls)} | ${us(r.totalMs, served)} |`,
      ),
    "",
  ];
}

// ---------------------------------------------------------------------------------------------
// Inbound

interface LoadResult {
  completed: number;
  ok: number;
  rps: number;
  p50: number;
  p99: number;
  exhausted: boolean;
  statuses: Record<string, number>;
  /** The generator's own CPU time, warm-up included. */
  cpuMs: number;
}

interface InboundRow {
  config: Configuration;
  rps: number;
  completed: number;
  ok: number;
  p50: number;
  p99: number;
  cpu: ReturnType<CpuMeter["read"]>;
  statements?: StatementRow[];
}

/** The generator of inbound.ts (--role load) on `port`; resolves its result. */
function runLoad(o: { port: number; requests: string; concurrency: number; cpus?: string }): {
  pid: number;
  done: Promise<LoadResult>;
} {
  const pin = o.cpus === undefined ? [] : ["taskset", "-c", o.cpus];
  const argv = [...pin, BUN, INBOUND, "--role", "load", "--port", String(o.port), "--requests", o.requests];
  argv.push("--concurrency", String(o.concurrency), "--seconds", String(SECONDS), "--warmup", String(WARMUP));
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<LoadResult>((resolve, reject) =>
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      const result = JSON.parse(out.trim().split("\n").at(-1)!) as LoadResult;
      if (result.exhausted) reject(new Error("load: ran out of pre-signed requests (raise --sign-rate)"));
      else resolve(result);
    }),
  );
  return { pid: child.pid!, done };
}

async function inbound(f: Fixtures, config: Configuration): Promise<InboundRow> {
  const run = ++runs;
  const url = config.backend === "postgres" ? await freshDatabase(f, `in${config.nodes}`, run) : undefined;
  const { freePort } = await import("../../test/support/ports.ts");
  const nodes: Proc[] = [];
  const ports: number[] = [];
  if (url) pinPostgres(f.postmaster(), coresOf(config));
  try {
    for (let i = 0; i < config.nodes; i++) {
      const port = await freePort();
      const data = join(f.dir, `in-${run}-${config.backend}-${i}`);
      const argv = [f.binary, "serve", "--domain", "org.test", "--listen", `127.0.0.1:${port}`];
      argv.push("--console", "127.0.0.1:0", "--data", data, "--deliver", "store");
      argv.push("--peer-key", `peer.test:s1=${join(f.dir, "peer.pub")}`);
      argv.push("--dkim-key", join(f.dir, "org.key"), "--dkim-selector", "s1", ...databaseFlags(url, i));
      // One node after the other: the first migrates the schema; the log (a line a request) goes to a
      // file, as in production.
      nodes.push(start({ argv, cpus: coresOf(config), log: `${data}.log` }));
      ports.push(port);
      await waitForPort(port);
    }
    const loads = ports.map((port, i) =>
      runLoad({
        port,
        requests: f.requests[i]!,
        concurrency: share(Number(args.concurrency), config.nodes, i),
        cpus: coresOf(config),
      }),
    );
    // The generators count from the end of their warm-up: the meter starts then too.
    await Bun.sleep(WARMUP * 1000);
    const statements = url && args.statements ? await statementsSince(f, databaseOf(url)) : undefined;
    const meter = cpuMeter({ nodes, postmaster: url ? f.postmaster() : undefined, helpers: [] });
    await Bun.sleep(SECONDS * 1000);
    const cpu = meter.read();
    const executed = await statements?.();
    const results = await Promise.all(loads.map((l) => l.done));
    const completed = results.reduce((s, r) => s + r.completed, 0);
    // A generator may end before the meter is read: its CPU is its own report, the measured part of
    // it (the load is the same in the warm-up).
    const generators = results.reduce((s, r) => s + r.cpuMs, 0) * (SECONDS / (SECONDS + WARMUP));
    cpu.helpers = generators;
    // The generators' latencies are per node: the figure is the worst node's.
    return {
      config,
      rps: results.reduce((s, r) => s + r.rps, 0),
      completed,
      ok: results.reduce((s, r) => s + r.ok, 0),
      p50: Math.max(...results.map((r) => r.p50)),
      p99: Math.max(...results.map((r) => r.p99)),
      cpu,
      statements: executed,
    };
  } finally {
    for (const n of nodes) await n.stop();
  }
}

/** The part of `total` that slot i of `parts` gets (the remainder to the first slots). */
function share(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// Outbound

interface OutboundRow {
  config: Configuration;
  messages: number;
  delivered: number;
  atB: number;
  perSecond: number;
  cpu: ReturnType<CpuMeter["read"]>;
  statements?: StatementRow[];
}

async function outbound(f: Fixtures, config: Configuration): Promise<OutboundRow> {
  const orgs = f.orgs!;
  const { freePort } = await import("../../test/support/ports.ts");
  const messages = Number(args.messages);
  const number = ++runs;
  const run = join(f.dir, `out-${number}-${config.backend}-${config.nodes}`);
  const filled = join(run, "a-filled");
  const hourAhead = Date.now() + 3_600_000;
  await prefillOutbound({
    dataDir: filled,
    messages,
    recipients: (i) => [`mailto:user${i}@b.test`],
    nextAttemptAt: hourAhead,
  });
  const url =
    config.backend === "postgres" ? await freshDatabase(f, `out${config.nodes}`, number) : undefined;
  if (url) {
    const copy = spawnSync(f.binary, ["migrate-data", "--from", filled, "--to", url], { encoding: "utf8" });
    if (copy.status !== 0) throw new Error(`migrate-data: ${copy.stderr}`);
  }
  if (url) pinPostgres(f.postmaster(), coresOf(config));
  const b = start({
    argv: [f.binary, "serve", ...orgs.flagsB({ dataDir: join(run, "b-data") })],
    cpus: coresOf(config),
    log: join(run, "b.log"),
  });
  const nodes: Proc[] = [];
  const pgClient = url ? new SQL({ url, max: 1 }) : undefined;
  const sqlite = url ? undefined : () => new Database(join(filled, "isched.db"));
  try {
    await waitForPort(orgs.portB);
    for (let i = 0; i < config.nodes; i++) {
      const port = await freePort();
      const flags = orgs.flagsA({ dataDir: url ? join(run, `a-data-${i}`) : filled });
      flags[flags.indexOf("--listen") + 1] = `127.0.0.1:${port}`;
      const argv = [f.binary, "serve", ...flags, ...databaseFlags(url, i)];
      nodes.push(start({ argv, cpus: coresOf(config), log: join(run, `a-${i}.log`) }));
      await waitForPort(port);
    }
    const statements = url && args.statements ? await statementsSince(f, databaseOf(url)) : undefined;
    let meter = cpuMeter({ nodes, postmaster: url ? f.postmaster() : undefined, helpers: [b.pid] });
    const now = Date.now();
    let finalCount: () => Promise<number>;
    let span: () => Promise<{ first: number; last: number; delivered: number }>;
    const FINAL = "SELECT count(*) AS n FROM deliveries WHERE state NOT IN ('queued', 'in-flight')";
    const SPAN =
      "SELECT min(started_at) AS first, max(started_at + duration_ms) AS last, (SELECT count(*) FROM deliveries WHERE state = 'delivered') AS delivered FROM attempts";
    if (pgClient) {
      await pgClient.unsafe("UPDATE deliveries SET next_attempt_at = $1 WHERE state = 'queued'", [now]);
      // The nodes wake on their queue channel (src/store/postgres/nodes.ts) for any payload not their own.
      await pgClient.unsafe("SELECT pg_notify('queue', 'bench')");
      finalCount = async () => Number((await pgClient.unsafe(FINAL))[0].n);
      span = async () => {
        const r = (await pgClient.unsafe(SPAN))[0];
        return { first: Number(r.first), last: Number(r.last), delivered: Number(r.delivered) };
      };
    } else {
      const db = sqlite!();
      db.run("PRAGMA busy_timeout = 5000");
      db.run("UPDATE deliveries SET next_attempt_at = ? WHERE state = 'queued'", [now]);
      // Without NOTIFY an idle SQLite node looks at its queue again within 5 s: the meter starts
      // when it has leased its first deliveries, not over its idle wait.
      const queued = db.query("SELECT count(*) AS n FROM deliveries WHERE state = 'queued'");
      while ((queued.get() as { n: number }).n === messages) await Bun.sleep(5);
      meter = cpuMeter({ nodes, helpers: [b.pid] });
      finalCount = async () => (db.query(FINAL).get() as { n: number }).n;
      span = async () => db.query(SPAN).get() as { first: number; last: number; delivered: number };
    }
    let final = 0;
    const deadline = Date.now() + 10 * 60_000;
    while (final < messages) {
      if (Date.now() > deadline) throw new Error(`outbound: ${final} of ${messages} final after 10 minutes`);
      for (const n of nodes) if (n.child.exitCode !== null) throw new Error(`a node exited: see ${n.log}`);
      await Bun.sleep(100);
      final = await finalCount();
    }
    const cpu = meter.read();
    const executed = await statements?.();
    const s = await span();
    await b.stop();
    const dbB = new Database(join(run, "b-data", "isched.db"), { readonly: true });
    const atB = (
      dbB.query("SELECT count(*) AS n FROM messages WHERE direction = 'inbound'").get() as { n: number }
    ).n;
    dbB.close();
    return {
      config,
      messages,
      delivered: s.delivered,
      atB,
      perSecond: s.delivered / ((s.last - s.first) / 1000),
      cpu,
      statements: executed,
    };
  } finally {
    for (const n of nodes) await n.stop();
    await b.stop();
    await pgClient?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The report

const us = (ms: number, per: number) => (per > 0 ? ((ms * 1000) / per).toFixed(0) : "-");

function cpuColumns(cpu: ReturnType<CpuMeter["read"]>, served: number): string[] {
  const nodes = cpu.nodes.reduce((a, b) => a + b, 0);
  const other = Math.max(0, cpu.machine - nodes - cpu.postgres - cpu.helpers);
  return [
    `${us(nodes, served)} (${cpu.nodes.map((n) => us(n, served)).join(" + ")})`,
    us(cpu.postgres, served),
    us(cpu.helpers, served),
    us(other, served),
    `${((cpu.machine / cpu.wallMs) * 100).toFixed(0)}%`,
  ];
}

/** The rate one node reaches with a core of its own: 10^6 / the µs of CPU it spends per request it serves. */
function perNodeCore(cpu: ReturnType<CpuMeter["read"]>, served: number): number {
  const nodesMs = cpu.nodes.reduce((a, b) => a + b, 0);
  return (served / nodesMs) * 1000;
}

function report(inRows: InboundRow[], outRows: OutboundRow[], pgSettings: string): string {
  const lines: string[] = [];
  lines.push(machineLine().replace(/\.$/, `; ${new Date().toISOString().slice(11, 16)} UTC.`));
  lines.push(`Command: \`${["npx bun scripts/bench/cluster.ts", ...process.argv.slice(2)].join(" ")}\``);
  lines.push(
    `Cores: ${args["scale-cores"] ? `n nodes on min(n, ${CORES}) cores: every process of a configuration (nodes, PostgreSQL, generators, B) pinned to CPUs 0..k-1 with taskset` : "every process placed by the kernel (no pinning)"}. PostgreSQL 15: ${pgSettings}.`,
    "",
  );
  const cpuHead =
    "nodes µs CPU/req (each) | PostgreSQL µs/req | helpers µs/req | other µs/req | machine busy";
  if (inRows.length > 0) {
    lines.push(
      `Inbound: closed loop, ${args.concurrency} connections in all spread over the nodes, ${WARMUP} s warm-up then ${SECONDS} s measured; helpers = the load generators.`,
      "",
      `| configuration | requests/s | ok | p50 ms | p99 ms | ${cpuHead} | per node core | PostgreSQL cores |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const r of inRows) {
      const projected = perNodeCore(r.cpu, r.completed) * r.config.nodes;
      lines.push(
        `| ${r.config.label} | ${r.rps.toFixed(0)} | ${r.ok}/${r.completed} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${cpuColumns(r.cpu, r.completed).join(" | ")} | ${perNodeCore(r.cpu, r.completed).toFixed(0)} | ${r.config.backend === "sqlite" ? "-" : `${(r.cpu.postgres / r.cpu.wallMs).toFixed(2)} (${((projected * r.cpu.postgres) / r.completed / 1000).toFixed(2)} at ${projected.toFixed(0)}/s)`} |`,
      );
    }
    lines.push("");
  }
  if (outRows.length > 0) {
    lines.push(
      `Outbound: ${args.messages} queued messages drained to isched B (HTTPS, SQLite, store target); helpers = B.`,
      "",
      `| configuration | messages/s | delivered (at B) | ${cpuHead} | per node core | PostgreSQL cores |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const r of outRows) {
      lines.push(
        `| ${r.config.label} | ${r.perSecond.toFixed(0)} | ${r.delivered}/${r.messages} (${r.atB}) | ${cpuColumns(r.cpu, r.delivered).join(" | ")} | ${perNodeCore(r.cpu, r.delivered).toFixed(0)} | ${r.config.backend === "sqlite" ? "-" : (r.cpu.postgres / r.cpu.wallMs).toFixed(2)} |`,
      );
    }
    lines.push("");
  }
  const byKind = (
    direction: string,
    r: { config: Configuration; cpu: ReturnType<CpuMeter["read"]> },
    served: number,
  ) =>
    `- ${direction}, ${r.config.label}: ${[...r.cpu.postgresBy]
      .filter(([, ms]) => Math.abs(ms) >= 0.5)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, ms]) => `${kind} ${us(ms, served)}`)
      .join(
        ", ",
      )}; in the kernel: ${us(r.cpu.postgresKernel, served)} of PostgreSQL's, ${us(r.cpu.nodesKernel, served)} of the nodes'`;
  const pgRows = [
    ...inRows.filter((r) => r.cpu.postgres > 0).map((r) => byKind("Inbound", r, r.completed)),
    ...outRows.filter((r) => r.cpu.postgres > 0).map((r) => byKind("Outbound", r, r.delivered)),
  ];
  if (pgRows.length > 0)
    lines.push(
      'PostgreSQL\'s CPU by process, µs per request ("ended": backends that ended in the window):',
      "",
      ...pgRows,
      "",
    );
  for (const r of inRows)
    if (r.statements) lines.push(...statementLines(`Inbound, ${r.config.label}`, r.statements, r.completed));
  for (const r of outRows)
    if (r.statements) lines.push(...statementLines(`Outbound, ${r.config.label}`, r.statements, r.delivered));
  const one = inRows.find((r) => r.config.backend === "postgres" && r.config.nodes === 1);
  const two = inRows.find((r) => r.config.backend === "postgres" && r.config.nodes === 2);
  if (one && two) {
    const perCore = (r: InboundRow) => perNodeCore(r.cpu, r.completed) * r.config.nodes;
    lines.push(
      `- Inbound, two PostgreSQL nodes / one, measured on this machine: ${(two.rps / one.rps).toFixed(2)}x.`,
      `- With a core per node (from the nodes' CPU per request): ${(perCore(two) / perCore(one)).toFixed(2)}x (${perCore(two).toFixed(0)}/s against ${perCore(one).toFixed(0)}/s), which needs PostgreSQL to have ${((perCore(two) * two.cpu.postgres) / two.completed / 1000).toFixed(2)} cores besides (${us(two.cpu.postgres, two.completed)} µs of its CPU per request). Target 1.6x.`,
    );
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// The run

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "isched-bench-cluster-"));
  const { ischedBinary } = await import("../../test/support/binary.ts");
  const { startPostgres } = await import("../../test/support/postgres.ts");
  const { generateDkimKey } = await import("../../src/dkim/keygen.ts");
  // A copy: a rebuild of dist/isched during the run must not touch the running executable.
  const binary = join(dir, "isched");
  copyFileSync(ischedBinary(), binary);
  const peer = generateDkimKey("rsa", 2048);
  writeFileSync(join(dir, "peer.key"), peer.privateKeyPem);
  writeFileSync(join(dir, "peer.pub"), peer.publicKeyPem);
  writeFileSync(join(dir, "org.key"), generateDkimKey("rsa", 2048).privateKeyPem, { mode: 0o600 });
  const settings = Object.fromEntries(
    (args.pg ?? []).map((s) => {
      const at = s.indexOf("=");
      if (at < 1) throw new Error(`--pg ${s}: expected NAME=VALUE`);
      return [s.slice(0, at), s.slice(at + 1)];
    }),
  );
  if (args.statements) settings.shared_preload_libraries = "pg_stat_statements";
  const pg = await startPostgres({ settings });
  if (args.statements) await pg.admin("CREATE EXTENSION pg_stat_statements");
  const pgSettings = [
    "fsync, synchronous_commit and full_page_writes on (defaults)",
    ...Object.entries(settings).map(([k, v]) => `${k}=${v}`),
  ].join(", ");
  const configs = configurations();
  const slots = Math.max(...configs.map((c) => c.nodes));
  const requests = Array.from({ length: slots }, (_, i) => join(dir, `requests-${i}.bin`));
  const fixtures: Fixtures = {
    dir,
    binary,
    pg,
    postmaster: () => Number(readFileSync(join(pg.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]),
    requests,
  };
  try {
    if (!args["no-inbound"]) {
      // Each slot's file must last one configuration's run at --sign-rate in all (a single node uses slot 0 alone).
      const count = Math.ceil(Number(args["sign-rate"]) * (SECONDS + WARMUP));
      console.log(`signing ${count * slots} requests...`);
      const t0 = performance.now();
      await Promise.all(
        requests.map(
          (out, i) =>
            new Promise<void>((resolve, reject) => {
              const argv = [
                INBOUND,
                "--role",
                "sign",
                "--key",
                join(dir, "peer.key"),
                "--count",
                String(count),
              ];
              argv.push("--prefix", `cluster-${i}-${Date.now()}`, "--out", out);
              spawn(BUN, argv, { stdio: "inherit" }).on("exit", (code) =>
                code === 0 ? resolve() : reject(new Error(`signer exited with ${code}`)),
              );
            }),
        ),
      );
      console.log(`signed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const inRows: InboundRow[] = [];
    if (!args["no-inbound"])
      for (const config of configs) {
        const row = await inbound(fixtures, config);
        console.log(`inbound, ${config.label}: ${row.rps.toFixed(0)}/s (${row.ok}/${row.completed} ok)`);
        inRows.push(row);
      }
    const outRows: OutboundRow[] = [];
    if (!args["no-outbound"]) {
      mkdirSync(join(dir, "orgs"));
      fixtures.orgs = await prepareTwoOrgs({ dir: join(dir, "orgs", "x"), trust: "ca-file" });
      for (const config of configs) {
        const row = await outbound(fixtures, config);
        console.log(
          `outbound, ${config.label}: ${row.perSecond.toFixed(0)}/s (${row.delivered}/${row.messages})`,
        );
        outRows.push(row);
      }
    }
    const text = report(inRows, outRows, pgSettings);
    console.log(`\n${text}`);
    if (args.write) replaceBetweenMarkers(args.write, args.marker!, text);
  } finally {
    await fixtures.orgs?.stop();
    await pg.stop();
    if (args.keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
