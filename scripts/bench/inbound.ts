/**
 * Inbound throughput and latency: DKIM-verified (rsa-sha256, 2048 bits) invitations per second and
 * p50/p99 latency over loopback, isched with the `store` target beside a bare Bun.serve handler that
 * does only one RSA verify per request, measured in the same run; then isched at half its saturation
 * rate (p99 there); then the same load against Cyrus IMAP's own /ischedule (unsigned) as the peer
 * comparison. Target: isched reaches at least 50% of the bare rate, with p99 under 25 ms at half
 * saturation.
 *
 *   npx bun scripts/bench/inbound.ts [--seconds 10] [--warmup 2] [--concurrency 16] [--no-cyrus]
 *                                    [--sign-rate 1500] [--profile DIR] [--write BENCHMARKS.md]
 *                                    [--baseline REF]
 *
 * --sign-rate: requests per second of run time to pre-sign for isched (it must not run out);
 * --profile DIR: run isched with --cpu-prof, profiles written to DIR;
 * --baseline REF: isched from REF's sources (git archive) measured too, at saturation and at its own
 * half saturation, before this tree's isched (the verdict gives this tree's rate as a multiple of it).
 *
 * How it runs (2 cores): every server (isched as `isched serve` would start it, the bare handler,
 * Cyrus's master and its httpd children) is pinned to CPU 0 with taskset; the load
 * generator, a separate Bun process, is pinned to CPU 1. The generator keeps a fixed number of
 * keep-alive connections and writes pre-built request bytes on raw sockets (no fetch, no parsing
 * beyond the status line and Content-Length), so it needs far less CPU per request than a server.
 * Closed loop ("saturation"): each connection sends its next request as soon as the previous one is
 * answered. Fixed rate: requests are due at a constant rate and latency is counted from when a
 * request was due, so a stalled server is not hidden (no coordinated omission); the generator's
 * 1 ms timer adds up to about 1 ms (the bare handler's row at the same rate shows that floor).
 *
 * Requests: a 1.2 KB REQUEST invitation from mailto:bernard@peer.test to one user of org.test,
 * signed by peer.test (isched has its key as --peer-key, so no DNS in the loop), each with its own
 * iSchedule-Message-ID and UID so that isched's replay cache never answers. Before the runs two
 * signer processes (one per core) sign enough of them. The bare handler gets the very same bytes:
 * each request also carries X-Bench-Body-Signature, an RSA signature of the body with the same
 * key, which is the one thing the bare handler verifies (isched ignores that unsigned header).
 * The table also gives the CPU each server used and what other processes took meanwhile (a shared
 * machine disturbs the figures; such rows say so). Internal roles of this file:
 * --role sign | bare | isched | load.
 */
import { spawn, spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, sign as rsaSign, verify as rsaVerify } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBenchIsched } from "./_bench-isched.ts";
import { baselineCopy } from "./_instrument.ts";
import { httpRequest, invitationBody, ORIGINATOR } from "./_invitations.ts";
import { machineBusyMs, processCpuMs } from "./_perf.ts";

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "16" },
    "no-cyrus": { type: "boolean", default: false },
    "sign-rate": { type: "string", default: "1500" },
    write: { type: "string" },
    baseline: { type: "string" },
    // internal
    key: { type: "string" },
    out: { type: "string" },
    count: { type: "string" },
    prefix: { type: "string" },
    port: { type: "string" },
    requests: { type: "string" },
    rate: { type: "string" },
    expect: { type: "string" },
    cyrus: { type: "string" },
    cycle: { type: "boolean", default: false },
    data: { type: "string" },
    profile: { type: "string" },
    root: { type: "string" },
  },
});

const BUN = process.execPath;
const SCRIPT = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// The requests

/** Length-prefixed request bytes, one after the other. */
function writeRequests(file: string, requests: Buffer[]): void {
  const parts: Buffer[] = [];
  for (const r of requests) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(r.length);
    parts.push(length, r);
  }
  writeFileSync(file, Buffer.concat(parts));
}

