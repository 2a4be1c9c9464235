/**
 * Which PostgreSQL driver isched should use: Bun's built-in `Bun.SQL`, `postgres` (postgres.js) or
 * `pg` (node-postgres), measured against Debian's PostgreSQL 15 started by test/support/postgres.ts
 * (durable settings: fsync and synchronous_commit on).
 *
 * For each driver:
 * - compiled: a probe built with `bun build --compile` runs against a fresh database (accept
 *   transaction, bytea round trip, LISTEN on one connection woken by NOTIFY from another);
 * - notify: a NOTIFY from another client wakes a LISTEN callback (median latency of 20);
 * - outage: the server is stopped (`pg_ctl stop -m fast`) and started again; how a query fails while
 *   it is down (how fast, which error), how soon the same pool answers once it is back, and whether
 *   the listener comes back by itself (and calls its on-listen hook again, to catch up);
 * - dropped sessions: every session is terminated (pg_terminate_backend), the server stays up: does
 *   the next query succeed or fail?
 * - accept: transactions inserting a message (~5 KB bytea), one delivery and one attempt (unique
 *   constraints: message uuid, (message, recipient), the replay key) at 1, 8 and 32 concurrent
 *   clients (a pool of that size), as BEGIN + 3 statements + COMMIT and as one statement with
 *   data-modifying CTEs; transactions per second, latency p50/p99, client CPU per transaction;
 * - lease: two competing clients lease 50 due deliveries at a time with FOR UPDATE SKIP LOCKED
 *   until 20,000 queued deliveries are all leased; every delivery must be leased exactly once.
 *
 *   npx bun scripts/bench/pg-drivers.ts [--seconds 4] [--deliveries 20000] [--drivers bun,postgres,pg]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../../test/support/postgres.ts";
import { closedLoop, percentile } from "./_closed-loop.ts";
import { open as openBunSql } from "./_pg-bun-sql.ts";
import { acceptRow, type BenchDriver, type OpenDriver, queuedDeliveriesSql, SCHEMA } from "./_pg-driver.ts";
import { open as openNodePg } from "./_pg-node-pg.ts";
import { open as openPorsager } from "./_pg-porsager.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "4" },
    deliveries: { type: "string", default: "20000" },
    drivers: { type: "string", default: "bun,postgres,pg" },
  },
});
const SECONDS = Number(values.seconds);
const DELIVERIES = Number(values.deliveries);
const ROOT = resolve(import.meta.dir, "..", "..");

interface Candidate {
  key: string;
  open: OpenDriver;
  adapter: string;
  version: string;
}

const packageVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string })
    .version;

const ALL: Candidate[] = [
  { key: "bun", open: openBunSql, adapter: "_pg-bun-sql.ts", version: `Bun ${Bun.version}` },
  { key: "postgres", open: openPorsager, adapter: "_pg-porsager.ts", version: packageVersion("postgres") },
  { key: "pg", open: openNodePg, adapter: "_pg-node-pg.ts", version: packageVersion("pg") },
];
const candidates = values.drivers.split(",").map((k) => {
  const c = ALL.find((x) => x.key === k);
  if (!c) throw new Error(`--drivers: unknown driver ${k} (bun, postgres, pg)`);
  return c;
});

const pg = await startPostgres();
const report: string[] = [];
const out = (line: string) => {
  console.log(line);
  report.push(line);
};

try {
  const server = await pg.admin("SELECT version()");
  const settings = await pg.admin(
    "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers')",
  );
  out(`server: ${server.split(" on ")[0]} (${settings})`);
  out(`drivers: ${candidates.map((c) => `${c.key} ${c.version}`).join(", ")}; ${SECONDS} s per accept run`);

  out("\n## Behaviour\n");
  out(
    "| driver | compiled binary | int8 comes back as | NOTIFY wakes a listener | query while down | pool after restart | listener after restart | after sessions dropped |",
  );
  out("|---|---|---|---|---|---|---|---|");
  for (const c of candidates) out(await behaviour(c));

  out("\n## Accept transaction (message ~5 KB bytea + delivery + attempt), synchronous_commit on\n");
  out("| driver | form | clients | tx/s | p50 ms | p99 ms | client CPU µs/tx |");
  out("|---|---|---:|---:|---:|---:|---:|");
  const bench = await pg.createDatabase("bench");
  for (const form of ["transaction", "one statement"] as const) {
    for (const clients of [1, 8, 32]) {
      for (const c of candidates) out(await acceptRun(c, bench, form, clients));
    }
  }

  out(`\n## Lease 50 at a time, FOR UPDATE SKIP LOCKED, 2 competing clients, ${DELIVERIES} due deliveries\n`);
  out(
    "| driver | leases/s | deliveries/s | p50 ms | p99 ms | client CPU µs/lease | split between the clients | leased twice | missed |",
  );
  out("|---|---:|---:|---:|---:|---:|---|---:|---:|");
  for (const c of candidates) out(await leaseRun(c, bench));
} finally {
  await pg.stop();
}

async function behaviour(c: Candidate): Promise<string> {
  const compiled = await compileProbe(c, await pg.createDatabase(`probe_${c.key}`));
  const db = await pg.createDatabase(`behaviour_${c.key}`);
  const a = c.open(db, { max: 4 });
  const b = c.open(db, { max: 1 });
  let notify = "no";
  let int8 = "";
  let down = "";
  let poolBack = "";
  let listenerBack = "";
  let dropped = "";
  try {
    await a.exec(SCHEMA);
    const id = await a.accept(acceptRow(0, Date.now()));
    const value = await a.receivedAt(id);
    int8 = typeof value;

    // NOTIFY from another client wakes the listener.
    const waiting = new Map<string, () => void>();
    let onListenCalls = 0;
    const unlisten = await a.listen(
      "wake",
      (p) => waiting.get(p)?.(),
      () => {
        onListenCalls++;
      },
    );
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const woken = new Promise<void>((r) => waiting.set(String(i), r));
      const t0 = performance.now();
      await b.notify("wake", String(i));
      const ok = await Promise.race([woken.then(() => true), Bun.sleep(2000).then(() => false)]);
      if (ok) latencies.push(performance.now() - t0);
    }
    notify =
      latencies.length === 20
        ? `yes, ${ms(
            percentile(
              latencies.sort((x, y) => x - y),
              0.5,
            ),
          )} ms`
        : `${latencies.length}/20 woke`;

    // Outage: a clean stop, a few seconds down, then the same cluster again.
    await a.ping();
    await pg.stop({ keepData: true });
    const t0 = performance.now();
    const failure = await Promise.race([
      a.ping().then(
        () => "answered?!",
        (e: unknown) => `fails in ${ms(performance.now() - t0)} ms (${errorText(e)})`,
      ),
      Bun.sleep(40_000).then(() => "hangs > 40 s"),
    ]);
    down = failure;
    await Bun.sleep(1000);
    await pg.start();
    poolBack = await until(() => a.ping(), 40_000);
    const before = onListenCalls;
    let got = false;
    waiting.set("after", () => {
      got = true;
    });
    const t1 = performance.now();
    while (!got && performance.now() - t1 < 40_000) {
      await b.notify("wake", "after").catch(() => {});
      await Bun.sleep(100);
    }
    listenerBack = got
      ? `yes, ${ms(performance.now() - t1)} ms${onListenCalls > before ? ", on-listen hook again" : ", no on-listen hook"}`
      : "no (within 40 s)";
    await unlisten();

    // Sessions dropped, the server stays up.
    await a.ping();
    await b.ping();
    await pg.terminateConnections();
    await Bun.sleep(100);
    const first = await a.ping().then(
      () => "next query ok",
      (e: unknown) => `next query fails (${errorText(e)})`,
    );
    const second = await a.ping().then(
      () => "",
      () => ", the one after too",
    );
    dropped = first + second;
  } finally {
    await a.close().catch(() => {});
    await b.close().catch(() => {});
  }
  return `| ${c.key} | ${compiled} | ${int8} | ${notify} | ${down} | ${poolBack} | ${listenerBack} | ${dropped} |`;
}

/** Builds a probe with this driver into a binary, runs it against a fresh database. */
async function compileProbe(c: Candidate, url: string): Promise<string> {
  // Inside node_modules so that the bundler resolves the drivers from the project's node_modules.
  const dir = join(ROOT, "node_modules", ".cache", "isched-pg-probe");
  mkdirSync(dir, { recursive: true });
  const source = join(dir, `${c.key}.ts`);
  const binary = join(dir, c.key);
  writeFileSync(
    source,
    `import { open } from ${JSON.stringify(join(import.meta.dir, c.adapter))};\n` +
      `import { probe } from ${JSON.stringify(join(import.meta.dir, "_pg-driver.ts"))};\n` +
      "await probe(open, process.argv[2]!);\n",
  );
  try {
    const build = spawnSync(process.execPath, ["build", "--compile", source, "--outfile", binary], {
      encoding: "utf8",
    });
    if (build.status !== 0) return `build fails: ${firstLine(build.stderr)}`;
    const run = Bun.spawn([binary, url], { stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => run.kill(), 30_000);
    const [stdout, stderr] = await Promise.all([
      new Response(run.stdout).text(),
      new Response(run.stderr).text(),
    ]);
    clearTimeout(killer);
    const line = stdout.trim().split("\n").at(-1) ?? "";
    try {
      const r = JSON.parse(line) as { ok?: boolean; error?: string; notify?: string };
      return r.ok ? "yes" : `no: ${r.error ?? `notify ${r.notify}`}`;
    } catch {
      return `no: ${firstLine(stderr || line)}`;
    }
  } finally {
    rmSync(source, { force: true });
    rmSync(binary, { force: true });
  }
}

async function acceptRun(
  c: Candidate,
  url: string,
  form: "transaction" | "one statement",
  clients: number,
): Promise<string> {
  const d = c.open(url, { max: clients });
  try {
    await d.exec(SCHEMA);
    // Warm up: connections open, statements prepared.
    for (let i = 0; i < clients * 2; i++) await d.accept(acceptRow(i, Date.now()));
    const r = await closedLoop({
      callers: clients,
      seconds: SECONDS,
      run: (i) => {
        const row = acceptRow(i, Date.now());
        return form === "transaction" ? d.accept(row) : d.acceptOneStatement(row);
      },
    });
    const p = (q: number) => ms(percentile(r.latenciesMs, q));
    return `| ${c.key} | ${form} | ${clients} | ${Math.round(r.perSecond)} | ${p(0.5)} | ${p(0.99)} | ${Math.round(r.cpuUsPerOp)} |`;
  } finally {
    await d.close();
  }
}

async function leaseRun(c: Candidate, url: string): Promise<string> {
  const setup = c.open(url, { max: 1 });
  const now = Date.now();
  await setup.exec(SCHEMA);
  await setup.exec(queuedDeliveriesSql(DELIVERIES, now));
  await setup.close();
  const clients = [c.open(url, { max: 1 }), c.open(url, { max: 1 })];
  const leased = new Map<number, number>();
  const perClient = [0, 0];
  const latencies: number[] = [];
  let leases = 0;
  try {
    // Connections open and statements prepared before the clock starts.
    for (const d of clients) await d.lease({ owner: "warm-up", nowMs: 0, leaseMs: 1, limit: 1 });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (d: BenchDriver, k) => {
        for (;;) {
          const s = performance.now();
          const ids = await d.lease({ owner: `node-${k}`, nowMs: now, leaseMs: 300_000, limit: 50 });
          latencies.push(performance.now() - s);
          if (ids.length === 0) return;
          leases++;
          perClient[k]! += ids.length;
          for (const id of ids) leased.set(id, (leased.get(id) ?? 0) + 1);
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuPerLease = (cpu.user + cpu.system) / latencies.length;
    latencies.sort((x, y) => x - y);
    const twice = [...leased.values()].filter((n) => n > 1).length;
    const missed = DELIVERIES - leased.size;
    return `| ${c.key} | ${Math.round(leases / elapsed)} | ${Math.round(leased.size / elapsed)} | ${ms(percentile(latencies, 0.5))} | ${ms(percentile(latencies, 0.99))} | ${Math.round(cpuPerLease)} | ${perClient.join(" / ")} | ${twice} | ${missed} |`;
  } finally {
    for (const d of clients) await d.close();
  }
}

async function until(fn: () => Promise<void>, limitMs: number): Promise<string> {
  const t0 = performance.now();
  let failures = 0;
  let last = "";
  while (performance.now() - t0 < limitMs) {
    try {
      await fn();
      return `${ms(performance.now() - t0)} ms${failures > 0 ? `, ${failures} failed first (${last})` : ""}`;
    } catch (e) {
      failures++;
      last = errorText(e);
      await Bun.sleep(50);
    }
  }
  return `not back in ${limitMs / 1000} s (${last})`;
}

function ms(x: number): string {
  return x < 10 ? x.toFixed(2) : x.toFixed(0);
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = "code" in e && typeof e.code === "string" ? `${e.code}: ` : "";
  return `${code}${firstLine(e.message)}`.slice(0, 80);
}

function firstLine(s: string): string {
  return s.trim().split("\n")[0] ?? "";
}
