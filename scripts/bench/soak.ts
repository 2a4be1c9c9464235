/**
 * Soak: the compiled `dist/isched serve` (store target) under a steady inbound load for a long time,
 * with retention pruning as it goes, to see whether anything drifts: the server's RSS, the p99 of
 * each window, the WAL's size, and the database's bytes per stored message.
 *
 *   npx bun scripts/bench/soak.ts [--minutes 60] [--window 60] [--saturation-seconds 20]
 *                                 [--concurrency 16] [--rate-fraction 0.5] [--pin] [--out FILE.json]
 *                                 [--signature-seconds 60]
 *                                 [--log FILE (isched's log; /dev/null without)]
 *
 * First a short closed loop (16 keep-alive connections, each sending its next request as soon as the
 * last is answered) finds the saturation rate on a fresh database; then a fresh isched gets
 * --rate-fraction of it (half by default), at a fixed rate, for --minutes. Latency counts from when a request fell due, so a stall is not
 * hidden (no coordinated omission). Every invitation is new (its own iSchedule-Message-ID and UID,
 * to one of 50 attendees) and signed when it is sent, with ed25519-sha256 (RFC 8463): signing 470
 * RSA-2048 requests a second would take most of the generator's core, and pre-signing an hour of
 * them would take longer than the run. isched verifies ed25519 faster than RSA, so the saturation
 * rate here is higher than inbound.ts's.
 *
 * Retention: `serve` runs its own pruner (src/store/sqlite/pruner.ts, on the connection requests
 * use, at its own pace), with a policy compressed to fit the run through ISCHED_BENCHMARK_RETENTION
 * (src/store/retention-policy.ts; --retain is at least 7 days, so nothing would expire within an
 * hour): bodies emptied after --retain-bodies-minutes, messages deleted after --retain-minutes, a
 * run every --prune-every seconds, so that within the run the database reaches the steady state
 * where retention deletes as much as arrives. What each window pruned comes from isched's
 * /metrics (isched_pruned_total).
 *
 * Signatures: each carries x= --signature-seconds (60) after t=. isched keeps a request's replay
 * key and its iTIP copy keys while its signature could be replayed: x= plus the 5-minute clock skew
 * it allows on x=, plus the same on t= (src/inbound/replays.ts), so those two tables stop growing
 * 11 minutes into the run. With isched's own default life of an hour (what `isched` signs with)
 * they would grow for 70 minutes, longer than the run: run 7 measured that as 24 MB a minute. The
 * summary gives p99 and bytes per stored message from the minute every table is steady.
 *
 * --pin (2 cores): isched on CPU 0, the load generator on CPU 1, as inbound.ts does.
 * Without it the kernel places them: on a machine other work shares, a pinned isched gets only its
 * share of one core.
 * Internal role: --role load.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../../test/support/ports.ts";
import { percentile } from "./_closed-loop.ts";
import { httpRequest, invitationBody, ORIGINATOR } from "./_invitations.ts";
import { machineBusyMs, processCpuMs } from "./_perf.ts";
import { rssKbOf, waitForPort } from "./_two-ischeds.ts";

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    minutes: { type: "string", default: "60" },
    window: { type: "string", default: "60" },
    "saturation-seconds": { type: "string", default: "20" },
    concurrency: { type: "string", default: "16" },
    "rate-fraction": { type: "string", default: "0.5" },
    pin: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "retain-minutes": { type: "string", default: "10" },
    "retain-bodies-minutes": { type: "string", default: "3" },
    "prune-every": { type: "string", default: "60" },
    "signature-seconds": { type: "string", default: "60" },
    out: { type: "string" },
    /** isched's log (both streams) to this file instead of /dev/null. */
    log: { type: "string" },
    // internal
    port: { type: "string" },
    key: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    prefix: { type: "string" },
    db: { type: "string" },
  },
});