function readRequests(file: string): Buffer[] {
  const data = readFileSync(file);
  const out: Buffer[] = [];
  for (let pos = 0; pos < data.length; ) {
    const length = data.readUInt32BE(pos);
    out.push(data.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
  }
  return out;
}

/** --role sign: signs --count requests (ids PREFIX-N) with --key into --out. */
async function signerRole(): Promise<void> {
  const { loadSigningKey, signRequest } = await import("../../src/dkim/sign.ts");
  const pem = readFileSync(args.key!, "utf8");
  const key = loadSigningKey(pem, "peer.test", "s1");
  const privateKey = createPrivateKey(pem);
  const requests: Buffer[] = [];
  for (let i = 0; i < Number(args.count); i++) {
    const id = `${args.prefix}-${i}`;
    const body = Buffer.from(invitationBody(`${id}@peer.test`, "mailto:ann@org.test"));
    const fields: [string, string][] = [
      ["iSchedule-Version", "1.0"],
      ["iSchedule-Message-ID", id],
      ["Originator", ORIGINATOR],
      ["Recipient", "mailto:ann@org.test"],
      ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
      ["Cache-Control", "no-cache, no-transform"],
      ["User-Agent", "isched-bench/1.0"],
    ];
    const signature = signRequest({ key, fields, body, nowMs: Date.now() });
    fields.unshift(["DKIM-Signature", signature]);
    fields.push(["X-Bench-Body-Signature", rsaSign("sha256", body, privateKey).toString("base64")]);
    requests.push(httpRequest("/.well-known/ischedule", fields, body));
  }
  writeRequests(args.out!, requests);
}

/** Cyrus gets the same invitation unsigned, to a user it has, on its /ischedule. */
function cyrusRequests(count: number, prefix: string): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i}`;
    const body = Buffer.from(invitationBody(`${id}@peer.test`, "mailto:cyrus@org.test"));
    out.push(
      httpRequest(
        "/ischedule",
        [
          ["iSchedule-Version", "1.0"],
          ["iSchedule-Message-ID", id],
          ["Originator", ORIGINATOR],
          ["Recipient", "mailto:cyrus@org.test"],
          ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
          ["Cache-Control", "no-cache, no-transform"],
          ["User-Agent", "isched-bench/1.0"],
        ],
        body,
      ),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The bare handler

/** --role bare: one RSA verify of the body per request, nothing else. */
function bareRole(): void {
  const publicKey = createPublicKey(readFileSync(args.key!, "utf8"));
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const body = new Uint8Array(await request.arrayBuffer());
      const signature = Buffer.from(request.headers.get("x-bench-body-signature") ?? "", "base64");
      const ok = rsaVerify("sha256", body, publicKey, signature);
      return new Response(ok ? "2.0;Success" : "verification failed", { status: ok ? 200 : 403 });
    },
  });
  console.log(JSON.stringify({ port: server.port }));
}

// ---------------------------------------------------------------------------------------------
// isched

/** --role isched: the benchmarked isched (_bench-isched.ts) on --port. Stops on SIGTERM. */
async function ischedRole(): Promise<void> {
  const server = await startBenchIsched({
    port: Number(args.port),
    dataDir: args.data!,
    keyFile: args.key!,
    src: args.root,
  });
  process.once("SIGTERM", async () => {
    await server.stop();
    process.exit(0);
  });
  console.log(JSON.stringify({ port: Number(new URL(server.url).port) }));
}

// ---------------------------------------------------------------------------------------------
// The load generator

interface LoadResult {
  completed: number;
  ok: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
  exhausted: boolean;
  /** CPU time of the load generator itself. */
  cpuMs: number;
}

/**
 * --role load: --concurrency keep-alive connections to --port, requests from --requests (or made
 * for --cyrus); closed loop, or --rate requests per second. Counts only requests started after the
 * warm-up and answered before the end; "ok" means status 200 and --expect in the body.
 */
async function loadRole(): Promise<void> {
  const requests = args.cyrus ? cyrusRequests(Number(args.count), args.cyrus) : readRequests(args.requests!);
  const concurrency = Number(args.concurrency);
  const rate = args.rate ? Number(args.rate) : undefined;
  const expectText = args.expect ?? "2.0;Success";
  const warmupMs = Number(args.warmup) * 1000;
  const runMs = Number(args.seconds) * 1000;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  let completed = 0;
  let ok = 0;
  let exhausted = false;
  const t0 = performance.now();
  const measureFrom = t0 + warmupMs;
  const endAt = measureFrom + runMs;
  let stopping = false;
  /** Fixed rate: the times at which requests became due and are not sent yet. */
  const due: number[] = [];
  let dueHead = 0;
  let issued = 0;
  const idle: Connection[] = [];

  class Connection {
    socket: net.Socket;
    buffer: Buffer = Buffer.alloc(0);
    startedAt = 0;
    constructor(onReady: () => void) {
      this.socket = net.connect({ port: Number(args.port), host: "127.0.0.1", noDelay: true }, onReady);
      this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
      this.socket.on("error", (e) => {
        console.error(`load: connection error: ${e.message}`);
        process.exit(1);
      });
    }
    send(startedAt: number): boolean {
      if (next >= requests.length) {
        if (!args.cycle) {
          exhausted = true;
          return false;
        }
        next = 0;
      }
      this.startedAt = startedAt;
      this.socket.write(requests[next++]!);
      return true;
    }
    onData(chunk: Buffer): void {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      const headEnd = this.buffer.indexOf("\r\n\r\n");
      if (headEnd === -1) return;
      const head = this.buffer.subarray(0, headEnd).toString("latin1");
      let bodyEnd: number;
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length) {
        bodyEnd = headEnd + 4 + Number(length[1]);
        if (this.buffer.length < bodyEnd) return;
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        const last = this.buffer.indexOf("\r\n0\r\n\r\n", headEnd);
        if (last === -1) return;
        bodyEnd = last + 7;
      } else {
        throw new Error(`load: a response without length: ${head}`);
      }
      const now = performance.now();
      const status = head.slice(9, 12);
      const good = status === "200" && this.buffer.subarray(headEnd, bodyEnd).includes(expectText);
      this.buffer = this.buffer.subarray(bodyEnd);
      if (this.startedAt >= measureFrom && now <= endAt) {
        completed++;
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (good) ok++;
        latencies.push(now - this.startedAt);
      }
      this.afterResponse(now);
    }
    afterResponse(now: number): void {
      if (stopping || now > endAt) return;
      if (rate === undefined) {
        this.send(now);
      } else if (dueHead < due.length) {
        this.send(due[dueHead++]!);
      } else {
        idle.push(this);
      }
    }
  }

  const connections: Connection[] = [];
  await Promise.all(
    Array.from(
      { length: concurrency },
      () => new Promise<void>((resolve) => connections.push(new Connection(resolve))),
    ),
  );
  const start = performance.now();
  if (rate === undefined) {
    for (const c of connections) c.send(start);
  } else {
    idle.push(...connections);
    const tick = () => {
      const now = performance.now();
      // Request i is due at start + i / rate: by now, requests 0 .. floor(elapsed * rate) are due.
      const shouldHave = Math.floor(((now - start) * rate) / 1000) + 1;
      for (; issued < shouldHave; issued++) due.push(start + (issued * 1000) / rate);
      while (idle.length > 0 && dueHead < due.length) idle.pop()!.send(due[dueHead++]!);
    };
    const timer = setInterval(tick, 1);
    setTimeout(() => clearInterval(timer), warmupMs + runMs);
  }
  await Bun.sleep(warmupMs + runMs);
  stopping = true;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const result: LoadResult = {
    completed,
    ok,
    seconds: runMs / 1000,
    rps: completed / (runMs / 1000),
    p50: pct(0.5),
    p90: pct(0.9),
    p99: pct(0.99),
    max: latencies.at(-1) ?? 0,
    statuses,
    exhausted,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  };
  console.log(JSON.stringify(result));
  for (const c of connections) c.socket.destroy();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function waitForHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`nothing answers at ${url}`);
      await Bun.sleep(50);
    }
  }
}

/** Runs a process pinned to `cpu`; resolves its stdout when it exits. */
function runPinned(cpu: number, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", String(cpu), ...argv], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${argv.join(" ")} exited with ${code}`)),
    );
  });
}

