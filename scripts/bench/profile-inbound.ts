/**
 * Stage profile of the inbound path: microseconds per request for each stage of a DKIM-verified
 * invitation at saturation, from HTTP to the answer, with the share of the whole.
 *
 *   npx bun scripts/bench/profile-inbound.ts [--seconds 8] [--warmup 3] [--concurrency 16] [--runs 2]
 *                                            [--perf] [--cpu-prof] [--sign-rate 2500] [--keep DIR]
 *                                            [--baseline REF]
 *   npx bun scripts/bench/profile-inbound.ts --analyse DIR    (the perf tables again, from a --keep DIR)
 *
 * How it works. The same load as scripts/bench/inbound.ts (its signer and load-generator roles are
 * reused: 1.2 KB REQUEST invitations, rsa-sha256 2048, each with its own message id and UID; 16
 * keep-alive connections, closed loop; server pinned to CPU 0, generator to CPU 1), against:
 *
 * 1. the server as `isched serve --deliver store` starts it, unmodified: requests/s, CPU per request
 *    by thread (/proc/PID/task), and how much the WAL file grew per request (the WAL's bytes per
 *    request only while no checkpoint truncates it; profile-store.ts counts them exactly);
 * 2. an instrumented copy of src/ (made in a temporary folder, never in the work tree: each patch
 *    below inserts performance.now() around one stage, and the script stops with the name of the
 *    patch whose anchor text is no longer in the source). Only synchronous stretches are timed,
 *    so an await that lets other requests run never counts their work; what the instrumented code
 *    does not cover (Bun's HTTP parsing and writing, Elysia's wrapper, promise and stream plumbing,
 *    garbage collection, the JIT and checkpoint threads) is the remainder up to 1 / (requests/s) on
 *    the pinned core;
 * 3. two floors on the same core and load: a bare Bun.serve that reads the body and answers a
 *    constant, and the same behind an Elysia `.all("*")` route as isched mounts it;
 * 4. with --cpu-prof: the unmodified server once more under `bun --cpu-prof` (JSC's sampler, 1 ms):
 *    the top JavaScript functions by self and inclusive samples in the measured window;
 * 5. with --perf (needs `perf`; `apt-get install linux-perf`): `perf record -g` of the unmodified
 *    server with JSC's JITDump on, so that samples in JIT code are named after their JavaScript
 *    function; each sample is put in a stage by the innermost known function on its stack, and
 *    kernel time by its system call.
 *
 * --baseline REF: every run is also made with REF's src/ (git archive), unmodified and instrumented
 * with the same patches, alternating with this tree's, so that both are measured in one invocation.
 *
 * Bytes written: the main thread's write() bytes per request (/proc/PID/task/PID/io wchar): the WAL
 * frames of the commits, the answer on the socket and the log line on stderr; the checkpointer, a
 * thread of its own, is not in it. The WAL file's growth is no measure while checkpoints truncate it.
 *
 * The machine is shared: run it when it is quiet, use --runs to repeat, and read the "other CPU"
 * line (busy time of other processes during the run) before trusting a figure.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort } from "../../test/support/ports.ts";
import { startBenchIsched } from "./_bench-isched.ts";
import {
  baselineCopy,
  installProbes,
  instrumentedCopy,
  type Patch,
  type StageSums,
  T,
} from "./_instrument.ts";
import {
  analysePerf,
  cpuProfileTop,
  formatPerf,
  jitDumpEnv,
  machineBusyMs,
  type PerfSummary,
  processCpuMs,
  recordPerf,
  threadCpuMs,
} from "./_perf.ts";

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "3" },
    concurrency: { type: "string", default: "16" },
    runs: { type: "string", default: "2" },
    perf: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    analyse: { type: "string" },
    "sign-rate": { type: "string", default: "2500" },
    keep: { type: "string" },
    baseline: { type: "string" },
    // internal
    root: { type: "string" },
    port: { type: "string" },
    key: { type: "string" },
    data: { type: "string" },
    kind: { type: "string" },
  },
});

const BUN = process.execPath;
const SCRIPT = new URL(import.meta.url).pathname;
const REPO = join(new URL(".", import.meta.url).pathname, "..", "..");
const INBOUND = join(REPO, "scripts", "bench", "inbound.ts");

// ---------------------------------------------------------------------------------------------
// The instrumented copy

const PATCHES: Patch[] = [
  {
    file: "inbound/listener.ts",
    find: `    if (request.method === "POST") app.server?.timeout(request, idleSecondsWhileReading(o.bodyTimeoutMs));
    return o.endpoint.scheduling(
      request,
      clientAddress({
        peer: app.server?.requestIP(request)?.address ?? "",
        headers: request.headers,
        trustedProxies: o.trustedProxies,
      }),
    );`,
    replace: `    const __t = ${T};
    if (request.method === "POST") app.server?.timeout(request, idleSecondsWhileReading(o.bodyTimeoutMs));
    const __a = clientAddress({
      peer: app.server?.requestIP(request)?.address ?? "",
      headers: request.headers,
      trustedProxies: o.trustedProxies,
    });
    __ip("handler: idle timeout, client address", __t);
    return o.endpoint.scheduling(request, __a);`,
  },
  {
    file: "inbound/endpoint.ts",
    find: `      const headers = checkHeaders(request.headers, caps);
      const fields = [...request.headers.entries()];
      const declared = request.headers.get("content-length");`,
    replace: `      let __t = ${T};
      const headers = checkHeaders(request.headers, caps);
      __ip("header checks", __t);
      __t = ${T};
      const fields = [...request.headers.entries()];
      __ip("header list copy", __t);
      __t = ${T};
      const declared = request.headers.get("content-length");`,
  },
  {
    file: "inbound/endpoint.ts",
    find: `        o.receiver,
      );
      if (!reservation.ok) answer = reservation.answer;`,
    replace: `        o.receiver,
      );
      __ip("key admission (reserveKeyLookup)", __t);
      if (!reservation.ok) answer = reservation.answer;`,
  },
  {
    file: "inbound/endpoint.ts",
    find: `    o.log.log("info", "ischedule POST", {`,
    replace: `    const __tl = ${T};
    o.log.log("info", "ischedule POST", {`,
  },
  {
    file: "inbound/endpoint.ts",
    find: `      ms: Math.round(performance.now() - started),
    });
    const outcome = requestOutcome(answer);`,
    replace: `      ms: Math.round(performance.now() - started),
    });
    __ip("log line", __tl);
    const outcome = requestOutcome(answer);`,
  },
  {
    file: "inbound/endpoint.ts",
    find: `    return xmlAnswer(answer.status, answer.xml, answer.headers);
  }

  function get(`,
    replace: `    const __tr = ${T};
    const __r = xmlAnswer(answer.status, answer.xml, answer.headers);
    __ip("answer: Response object", __tr);
    return __r;
  }

  function get(`,
  },
  {
    file: "http/read-body.ts",
    find: `  const declared = request.headers.get("content-length");`,
    replace: `  let __t = ${T};
  const declared = request.headers.get("content-length");`,
  },
  {
    file: "http/read-body.ts",
    find: `    for (;;) {
      const { done, value } = await Promise.race([
        reader.read().catch((e: unknown) => {
          throw new BodyReadError(
            \`the body could not be read to its end (\${(e as Error)?.message ?? String(e)})\`,
          );
        }),
        deadline,
      ]);
      if (done) break;`,
    replace: `    for (;;) {
      const __race = Promise.race([
        reader.read().catch((e: unknown) => {
          throw new BodyReadError(
            \`the body could not be read to its end (\${(e as Error)?.message ?? String(e)})\`,
          );
        }),
        deadline,
      ]);
      __ip("body read", __t);
      const { done, value } = await __race;
      __t = ${T};
      if (done) break;`,
  },
  {
    file: "http/read-body.ts",
    find: `  } finally {
    clearTimeout(timer);
  }
  if (chunks.length === 1) return chunks[0]!;`,
    replace: `  } finally {
    clearTimeout(timer);
  }
  __ip("body read", __t);
  if (chunks.length === 1) return chunks[0]!;`,
  },
  {
    file: "inbound/receive.ts",
    find: `  const h = req.headers;
  const originatorDomain = addressDomain(h.originator) ?? "";
  const bodyHash`,
    replace: `  let __t = ${T};
  const h = req.headers;
  const originatorDomain = addressDomain(h.originator) ?? "";
  const bodyHash`,
  },
  {
    file: "inbound/receive.ts",
    find: `  let auth: Authentication;
  try {
    auth = await authenticate({`,
    replace: `  __ip("intake: body SHA-256, log fields", __t);
  let auth: Authentication;
  try {
    auth = await authenticate({`,
  },
  {
    file: "inbound/receive.ts",
    find: `  const replay = replayKeyOf({ auth, messageId: h.messageId, bodySha256: bodyHash, nowMs: ctx.nowMs() });
  if (!replay) return accept(req, ctx, { auth, logBase });
  const pending = ctx.inFlight.pending(replay.key);
  if (pending) return asReplay(await pending);
  const earlier = await storedAnswer(ctx.intake.queue, replay.key);`,
    replace: `  __t = ${T};
  const replay = replayKeyOf({ auth, messageId: h.messageId, bodySha256: bodyHash, nowMs: ctx.nowMs() });
  if (!replay) return accept(req, ctx, { auth, logBase });
  const pending = ctx.inFlight.pending(replay.key);
  if (pending) return asReplay(await pending);
  const __e = storedAnswer(ctx.intake.queue, replay.key);
  __ip("replay lookup", __t);
  const earlier = await __e;`,
  },
  {
    file: "inbound/receive.ts",
    find: `  const { auth, logBase } = o;
  const signature =`,
    replace: `  const __t = ${T};
  const { auth, logBase } = o;
  const signature =`,
  },
  {
    file: "inbound/receive.ts",
    find: `  let itip: ItipMessage;
  try {
    itip = checkItip({`,
    replace: `  __ip("intake: verdict fields", __t);
  let itip: ItipMessage;
  try {
    itip = checkItip({`,
  },
  {
    file: "intake/accept.ts",
    find: `  // 1. Checks common to every source: the iTIP rules for the Originator and the Recipients.`,
    replace: `  let __t = ${T};
  // 1. Checks common to every source: the iTIP rules for the Originator and the Recipients.`,
  },
  {
    file: "intake/accept.ts",
    find: `  // 2. Routing.`,
    replace: `  __ip("iTIP: rule checks", __t);
  __t = ${T};
  // 2. Routing.`,
  },
  {
    file: "intake/accept.ts",
    find: `  // 3. Targets that answer without I/O, before the commit.
  const decided = await ctx.dispatcher.attemptBeforeCommit(targetMessage(message), deliveries);`,
    replace: `  // 3. Targets that answer without I/O, before the commit.
  const __d = ctx.dispatcher.attemptBeforeCommit(targetMessage(message), deliveries);
  __ip("routing", __t);
  const decided = await __d;
  __t = ${T};`,
  },
  {
    file: "intake/accept.ts",
    find: `  // 4. The commit.
  let accepted: Accepted;
  try {
    accepted = await ctx.queue.accept(withAnswer, deliveries);`,
    replace: `  __ip("resend keys, answer XML", __t);
  // 4. The commit.
  let accepted: Accepted;
  try {
    __t = ${T};
    // The call runs the whole transaction when the store commits each accept alone; with group
    // commit it only queues the accept, and the batch's transaction is timed on its own (below).
    const __a = ctx.queue.accept(withAnswer, deliveries);
    __ip("commit: the accept call (alone: INSERTs + BEGIN/COMMIT; grouped: queueing it)", __t);
    accepted = await __a;`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `      const group = indexes.map((i) => deliveries[i]!);
      const attempt = await this.#deliver(target, message, group, IMMEDIATE_TIMEOUT_MS);`,
    replace: `      let __t = ${T};
      const group = indexes.map((i) => deliveries[i]!);
      const __p = this.#deliver(target, message, group, IMMEDIATE_TIMEOUT_MS);
      __ip("target (store) + AbortSignal.timeout", __t);
      const attempt = await __p;
      __t = ${T};`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `        decided.set(i, outcome);
      });
    }
    return decided;`,
    replace: `        decided.set(i, outcome);
      });
      __ip("target (store) + AbortSignal.timeout", __t);
    }
    return decided;`,
  },
  {
    file: "inbound/itip-checks.ts",
    find: `  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(i.body);`,
    replace: `  let __t = ${T};
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(i.body);
    __ip("iTIP: UTF-8 decode", __t);
    __t = ${T};`,
  },
  {
    file: "inbound/itip-checks.ts",
    find: `  const ct = i.contentType;`,
    replace: `  __ip("iTIP: parseItip", __t);
  __t = ${T};
  const ct = i.contentType;`,
  },
  {
    file: "inbound/itip-checks.ts",
    find: `    throw new IScheduleError("max-instances", \`The recurrence has more than \${caps.maxInstances} instances.\`);
  }
  return msg;`,
    replace: `    throw new IScheduleError("max-instances", \`The recurrence has more than \${caps.maxInstances} instances.\`);
  }
  __ip("iTIP: capabilities checks", __t);
  return msg;`,
  },
  {
    file: "inbound/authenticate.ts",
    find: `  const policy = await i.trust(i.originatorDomain);`,
    replace: `  let __t = ${T};
  const __p = i.trust(i.originatorDomain);
  __ip("auth: trust policy (2 SQL reads)", __t);
  const policy = await __p;
  __t = ${T};`,
  },
  {
    file: "inbound/authenticate.ts",
    find: `  const verdict = await verifyRequest(`,
    replace: `  __ip("auth: other", __t);
  const verdict = await verifyRequest(`,
  },
  {
    file: "dkim/verify.ts",
    find: `  const index = indexHeaders(request.fields);`,
    replace: `  let __t = ${T};
  const index = indexHeaders(request.fields);`,
  },
  {
    file: "dkim/verify.ts",
    find: `  const preliminary = checkTimesAndBody(sig, request.body, o);
  if (preliminary) return { ...preliminary, ...ids };

  const input = headerHashInput({
    index,
    signedHeaders: sig.signedHeaders,
    canonicalization: sig.headerCanonicalization,
    signatureWithoutData: withoutSignatureData(raw),
  });

  const query = { domain: sig.domain, selector: sig.selector, methods: sig.queryMethods, signal: o.signal };
  let lookup = await o.keys.lookup(query);
  if (!lookup.ok) return lookup;
  const endsAt = signatureEndsAt(sig, o.lifetime, o.clockSkewSeconds);
  let outcome = tryCandidates(sig, lookup.candidates, input, endsAt);`,
    replace: `  __ip("DKIM: header index, tag parse", __t);
  __t = ${T};
  const preliminary = checkTimesAndBody(sig, request.body, o);
  if (preliminary) return { ...preliminary, ...ids };
  __ip("DKIM: body hash", __t);
  __t = ${T};

  const input = headerHashInput({
    index,
    signedHeaders: sig.signedHeaders,
    canonicalization: sig.headerCanonicalization,
    signatureWithoutData: withoutSignatureData(raw),
  });
  __ip("DKIM: header hash input", __t);
  __t = ${T};

  const query = { domain: sig.domain, selector: sig.selector, methods: sig.queryMethods, signal: o.signal };
  const __lookup = o.keys.lookup(query);
  __ip("DKIM: key lookup", __t);
  let lookup = await __lookup;
  if (!lookup.ok) return lookup;
  __t = ${T};
  const endsAt = signatureEndsAt(sig, o.lifetime, o.clockSkewSeconds);
  let outcome = tryCandidates(sig, lookup.candidates, input, endsAt);
  __ip("DKIM: SHA-256 + RSA verify", __t);`,
  },
  {
    file: "store/sqlite/store.ts",
    find: `const messageId = insertMessage(db, o.message);`,
    replace: `const __t = ${T};
        const messageId = insertMessage(db, o.message);`,
  },
  {
    file: "store/sqlite/store.ts",
    find: `return { messageId, deliveryIds: this.#insertDeliveries(messageId, fresh, o.nowMs), copies };`,
    replace: `const __r = { messageId, deliveryIds: this.#insertDeliveries(messageId, fresh, o.nowMs), copies };
        __ip("  of which: the INSERTs and key claims", __t);
        return __r;`,
  },
  {
    // Group commit (only in trees that have it): the batch's transaction, once per batch; its sum
    // divided by the requests is the commit's cost per request.
    file: "store/sqlite/group-commit.ts",
    ifFileExists: true,
    find: `    let outcomes: Outcome[];
    try {`,
    replace: `    let outcomes: Outcome[];
    const __t = ${T};
    try {`,
  },
  {
    file: "store/sqlite/group-commit.ts",
    ifFileExists: true,
    find: `    // In arrival order, so callers continue in the order their writes were made.`,
    replace: `    __ip("commit: the batch's transaction (savepoints, INSERTs, BEGIN/COMMIT)", __t);
    __ip(\`  batches of \${batch.length <= 1 ? "1" : batch.length <= 4 ? "2-4" : batch.length <= 8 ? "5-8" : batch.length <= 16 ? "9-16" : "17+"} (count = batches)\`, __t);
    // In arrival order, so callers continue in the order their writes were made.`,
  },
];

// ---------------------------------------------------------------------------------------------
// Server roles

/**
 * --role server --root SRC: isched as inbound.ts's isched role starts it (store target, the
 * peer's key as private-exchange, command-line defaults), from the given src folder. SIGUSR1 resets
 * the stage sums, SIGUSR2 prints them as one JSON line; SIGTERM stops.
 */