const BUN = process.execPath;
const SCRIPT = new URL(import.meta.url).pathname;
const ATTENDEES = 50;
/** taskset's arguments for `cpu` with --pin, none without. */
const on = (cpu: number): string[] => (args.pin ? ["taskset", "-c", String(cpu)] : []);
const spawnOn = (cpu: number, argv: string[], stdio: ("ignore" | "pipe" | "inherit")[]) => {
  const [command, ...rest] = [...on(cpu), ...argv];
  return spawn(command!, rest, { stdio });
};
const BASELINE_S = 300;

// ---------------------------------------------------------------------------------------------
// The load generator

interface WindowReport {
  kind: "window";
  endS: number;
  sent: number;
  answered: number;
  ok: number;
  statuses: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

interface LoadSummary {
  kind: "summary";
  seconds: number;
  answered: number;
  ok: number;
  rps: number;
  /** p99 over the first five minutes and over the last five. */
  firstP99: number;
  lastP99: number;
  cpuMs: number;
}

/**
 * --role load: --concurrency keep-alive connections to --port for --seconds; --rate requests a
 * second (fixed rate) or a closed loop without it. Each request is signed as it is sent. Prints one
 * WindowReport a --window and a LoadSummary at the end, as JSON lines.
 */
async function loadRole(): Promise<void> {
  const { loadSigningKey, signRequest } = await import("../../src/dkim/sign.ts");
  const key = loadSigningKey(readFileSync(args.key!, "utf8"), "peer.test", "s1");
  const rate = args.rate ? Number(args.rate) : undefined;
  const runMs = Number(args.seconds) * 1000;
  const windowMs = Number(args.window) * 1000;
  let n = 0;
  const request = (): Buffer => {
    const id = `${args.prefix}-${n}`;
    const recipient = `mailto:user${n++ % ATTENDEES}@org.test`;
    const body = Buffer.from(invitationBody(`${id}@peer.test`, recipient));
    const fields: [string, string][] = [
      ["iSchedule-Version", "1.0"],
      ["iSchedule-Message-ID", id],
      ["Originator", ORIGINATOR],
      ["Recipient", recipient],
      ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
      ["Cache-Control", "no-cache, no-transform"],
      ["User-Agent", "isched-soak/1.0"],
    ];
    fields.unshift([
      "DKIM-Signature",
      signRequest({ key, fields, body, nowMs: Date.now(), expireSeconds: Number(args["signature-seconds"]) }),
    ]);
    return httpRequest("/.well-known/ischedule", fields, body);
  };

  let window = {
    sent: 0,
    answered: 0,
    ok: 0,
    statuses: {} as Record<string, number>,
    latencies: [] as number[],
  };
  const first: number[] = [];
  const recent: number[][] = [];
  let answered = 0;
  let ok = 0;
  const start = performance.now();
  const endAt = start + runMs;
  let stopping = false;
  const due: number[] = [];
  let issued = 0;
  const idle: Connection[] = [];

  class Connection {
    readonly socket: net.Socket;
    buffer: Buffer = Buffer.alloc(0);
    startedAt = 0;
    constructor(onReady: () => void) {
      this.socket = net.connect({ port: Number(args.port), host: "127.0.0.1", noDelay: true }, onReady);
      this.socket.on("data", (chunk: Buffer) => this.received(chunk));
      this.socket.on("error", (e) => {
        console.error(`load: connection error: ${e.message}`);
        process.exit(1);
      });
    }
    send(dueAt: number): void {
      this.startedAt = dueAt;
      window.sent++;
      this.socket.write(request());
    }
    received(chunk: Buffer): void {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      const headEnd = this.buffer.indexOf("\r\n\r\n");
      if (headEnd === -1) return;
      const head = this.buffer.subarray(0, headEnd).toString("latin1");
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!length) throw new Error(`load: a response without Content-Length: ${head}`);
      const bodyEnd = headEnd + 4 + Number(length[1]);
      if (this.buffer.length < bodyEnd) return;
      const now = performance.now();
      const status = head.slice(9, 12);
      const good = status === "200" && this.buffer.subarray(headEnd, bodyEnd).includes("2.0;Success");
      this.buffer = this.buffer.subarray(bodyEnd);
      const latency = now - this.startedAt;
      window.answered++;
      window.statuses[status] = (window.statuses[status] ?? 0) + 1;
      window.latencies.push(latency);
      if (now - start < BASELINE_S * 1000) first.push(latency);
      answered++;
      if (good) {
        window.ok++;
        ok++;
      }
      if (stopping) return;
      if (rate === undefined) this.send(now);
      else if (due.length > 0) this.send(due.shift()!);
      else idle.push(this);
    }
  }