interface LoadOptions {
  port: number;
  requests?: string;
  cyrusPrefix?: string;
  count?: number;
  rate?: number;
  expect?: string;
  /** Start again at the first request when all were sent (only where replays cost the same). */
  cycle?: boolean;
}

/** CPU time (ms) used so far by these processes, all threads included. */
function cpuMsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
}

/** The processes of a process group (Cyrus's master and its httpd children). */
function groupPids(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ");
      if (Number(fields[2]) === pgid) out.push(Number(entry));
    } catch {
      // exited
    }
  }
  return out;
}

interface Measured {
  result: LoadResult;
  /** Server and everything else on the machine (not the server, not the generator, not us), in % of one core. */
  cpu: { server: number; other: number };
}

/** A load run, with the CPU the server used and what other processes took meanwhile. */
async function measure(o: LoadOptions, serverPids: () => number[]): Promise<Measured> {
  const wallStart = performance.now();
  const busyStart = machineBusyMs();
  const serverStart = cpuMsOf(serverPids());
  const selfStart = process.cpuUsage();
  const result = await load(o);
  const wallMs = performance.now() - wallStart;
  const server = cpuMsOf(serverPids()) - serverStart;
  const self = process.cpuUsage(selfStart);
  const other = machineBusyMs() - busyStart - server - result.cpuMs - (self.user + self.system) / 1000;
  const pct = (ms: number) => Math.max(0, (ms / wallMs) * 100);
  return { result, cpu: { server: pct(server), other: pct(other) } };
}