async function serverRole(): Promise<void> {
  installProbes();
  const server = await startBenchIsched({
    port: Number(args.port),
    dataDir: args.data!,
    keyFile: args.key!,
    src: args.root!,
  });
  process.once("SIGTERM", async () => {
    await server.stop();
    process.exit(0);
  });
  console.log(JSON.stringify({ port: Number(new URL(server.url).port) }));
}

/** --role floor --kind bun|elysia: reads the body, answers a constant; nothing else. */
async function floorRole(): Promise<void> {
  const answer = () =>
    new Response("<schedule-response>2.0;Success</schedule-response>", {
      headers: { "Content-Type": "application/xml; charset=utf-8" },
    });
  const handle = async (request: Request) => {
    await request.arrayBuffer();
    return answer();
  };
  let port: number;
  if (args.kind === "elysia") {
    const { Elysia } = await import("elysia");
    const app = new Elysia().all(
      "*",
      ({ request }) => {
        const path = new URL(request.url, "http://host.invalid").pathname;
        return path === "/.well-known/ischedule" ? handle(request) : new Response("no", { status: 404 });
      },
      { parse: "none" },
    );
    app.listen({ hostname: "127.0.0.1", port: Number(args.port) });
    port = app.server!.port!;
  } else {
    port = Bun.serve({ hostname: "127.0.0.1", port: Number(args.port), fetch: handle }).port!;
  }
  // The orchestrator signals every server at the warm-up's end and the run's end.
  process.on("SIGUSR1", () => {});
  process.on("SIGUSR2", () => console.log("{}"));
  console.log(JSON.stringify({ port }));
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Started {
  child: ReturnType<typeof spawn>;
  port: number;
  lines: string[];
}

async function startPinned(argv: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn("taskset", ["-c", "0", BUN, ...argv], {
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  let buffer = "";
  const first = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl = buffer.indexOf("\n");
      while (nl !== -1) {
        lines.push(buffer.slice(0, nl));
        if (lines.length === 1) resolve(lines[0]!);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
      }
    });
    child.once("exit", (code) => reject(new Error(`${argv.join(" ")} exited with ${code}`)));
  });
  const port = JSON.parse(await first).port as number;
  return { child, port, lines };
}