  const connections: Connection[] = [];
  await Promise.all(
    Array.from(
      { length: Number(args.concurrency) },
      () => new Promise<void>((resolve) => connections.push(new Connection(resolve))),
    ),
  );
  const flush = (endS: number) => {
    const sorted = window.latencies.sort((a, b) => a - b);
    const report: WindowReport = {
      kind: "window",
      endS,
      sent: window.sent,
      answered: window.answered,
      ok: window.ok,
      statuses: window.statuses,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1) ?? Number.NaN,
    };
    recent.push(sorted);
    while (recent.length * windowMs > BASELINE_S * 1000) recent.shift();
    console.log(JSON.stringify(report));
    window = { sent: 0, answered: 0, ok: 0, statuses: {}, latencies: [] };
  };
  const windows = setInterval(() => flush(Math.round((performance.now() - start) / 1000)), windowMs);
  if (rate === undefined) for (const c of connections) c.send(performance.now());
  else {
    idle.push(...connections);
    // Request i falls due at start + i / rate.
    const timer = setInterval(() => {
      const now = performance.now();
      for (const shouldHave = Math.floor(((now - start) * rate) / 1000) + 1; issued < shouldHave; issued++)
        due.push(start + (issued * 1000) / rate);
      while (idle.length > 0 && due.length > 0) idle.pop()!.send(due.shift()!);
    }, 1);
    setTimeout(() => clearInterval(timer), runMs);
  }
  await Bun.sleep(endAt - performance.now());
  stopping = true;
  clearInterval(windows);
  if (window.answered > 0) flush(Math.round(runMs / 1000));
  // Answers still on their way are not waited for: the summary is over the run's own time.
  const p99Of = (values: number[]) =>
    percentile(
      values.sort((a, b) => a - b),
      0.99,
    );
  const summary: LoadSummary = {
    kind: "summary",
    seconds: runMs / 1000,
    answered,
    ok,
    rps: answered / (runMs / 1000),
    firstP99: p99Of(first),
    lastP99: p99Of(recent.flat()),
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  };
  console.log(JSON.stringify(summary));
  for (const c of connections) c.socket.destroy();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

/** JSON lines from a child's stdout, as they come. */
function jsonLines(child: ChildProcess, onLine: (value: Record<string, unknown>) => void): void {
  let rest = "";
  child.stdout!.on("data", (d: Buffer) => {
    rest += d.toString();
    for (let i = rest.indexOf("\n"); i !== -1; i = rest.indexOf("\n")) {
      const line = rest.slice(0, i).trim();
      rest = rest.slice(i + 1);
      if (line.startsWith("{")) onLine(JSON.parse(line));
    }
  });
}

const fileBytes = (path: string): number => (existsSync(path) ? statSync(path).size : 0);
const mb = (bytes: number) => (bytes / 1048576).toFixed(1);

interface Sample {
  atS: number;
  rss: number;
  wal: number;
  db: number;
  messages: number;
  /** Pages in use (the file less its free list), in bytes. */
  usedBytes: number;
  /** isched_pruned_total by kind so far. */
  pruned: Record<string, number>;
}