async function load(o: LoadOptions): Promise<LoadResult> {
  const argv = [
    BUN,
    SCRIPT,
    "--role",
    "load",
    "--port",
    String(o.port),
    "--concurrency",
    args.concurrency!,
    "--seconds",
    args.seconds!,
    "--warmup",
    args.warmup!,
    ...(o.requests ? ["--requests", o.requests] : []),
    ...(o.cyrusPrefix ? ["--cyrus", o.cyrusPrefix, "--count", String(o.count)] : []),
    ...(o.rate ? ["--rate", String(Math.round(o.rate))] : []),
    ...(o.expect ? ["--expect", o.expect] : []),
    ...(o.cycle ? ["--cycle"] : []),
  ];
  const out = await runPinned(1, argv);
  const result = JSON.parse(out.trim().split("\n").at(-1)!) as LoadResult;
  if (result.exhausted)
    throw new Error("load: ran out of pre-signed requests; the figures would include replays");
  return result;
}

interface Row extends Measured {
  server: string;
  load: string;
}

async function orchestrate(): Promise<void> {
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  const dir = mkdtempSync(join(tmpdir(), "isched-bench-inbound-"));
  const children: ReturnType<typeof spawn>[] = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  };
  process.on("exit", cleanup);
  const rows: Row[] = [];
  try {
    const { generateDkimKey } = await import("../../src/dkim/keygen.ts");
    const key = generateDkimKey("rsa", 2048);
    writeFileSync(join(dir, "peer.key"), key.privateKeyPem);
    writeFileSync(join(dir, "peer.pub"), key.publicKeyPem);

    // isched must never run out of fresh requests: sign for a rate above what it can do (the load
    // generator stops with an error if it runs out).
    const perSaturationRun = Number(args["sign-rate"]) * (seconds + warmup);
    const total = perSaturationRun * 2;
    console.log(`signing ${total} requests on both cores...`);
    const signedAt = performance.now();
    await Promise.all(
      [0, 1].map((cpu) =>
        runPinned(cpu, [
          BUN,
          SCRIPT,
          "--role",
          "sign",
          "--key",
          join(dir, "peer.key"),
          "--count",
          String(total / 2),
          "--prefix",
          `bench-${cpu}-${Date.now()}`,
          "--out",
          join(dir, `requests-${cpu}.bin`),
        ]),
      ),
    );
    console.log(`signed in ${((performance.now() - signedAt) / 1000).toFixed(1)} s`);
    const saturationRequests = join(dir, "requests-0.bin");
    const halfRateRequests = join(dir, "requests-1.bin");

    // The bare handler: same request bytes, one RSA verify each.
    const bare = spawn(
      "taskset",
      ["-c", "0", BUN, SCRIPT, "--role", "bare", "--key", join(dir, "peer.pub")],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    children.push(bare);
    const barePort = await new Promise<number>((resolve) =>
      bare.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()).port)),
    );
    const bareCpu = () => [bare.pid!];
    rows.push({
      server: "bare Bun.serve + 1 RSA verify",
      load: `closed loop, ${args.concurrency} connections`,
      // It has no replay cache: the same requests may go round again.
      ...(await measure({ port: barePort, requests: saturationRequests, cycle: true }, bareCpu)),
    });

    // isched with the store target and the peer's key (private-exchange); a fresh database each run.
    const ischedPort = await freePort();
    let run = 0;
    // The isched trees measured: --baseline's first, then this one (the verdict's).
    const trees: { label: string; root?: string }[] = [{ label: "" }];
    if (args.baseline)
      trees.unshift({
        label: `, ${args.baseline}`,
        root: join(baselineCopy(join(dir, "baseline"), args.baseline), "src"),
      });
    const startIsched = async (root?: string) => {
      const profile = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : [];
      const argv = [BUN, ...profile, SCRIPT, "--role", "isched", "--port", String(ischedPort)];
      if (root) argv.push("--root", root);
      argv.push("--key", join(dir, "peer.pub"), "--data", join(dir, `data-${run++}`));
      // Its log (one info line per request) goes to /dev/null, as cheap as a log file.
      const child = spawn("taskset", ["-c", "0", ...argv], { stdio: ["ignore", "pipe", "ignore"] });
      children.push(child);
      await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
      await waitForHttp(`http://127.0.0.1:${ischedPort}/.well-known/ischedule?action=capabilities`);
      return child;
    };
    const stopIsched = async (child: ReturnType<typeof spawn>) => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    };
    // Each run has a fresh database, so the trees can be sent the same requests.
    const halfRates: number[] = [];
    for (const tree of trees) {
      const isched = await startIsched(tree.root);
      const saturation = await measure({ port: ischedPort, requests: saturationRequests }, () => [
        isched.pid!,
      ]);
      rows.push({
        server: `isched serve (store)${tree.label}`,
        load: `closed loop, ${args.concurrency} connections`,
        ...saturation,
      });
      halfRates.push(saturation.result.rps / 2);
      await stopIsched(isched);
    }
    const halfRate = halfRates.at(-1)!;
    // The floor of the fixed-rate figures: loopback, the generator's 1 ms timer, a trivial server.
    rows.push({
      server: "bare Bun.serve + 1 RSA verify",
      load: `fixed rate ${Math.round(halfRate)}/s (isched's half saturation)`,
      ...(await measure(
        { port: barePort, requests: saturationRequests, cycle: true, rate: halfRate },
        bareCpu,
      )),
    });
    bare.kill("SIGKILL");
    for (const [k, tree] of trees.entries()) {
      const isched = await startIsched(tree.root);
      rows.push({
        server: `isched serve (store)${tree.label}`,
        load: `fixed rate ${Math.round(halfRates[k]!)}/s (half of saturation)`,
        ...(await measure({ port: ischedPort, requests: halfRateRequests, rate: halfRates[k]! }, () => [
          isched.pid!,
        ])),
      });
      await stopIsched(isched);
    }

    if (!args["no-cyrus"]) {
      const { startCyrus } = await import("../../test/support/cyrus.ts");
      const cyrus = await startCyrus({
        domains: ["org.test"],
        users: [{ name: "cyrus", password: "pw-cyrus" }],
      });
      try {
        const master = Number(readFileSync(join(cyrus.configDir, "run", "master.pid"), "utf8").trim());
        // httpd children are forked by master after this, so they inherit CPU 0.
        spawnSync("taskset", ["-a", "-p", "-c", "0", String(master)], { stdio: "ignore" });
        const pgid = Number(readFileSync(`/proc/${master}/stat`, "utf8").split(") ")[1]!.split(" ")[2]);
        const cyrusCpu = () => groupPids(pgid);
        const port = Number(new URL(cyrus.httpUrl).port);
        const count = 2000 * (seconds + warmup);
        const cyrusSaturation = await measure({ port, cyrusPrefix: `cyrus-${Date.now()}`, count }, cyrusCpu);
        rows.push({
          server: "Cyrus 3.6 /ischedule (unsigned)",
          load: `closed loop, ${args.concurrency} connections`,
          ...cyrusSaturation,
        });
        const cyrusHalf = cyrusSaturation.result.rps / 2;
        rows.push({
          server: "Cyrus 3.6 /ischedule (unsigned)",
          load: `fixed rate ${Math.round(cyrusHalf)}/s (half of saturation)`,
          ...(await measure(
            { port, cyrusPrefix: `cyrus-half-${Date.now()}`, count, rate: cyrusHalf },
            cyrusCpu,
          )),
        });
      } finally {
        await cyrus.stop();
      }
    }
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  report(rows);
}