async function stop(s: Started): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill("SIGTERM");
  await new Promise((r) => s.child.once("exit", r));
}

interface LoadResult {
  completed: number;
  rps: number;
  p50: number;
  p99: number;
  ok: number;
}

interface RunResult {
  load: LoadResult;
  /** CPU ms per thread still there at the end (threadCpuMs). */
  threads: Map<string, number>;
  /** CPU ms of the whole process, every thread. */
  cpuMs: number;
  /** The measured window, epoch ms. */
  fromMs: number;
  toMs: number;
  /** Busy ms of everything else on the machine during the measured seconds. */
  otherMs: number;
  walBytes?: number;
  /** write() bytes of the server's main thread in the window (WAL frames, answers, log lines). */
  mainWrittenBytes: number;
  stages?: StageSums;
}

/**
 * One closed-loop run of inbound.ts's load role against `s`; the measured window starts after the
 * warm-up, when the stage sums are reset (SIGUSR1) and CPU counters read.
 */
async function run(
  s: Started,
  o: { requests: string; cycle?: boolean; dataDir?: string },
): Promise<RunResult> {
  const warmupMs = Number(args.warmup) * 1000;
  const seconds = Number(args.seconds);
  const argv = [
    INBOUND,
    ...["--role", "load", "--port", String(s.port), "--concurrency", args.concurrency!],
    ...["--seconds", String(seconds), "--warmup", String(warmupMs / 1000), "--requests", o.requests],
    ...(o.cycle ? ["--cycle"] : []),
  ];
  const load = spawn("taskset", ["-c", "1", BUN, ...argv], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  load.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((r) => load.once("exit", () => r()));
  await Bun.sleep(warmupMs);
  s.child.kill("SIGUSR1");
  const fromMs = Date.now();
  const wal = o.dataDir ? join(o.dataDir, "isched.db-wal") : undefined;
  const walStart = wal && existsSync(wal) ? statSync(wal).size : 0;
  const threadsStart = threadCpuMs(s.child.pid!);
  const writtenStart = mainThreadWrittenBytes(s.child.pid!);
  const cpuStart = processCpuMs(s.child.pid!);
  const busyStart = machineBusyMs();
  const loadCpuStart = threadCpuMs(load.pid!);
  await Bun.sleep(seconds * 1000);
  const toMs = Date.now();
  const busy = machineBusyMs() - busyStart;
  const threadsEnd = threadCpuMs(s.child.pid!);
  const writtenEnd = mainThreadWrittenBytes(s.child.pid!);
  const cpuMs = processCpuMs(s.child.pid!) - cpuStart;
  const loadCpu = sum(threadCpuMs(load.pid!)) - sum(loadCpuStart);
  const walEnd = wal && existsSync(wal) ? statSync(wal).size : 0;
  const before = s.lines.length;
  s.child.kill("SIGUSR2");
  await done;
  const result = JSON.parse(out.trim().split("\n").at(-1)!) as LoadResult;
  for (let i = 0; i < 50 && s.lines.length === before; i++) await Bun.sleep(20);
  const stages = s.lines.length > before ? (JSON.parse(s.lines.at(-1)!).stages as StageSums) : undefined;
  const threads = new Map<string, number>();
  for (const [k, v] of threadsEnd) threads.set(k, v - (threadsStart.get(k) ?? 0));
  return {
    load: result,
    threads,
    cpuMs,
    fromMs,
    toMs,
    otherMs: Math.max(0, busy - cpuMs - loadCpu),
    walBytes: wal && walEnd >= walStart ? walEnd - walStart : undefined,
    mainWrittenBytes: writtenEnd - writtenStart,
    stages,
  };
}

/** Bytes the process's main thread has passed to write()/pwrite() so far (wchar). */
function mainThreadWrittenBytes(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/task/${pid}/io`, "utf8");
    return Number(/^wchar: (\d+)$/m.exec(io)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function sum(m: Map<string, number>): number {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
}

// ---------------------------------------------------------------------------------------------
// perf: samples put in stages by the JavaScript functions on their stacks

/** Innermost function on the stack that names a stage (JIT names, without their hash). */
const STAGE_OF_FUNCTION: [RegExp, string][] = [
  [
    /^(checkHeaders|parseRecipients|parseOriginator|parseContentType|requireAcceptedMediaType)$/,
    "header checks",
  ],
  [/^(readCappedBody|onRSDefaultController\w*|onNativePull\w*|readableStream\w*|read)$/, "body read"],
  [/^(verifyHeaderInput|tryCandidates)$/, "DKIM: SHA-256 + RSA verify"],
  [/^(checkTimesAndBody|hashChunksBase64|canonicalBody)$/, "DKIM: body hash"],
  [/^(headerHashInput|withoutSignatureData)$/, "DKIM: header hash input"],
  [/^(parseSignature|parseTagList|indexHeaders|lowerName)$/, "DKIM: header index, tag parse"],
  [/^(verifyRequest)$/, "DKIM: other"],
  [/^(effectivePolicy|getPeerPolicy)$/, "auth: trust policy (2 SQL reads)"],
  [/^(authenticate)$/, "auth: other"],
  [/^(findReplay|replayHolder|storedAnswer)$/, "replay lookup"],
  [
    /^(checkItip|parseItip|scanCalendar|validateValues|buildMessage|checkOriginator|checkRecipients)$/,
    "iTIP checks",
  ],
  [/^(route|isHosted)$/, "routing"],
  [/^(scheduleResponseXml|responseItems)$/, "answer: XML"],
  [/^(insertMessage|insertDelivery|insertAttempt|claimItipKeys)$/, "commit: the INSERTs"],
  [/^(#runNoArgs|transaction|wrapTransaction|immediate)$/, "commit: BEGIN/COMMIT (WAL write)"],
  [/^(attemptBeforeCommit|#deliver|deliver|decide)$/, "target (store) + AbortSignal.timeout"],
  [/^(log|format)$/, "log line"],
  [/^(xmlAnswer)$/, "answer: Response object"],
  [/^(receive|accept)$/, "intake: other"],
  [/^(post|scheduling)$/, "endpoint: other"],
];

// ---------------------------------------------------------------------------------------------
// The orchestrator

/** Every process started, killed if the orchestrator exits early. */
const started: Started[] = [];

async function orchestrate(): Promise<void> {
  const dir = args.keep ?? mkdtempSync(join(tmpdir(), "isched-profile-inbound-"));
  mkdirSync(dir, { recursive: true });
  process.on("exit", () => {
    for (const s of started) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  });
  try {
    const runs = Number(args.runs);
    const seconds = Number(args.seconds);
    const warmup = Number(args.warmup);
    // The trees measured: this one, and --baseline's (each unmodified and instrumented).
    const trees = [
      {
        label: "this tree",
        plain: join(REPO, "src"),
        instrumented: instrumentedCopy(join(dir, "instrumented"), PATCHES),
      },
    ];
    if (args.baseline) {
      const root = baselineCopy(join(dir, "baseline"), args.baseline);
      trees.unshift({
        label: `--baseline ${args.baseline}`,
        plain: join(root, "src"),
        instrumented: instrumentedCopy(join(dir, "baseline-instrumented"), PATCHES, root),
      });
    }
    // Fresh requests for every isched run (unmodified and instrumented, --runs times, perf once),
    // at up to --sign-rate requests/s. Every run has its own database, so a --keep folder's requests from
    // an earlier invocation with the same --seconds and --warmup are used again.
    const ischedRuns = runs * 2 * trees.length + (args.perf ? 1 : 0) + (args["cpu-prof"] ? 1 : 0);
    const perRun = Number(args["sign-rate"]) * (seconds + warmup + 1);
    const files = Array.from({ length: ischedRuns }, (_, i) => join(dir, `requests-${perRun}-${i}.bin`));
    if (!existsSync(join(dir, "peer.key"))) {
      const { generateDkimKey } = await import("../../src/dkim/keygen.ts");
      const key = generateDkimKey("rsa", 2048);
      writeFileSync(join(dir, "peer.key"), key.privateKeyPem);
      writeFileSync(join(dir, "peer.pub"), key.publicKeyPem);
    }
    const missing = files.filter((f) => !existsSync(f));
    console.log(`signing ${perRun * missing.length} requests on both cores...`);
    await Promise.all(
      [0, 1].map(async (cpu) => {
        for (const [i, file] of missing.entries()) {
          if (i % 2 !== cpu) continue;
          const argv = [
            ...["-c", String(cpu), BUN, INBOUND, "--role", "sign", "--key", join(dir, "peer.key")],
            ...["--count", String(perRun), "--prefix", `p${i}-${Date.now()}`, "--out", `${file}.part`],
          ];
          const child = spawn("taskset", argv, { stdio: "inherit" });
          const code = await new Promise((r) => child.once("exit", r));
          if (code !== 0) throw new Error("profile-inbound: a signer failed");
          renameSync(`${file}.part`, file);
        }
      }),
    );
    let fileIndex = 0;
    const ischedRun = async (root: string, label: string, env: Record<string, string> = {}) => {
      const data = join(dir, `data-${label}-${fileIndex}`);
      const s = await startPinned(
        [SCRIPT, "--role", "server", "--root", root, "--port", String(await freePort())].concat([
          "--key",
          join(dir, "peer.pub"),
          "--data",
          data,
        ]),
        env,
      );
      started.push(s);
      const r = await run(s, { requests: files[fileIndex++]!, dataDir: data });
      return { s, r };
    };
    const results = trees.map(() => ({ plain: [] as RunResult[], instrumented: [] as RunResult[] }));
    for (let i = 0; i < runs; i++) {
      // Alternating (B A A B ...), so that a change of the machine's load falls on both trees alike.
      const order = trees.map((_, k) => k);
      if (i % 2 === 1) order.reverse();
      for (const k of order) {
        const a = await ischedRun(trees[k]!.plain, "plain");
        await stop(a.s);
        results[k]!.plain.push(a.r);
        const b = await ischedRun(trees[k]!.instrumented, "instrumented");
        await stop(b.s);
        results[k]!.instrumented.push(b.r);
        console.log(
          `run ${i + 1}, ${trees[k]!.label}: unmodified ${a.r.load.rps.toFixed(0)}/s, instrumented ${b.r.load.rps.toFixed(0)}/s`,
        );
      }
    }
    const floors: { label: string; r: RunResult }[] = [];
    for (const kind of ["bun", "elysia"]) {
      const s = await startPinned([SCRIPT, "--role", "floor", "--kind", kind, "--port", "0"]);
      started.push(s);
      floors.push({
        label:
          kind === "bun" ? "bare Bun.serve, body read, constant answer" : "the same behind Elysia .all('*')",
        r: await run(s, { requests: files[0]!, cycle: true }),
      });
      await stop(s);
    }
    let perfSummary: PerfSummary | undefined;
    if (args.perf) perfSummary = await perfRun(dir, files[fileIndex++]!);
    let cpuProfile: string[] | undefined;
    if (args["cpu-prof"]) cpuProfile = await cpuProfileRun(dir, files[fileIndex++]!);
    for (const [k, tree] of trees.entries())
      report({
        tree: tree.label,
        ...results[k]!,
        floors: k === trees.length - 1 ? floors : [],
        perf: k === trees.length - 1 ? perfSummary : undefined,
        cpuProfile: k === trees.length - 1 ? cpuProfile : undefined,
      });
  } finally {
    for (const s of started) await stop(s);
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The unmodified server under `bun --cpu-prof`; its top functions in the measured window. */
async function cpuProfileRun(dir: string, requests: string): Promise<string[]> {
  const profileDir = join(dir, "cpu-prof");
  rmSync(profileDir, { recursive: true, force: true });
  const data = join(dir, "data-cpu-prof");
  const s = await startPinned([
    ...[
      "--cpu-prof",
      `--cpu-prof-dir=${profileDir}`,
      SCRIPT,
      "--role",
      "server",
      "--root",
      join(REPO, "src"),
    ],
    ...["--port", String(await freePort()), "--key", join(dir, "peer.pub"), "--data", data],
  ]);
  started.push(s);
  const r = await run(s, { requests, dataDir: data });
  await stop(s);
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"))!;
  return cpuProfileTop({ file: join(profileDir, file), fromMs: r.fromMs, toMs: r.toMs, top: 25 });
}

async function perfRun(dir: string, requests: string): Promise<PerfSummary> {
  const jitDir = join(dir, "jit");
  rmSync(jitDir, { recursive: true, force: true });
  mkdirSync(jitDir, { recursive: true });
  const data = join(dir, "data-perf");
  const s = await startPinned(
    [SCRIPT, "--role", "server", "--root", join(REPO, "src"), "--port", String(await freePort())].concat([
      "--key",
      join(dir, "peer.pub"),
      "--data",
      data,
    ]),
    jitDumpEnv(jitDir),
  );
  started.push(s);
  const perfData = join(dir, "perf.data");
  const measured = run(s, { requests, dataDir: data });
  await Bun.sleep(Number(args.warmup) * 1000);
  await recordPerf({ pid: s.child.pid!, seconds: Number(args.seconds), out: perfData });
  await measured;
  await stop(s);
  return analysePerf({ perfData, jitDir, pid: s.child.pid!, stages: STAGE_OF_FUNCTION });
}

function report(o: {
  tree: string;
  plain: RunResult[];
  instrumented: RunResult[];
  floors: { label: string; r: RunResult }[];
  perf?: PerfSummary;
  cpuProfile?: string[];
}): void {
  const seconds = Number(args.seconds);
  const fmt = (v: number, d = 0) => v.toFixed(d);
  const lines: string[] = [];
  lines.push(`## ${o.tree}`, "");
  lines.push(
    `Machine: ${navigator.hardwareConcurrency} cores; Bun ${Bun.version}; ${new Date().toISOString()}`,
  );
  lines.push(`Command: npx bun scripts/bench/profile-inbound.ts ${process.argv.slice(2).join(" ")}`);
  lines.push("");
  lines.push(
    "| run | requests/s | p50 ms | p99 ms | server CPU µs/request (all threads) | main thread | other threads | main thread write() bytes/request | WAL file growth, bytes/request | other CPU on the machine |",
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  const row = (label: string, r: RunResult) => {
    const n = r.load.completed;
    const all = (r.cpuMs * 1000) / n;
    const main = ((r.threads.get("main thread") ?? 0) * 1000) / n;
    lines.push(
      `| ${label} | ${fmt(r.load.rps)} | ${fmt(r.load.p50, 2)} | ${fmt(r.load.p99, 2)} | ${fmt(all)} | ${fmt(main)} | ${fmt(all - main)} | ${fmt(r.mainWrittenBytes / n)} | ${r.walBytes === undefined ? "-" : fmt(r.walBytes / n)} | ${fmt((r.otherMs / (seconds * 1000)) * 100)}% |`,
    );
  };
  for (const [i, r] of o.plain.entries()) row(`isched, unmodified (${i + 1})`, r);
  for (const [i, r] of o.instrumented.entries()) row(`isched, instrumented (${i + 1})`, r);
  for (const f of o.floors) row(f.label, f.r);
  lines.push("");
  lines.push(
    "Threads of the unmodified server, CPU µs per request (threads there at both ends of the window; one that ended in between shows less, even below zero; the columns above count it):",
  );
  const threadNames = new Set(o.plain.flatMap((r) => [...r.threads.keys()]));
  for (const t of threadNames) {
    const per = o.plain.map((r) => ((r.threads.get(t) ?? 0) * 1000) / r.load.completed);
    if (Math.max(...per) >= 1) lines.push(`- ${t}: ${per.map((v) => fmt(v)).join(", ")} µs`);
  }

  // The stage table: each instrumented run's CPU sums per request, then the mean over runs; the
  // reference is the server's CPU per request, all threads, in the same run.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const stages = new Map<string, { cpu: number[]; wall: number[]; count: number[] }>();
  for (const r of o.instrumented) {
    const n = r.stages?.["header checks"]?.count ?? r.load.completed;
    for (const [k, v] of Object.entries(r.stages ?? {})) {
      const e = stages.get(k) ?? { cpu: [], wall: [], count: [] };
      e.cpu.push(v.cpuUs / n);
      e.wall.push(v.wallUs / n);
      // Counted stages (group commit's batches by size): how many per 1,000 requests.
      e.count.push((v.count / n) * 1000);
      stages.set(k, e);
    }
  }
  const serverUs = mean(o.instrumented.map((r) => (r.cpuMs * 1000) / r.load.completed));
  const mainUs = mean(
    o.instrumented.map((r) => ((r.threads.get("main thread") ?? 0) * 1000) / r.load.completed),
  );
  const timedUs = [...stages.entries()]
    .filter(([k]) => !k.startsWith("  "))
    .reduce((a, [, v]) => a + mean(v.cpu), 0);
  const share = (us: number) => `${fmt((us / serverUs) * 100, 1)}%`;
  lines.push("");
  lines.push(
    `Stages (instrumented copy, closed loop, ${args.concurrency} connections; server CPU ${fmt(serverUs)} µs per request, all threads):`,
  );
  lines.push("");
  lines.push("| stage | CPU µs/request (each run) | mean | share | wall µs (mean) |");
  lines.push("|---|---:|---:|---:|---:|");
  for (const [k, v] of stages) {
    if (k.includes("(count = batches)")) {
      lines.push(
        `| ${k.replace("(count = batches)", "per 1,000 requests")} | ${v.count.map((x) => fmt(x, 1)).join(", ")} | | | |`,
      );
      continue;
    }
    lines.push(
      `| ${k} | ${v.cpu.map((x) => fmt(x, 1)).join(", ")} | ${fmt(mean(v.cpu), 1)} | ${share(mean(v.cpu))} | ${fmt(mean(v.wall), 1)} |`,
    );
  }
  const untimedMain = mainUs - timedUs;
  const otherThreads = serverUs - mainUs;
  lines.push(`| **timed, total** | | **${fmt(timedUs, 1)}** | ${share(timedUs)} | |`);
  lines.push(
    `| main thread, not timed: Bun's HTTP, Elysia, promises and streams, GC | | ${fmt(untimedMain, 1)} | ${share(untimedMain)} | |`,
  );
  lines.push(
    `| other threads: JIT compiler, WAL checkpointer, allocator | | ${fmt(otherThreads, 1)} | ${share(otherThreads)} | |`,
  );
  if (o.perf) lines.push("", ...formatPerf(o.perf, "perf, unmodified server"));
  if (o.cpuProfile) lines.push("", "bun --cpu-prof, unmodified server:", "", ...o.cpuProfile);
  console.log(`\n${lines.join("\n")}`);
}

switch (args.role) {
  case "server":
    await serverRole();
    break;
  case "floor":
    await floorRole();
    break;
  default:
    if (args.analyse) {
      // JSC names its dump jit-<thread>-<pid>.dump.
      const dump = readdirSync(join(args.analyse, "jit")).find((f) => f.endsWith(".dump"))!;
      const pid = Number(/-(\d+)\.dump$/.exec(dump)![1]);
      const perfData = join(args.analyse, "perf.data");
      const summary = analysePerf({
        perfData,
        jitDir: join(args.analyse, "jit"),
        pid,
        stages: STAGE_OF_FUNCTION,
      });
      console.log(formatPerf(summary, "perf, unmodified server").join("\n"));
    } else await orchestrate();
}