async function orchestrate(): Promise<void> {
  const minutes = Number(args.minutes);
  const windowS = Number(args.window);
  const dir = mkdtempSync(join(tmpdir(), "isched-soak-"));
  const children: ChildProcess[] = [];
  process.on("exit", () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  });
  // A copy: rebuilding dist/isched during the run must not touch the running executable.
  const { ischedBinary } = await import("../../test/support/binary.ts");
  const binary = join(dir, "isched");
  copyFileSync(ischedBinary(), binary);
  const { generateDkimKey } = await import("../../src/dkim/keygen.ts");
  const key = generateDkimKey("ed25519");
  writeFileSync(join(dir, "peer.key"), key.privateKeyPem);
  writeFileSync(join(dir, "peer.pub"), key.publicKeyPem);

  const port = await freePort();
  const consolePort = await freePort();
  const startIsched = async (data: string, env: Record<string, string> = {}) => {
    const argv = [binary, "serve", "--domain", "org.test", "--listen", `127.0.0.1:${port}`];
    argv.push("--console", `127.0.0.1:${consolePort}`, "--data", data, "--deliver", "store");
    argv.push("--peer-key", `peer.test:s1=${join(dir, "peer.pub")}`);
    // Its log (one line a request) goes to /dev/null, as cheap as a log file.
    const [command, ...rest] = [...on(0), ...argv];
    const log = args.log ? openSync(args.log, "a") : "ignore";
    const child = spawn(command!, rest, {
      stdio: ["ignore", log, log],
      env: { ...process.env, ...env },
    });
    children.push(child);
    await waitForPort(port);
    return child;
  };
  /** SIGTERM; the exit code and how long the shutdown took. */
  const stopIsched = async (child: ChildProcess) => {
    const t0 = performance.now();
    child.kill("SIGTERM");
    const code = child.exitCode ?? (await new Promise<number | null>((r) => child.once("exit", r)));
    return { code, ms: Math.round(performance.now() - t0) };
  };
  const runLoad = (
    o: { seconds: number; rate?: number; prefix: string },
    onLine: (v: Record<string, unknown>) => void,
  ) => {
    const argv = [BUN, SCRIPT, "--role", "load", "--port", String(port), "--key", join(dir, "peer.key")];
    argv.push("--signature-seconds", args["signature-seconds"]!);
    argv.push(
      "--concurrency",
      args.concurrency!,
      "--seconds",
      String(o.seconds),
      "--window",
      String(windowS),
    );
    argv.push("--prefix", o.prefix, ...(o.rate ? ["--rate", String(Math.round(o.rate))] : []));
    const child = spawnOn(1, argv, ["ignore", "pipe", "inherit"]);
    children.push(child);
    jsonLines(child, onLine);
    return new Promise<void>((resolve, reject) =>
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`load exited with ${code}`)))),
    );
  };

  // 1. Saturation, briefly, on its own database.
  let isched = await startIsched(join(dir, "data-saturation"));
  let saturation: LoadSummary | undefined;
  await runLoad({ seconds: Number(args["saturation-seconds"]), prefix: `sat-${Date.now()}` }, (v) => {
    if (v.kind === "summary") saturation = v as unknown as LoadSummary;
  });
  await stopIsched(isched);
  if (!saturation) throw new Error("the saturation run reported nothing");
  const rate = saturation.rps * Number(args["rate-fraction"]);
  console.log(
    `saturation: ${saturation.rps.toFixed(0)} requests/s; soak at ${rate.toFixed(0)}/s for ${minutes} min`,
  );

  // 2. The soak: a fresh database, half the rate, retention compressed to fit the run.
  const data = join(dir, "data");
  const retention = `bodies=${args["retain-bodies-minutes"]}m,messages=${args["retain-minutes"]}m,every=${args["prune-every"]}s`;
  isched = await startIsched(data, { ISCHED_BENCHMARK_RETENTION: retention });
  const dbPath = join(data, "isched.db");
  const { Database } = await import("bun:sqlite");
  const startedAt = performance.now();
  const busyStart = machineBusyMs();
  const cpuStart = processCpuMs(isched.pid!);
  const sample = async (): Promise<Sample> => {
    // A connection a sample, closed at once: a reader left open would hold checkpoints back.
    const reader = new Database(dbPath, { readonly: true });
    reader.run("PRAGMA busy_timeout = 5000");
    const facts = reader
      .query(
        "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT page_count FROM pragma_page_count()) AS pages, (SELECT freelist_count FROM pragma_freelist_count()) AS free, (SELECT page_size FROM pragma_page_size()) AS size",
      )
      .get() as { messages: number; pages: number; free: number; size: number };
    reader.close();
    return {
      atS: Math.round((performance.now() - startedAt) / 1000),
      rss: rssKbOf(isched.pid!) * 1024,
      wal: fileBytes(`${dbPath}-wal`),
      db: fileBytes(dbPath),
      messages: facts.messages,
      usedBytes: (facts.pages - facts.free) * facts.size,
      pruned: await prunedTotals(consolePort),
    };
  };
  const rows: { window: WindowReport; sample: Sample; maxWal: number }[] = [];
  let maxWal = 0;
  const walWatch = setInterval(() => {
    maxWal = Math.max(maxWal, fileBytes(`${dbPath}-wal`));
  }, 1000);
  let soak: LoadSummary | undefined;
  // Samples in the order of their windows (each reads /metrics, so it is awaited in turn).
  let sampling = Promise.resolve();
  const sampled = async (w: WindowReport): Promise<void> => {
    const s = await sample();
    rows.push({ window: w, sample: s, maxWal });
    maxWal = 0;
    console.log(
      `${(s.atS / 60).toFixed(1)} min: ${w.answered} answered (${w.ok} ok), p99 ${w.p99.toFixed(1)} ms, RSS ${mb(s.rss)} MB, WAL ${mb(s.wal)} MB, db ${mb(s.db)} MB, ${s.messages} messages, pruned so far ${JSON.stringify(s.pruned)}`,
    );
  };
  await runLoad({ seconds: minutes * 60, rate, prefix: `soak-${Date.now()}` }, (v) => {
    if (v.kind === "summary") soak = v as unknown as LoadSummary;
    else sampling = sampling.then(() => sampled(v as unknown as WindowReport));
  });
  await sampling;
  clearInterval(walWatch);
  const wallMs = performance.now() - startedAt;
  const serverCpu = processCpuMs(isched.pid!) - cpuStart;
  const otherCpu = machineBusyMs() - busyStart - serverCpu - (soak?.cpuMs ?? 0);
  const stopped = await stopIsched(isched);
  report({ saturation, rate, soak: soak!, rows, retention, wallMs, serverCpu, otherCpu, stopped });
  if (args.out) writeFileSync(args.out, JSON.stringify({ saturation, rate, soak, rows, retention }, null, 1));
  if (args.keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

/** isched_pruned_total by kind, from isched's /metrics (the console's, open on loopback). */
async function prunedTotals(consolePort: number): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${consolePort}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^isched_pruned_total\{kind="([^"]+)"\} (\S+)$/gm))
      out[m[1]!] = Number(m[2]);
    return out;
  } catch {
    return {};
  }
}