function report(rows: Row[]): void {
  const cpu = /Model name:\s*(.+)/.exec(spawnSync("lscpu", { encoding: "utf8" }).stdout)?.[1]?.trim() ?? "?";
  const cores = navigator.hardwareConcurrency;
  const command = `npx bun scripts/bench/inbound.ts ${process.argv.slice(2).join(" ")}`.trim();
  const bare = rows.find((r) => r.server.startsWith("bare") && r.load.startsWith("closed"))!.result;
  // This tree's rows are named without a suffix (--baseline's end in ", REF").
  const saturation = rows.find(
    (r) => r.server === "isched serve (store)" && r.load.startsWith("closed"),
  )!.result;
  const half = rows.find((r) => r.server === "isched serve (store)" && r.load.startsWith("fixed"))!.result;
  const before = rows.find(
    (r) => r.server.startsWith("isched serve (store), ") && r.load.startsWith("closed"),
  );
  const ms = (v: number) => v.toFixed(2);
  const table = [
    "| server | load | requests/s | ok | p50 ms | p90 ms | p99 ms | max ms | server CPU | other CPU |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      ({ server, load, result: r, cpu }) =>
        `| ${server} | ${load} | ${r.rps.toFixed(0)} | ${r.ok}/${r.completed} | ${ms(r.p50)} | ${ms(r.p90)} | ${ms(r.p99)} | ${ms(r.max)} | ${cpu.server.toFixed(0)}% | ${cpu.other.toFixed(0)}% |`,
    ),
  ].join("\n");
  const ratio = saturation.rps / bare.rps;
  const verdict = [
    `isched / bare: ${(ratio * 100).toFixed(0)}% (target ≥ 50%: ${ratio >= 0.5 ? "met" : "missed"})`,
    `isched p99 at half saturation: ${ms(half.p99)} ms (target < 25 ms: ${half.p99 < 25 ? "met" : "missed"})`,
    ...(before
      ? [
          `isched / ${before.server.slice("isched serve (store), ".length)}: ${(saturation.rps / before.result.rps).toFixed(2)}x`,
        ]
      : []),
  ];
  const text = [
    `Machine: ${cpu}, ${cores} cores; Bun ${Bun.version}; ${new Date().toISOString().slice(0, 10)}.`,
    `Command: \`${command}\``,
    "",
    table,
    "",
    "server CPU: the server's processes, in % of one core, over warm-up and run; other CPU: everything",
    "else on the machine meanwhile (not the server, not the load generator): other sessions' work",
    "that competed for the cores. A row with a high other CPU is disturbed.",
    "",
    ...verdict.map((v) => `- ${v}`),
  ].join("\n");
  console.log(`\n${text}`);
  if (args.write) writeSection(args.write, text);
}

/** Replaces the body of "## Inbound (issue 3)" in the file (other sections stay as they are). */
function writeSection(file: string, text: string): void {
  let current = "";
  try {
    current = readFileSync(file, "utf8");
  } catch {
    current = "# Benchmarks\n";
  }
  const heading = "## Inbound (issue 3)";
  const start = current.indexOf(heading);
  const marker = "<!-- inbound-figures -->";
  if (start === -1 || !current.includes(marker, start)) {
    console.error(`${file}: no "${heading}" section with ${marker} lines; the figures are printed above`);
    return;
  }
  const from = current.indexOf(marker, start) + marker.length;
  const to = current.indexOf(marker, from);
  writeFileSync(file, `${current.slice(0, from)}\n${text}\n${current.slice(to)}`);
}

switch (args.role) {
  case "sign":
    await signerRole();
    break;
  case "bare":
    bareRole();
    break;
  case "isched":
    await ischedRole();
    break;
  case "load":
    await loadRole();
    break;
  default:
    await orchestrate();
}