function report(o: {
  saturation: LoadSummary;
  rate: number;
  soak: LoadSummary;
  rows: { window: WindowReport; sample: Sample; maxWal: number }[];
  retention: string;
  wallMs: number;
  serverCpu: number;
  otherCpu: number;
  stopped: { code: number | null; ms: number };
}): void {
  const cpu = /Model name:\s*(.+)/.exec(spawnSync("lscpu", { encoding: "utf8" }).stdout)?.[1]?.trim() ?? "?";
  const perMessage = (s: Sample) => (s.messages > 0 ? (s.usedBytes / s.messages).toFixed(0) : "-");
  const table = [
    "| minute | answered | ok | p50 ms | p99 ms | max ms | RSS MB | WAL MB (max in window) | db file MB | messages | used bytes/message |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...o.rows.map(
      ({ window: w, sample: s, maxWal }) =>
        `| ${(s.atS / 60).toFixed(0)} | ${w.answered} | ${w.ok} | ${w.p50.toFixed(1)} | ${w.p99.toFixed(1)} | ${w.max.toFixed(0)} | ${mb(s.rss)} | ${mb(s.wal)} (${mb(maxWal)}) | ${mb(s.db)} | ${s.messages} | ${perMessage(s)} |`,
    ),
  ];
  const baseline = o.rows.filter((r) => r.sample.atS <= BASELINE_S + 5).at(-1)?.sample;
  const last = o.rows.at(-1)?.sample;
  const lines = [
    `Machine: ${cpu}, ${navigator.hardwareConcurrency} cores; Bun ${Bun.version}; ${new Date().toISOString().slice(0, 16)}Z.`,
    `Command: \`npx bun scripts/bench/soak.ts ${process.argv.slice(2).join(" ")}\``.replace(" `", "`"),
    `Saturation (closed loop, ${args.concurrency} connections, ${args["saturation-seconds"]} s): ${o.saturation.rps.toFixed(0)} requests/s; soak at ${o.rate.toFixed(0)}/s (${args["rate-fraction"]} of it) for ${(o.wallMs / 60_000).toFixed(1)} min: ${o.soak.answered} answered, ${o.soak.ok} ok.`,
    `Server CPU ${((o.serverCpu / o.wallMs) * 100).toFixed(0)}% of a core; everything else on the machine (not isched, not the generator) ${((Math.max(0, o.otherCpu) / o.wallMs) * 100).toFixed(0)}%.`,
    "",
    ...table,
    "",
    `- p99: first five minutes ${o.soak.firstP99.toFixed(1)} ms, last five minutes ${o.soak.lastP99.toFixed(1)} ms`,
    ...steadyLines(o.rows),
    baseline && last
      ? `- RSS: at five minutes ${mb(baseline.rss)} MB, at the end ${mb(last.rss)} MB`
      : "- RSS: the run was shorter than five minutes",
    `- SIGTERM after the load: exit ${o.stopped.code} in ${o.stopped.ms} ms`,
    `- retention (ISCHED_BENCHMARK_RETENTION=${o.retention}), rows pruned by the end: ${JSON.stringify(o.rows.at(-1)?.sample.pruned ?? {})}`,
  ];
  console.log(`\n${lines.join("\n")}`);
}

/**
 * The minute from which every table is in its steady state: messages after --retain-minutes, and
 * the replay and iTIP keys, which isched keeps for a signature's life (x=) plus the clock skew it
 * allows on x= and again on t= (5 minutes each: src/inbound/replays.ts), after that.
 */
function steadyMinute(): number {
  const keysS = Number(args["signature-seconds"]) + 1 + 2 * 300;
  return Math.ceil(Math.max(keysS / 60, Number(args["retain-minutes"])) + 1);
}

/** p99 and bytes per stored message once steady, against the end. */
function steadyLines(rows: { window: WindowReport; sample: Sample }[]): string[] {
  const from = steadyMinute();
  const steady = rows.filter((r) => r.sample.atS >= from * 60 - 5);
  if (steady.length < 2) return [`- steady state (from minute ${from}): the run ended before it`];
  const p99s = steady.map((r) => r.window.p99).sort((a, b) => a - b);
  const perMessage = steady.map((r) => r.sample.usedBytes / Math.max(1, r.sample.messages));
  const lastFive = steady.slice(-5).map((r) => r.window.p99);
  return [
    `- steady state, from minute ${from} (messages past --retain-minutes, replay and iTIP keys past x= + 10 min): p99 of each minute ${p99s[0]!.toFixed(1)}-${p99s.at(-1)!.toFixed(1)} ms (minute ${from}: ${steady[0]!.window.p99.toFixed(1)}, last five minutes' median ${lastFive.sort((a, b) => a - b)[Math.floor(lastFive.length / 2)]!.toFixed(1)}); used bytes per stored message ${Math.min(...perMessage).toFixed(0)}-${Math.max(...perMessage).toFixed(0)} (minute ${from}: ${perMessage[0]!.toFixed(0)}, end: ${perMessage.at(-1)!.toFixed(0)})`,
  ];
}

switch (args.role) {
  case "load":
    await loadRole();
    break;
  default:
    await orchestrate();
}
