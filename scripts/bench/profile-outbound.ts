/**
 * Where isched A's time goes when it drains its queue over iSchedule (the outbound benchmark's
 * drain), and whether its HTTPS client keeps its connections and TLS context between requests.
 *
 *   npx bun scripts/bench/profile-outbound.ts [--messages 3000] [--runs 2] [--perf]
 *                                             [--fetch-requests 2000] [--keep DIR]
 *                                             [--baseline REF] [--trust ca-file|system]
 *                                             [--no-instrumented] [--no-fetch]
 *                                             [--receiver sink|isched]
 *
 * --baseline REF: each round also drains with A from REF's src/ (git archive), alternating with this
 * tree's, for a before/after in one session. --trust system: A trusts B's certificate the way
 * production trusts a public one (the test CA in Bun's default store, no --ca-file; see
 * _two-ischeds.ts), instead of with --ca-file. --receiver isched: the drains send to a real isched B
 * (the store target, on CPU 1) instead of the counting sink, which leaves POSTs and connections
 * uncounted; the fetch client's figures (2.) still use the sink.
 *
 * 1. Drain: the outbound benchmark's set-up (scripts/bench/_two-ischeds.ts: dnsmasq with B's SRV
 *    record, a test CA, A signing with RSA-2048, `--ca-file`), --messages one-recipient messages
 *    pre-filled in A's queue, A (`isched serve`, command-line defaults) pinned to CPU 0, sending to a
 *    counting sink on CPU 1 that answers 2.0;Success with B's capabilities and certificate and
 *    verifies nothing (so A is the bottleneck). Reports messages/s, A's CPU per message by thread,
 *    and the TCP connections the sink saw (the same client port = the same connection). Each of
 *    --runs rounds drains once with A as shipped and once with A from an instrumented copy of src/
 *    (_instrument.ts: CPU time of the synchronous stretches of leasing, reading the message, building
 *    and signing the request, peerFetch and the fetch() call, parsing the answer, completing).
 *    With --perf, one more drain runs A with JSC's JITDump under `perf record -g`: its main thread's
 *    samples sorted into stages by function (native code without frame pointers, such as
 *    BoringSSL's RSA, loses its JavaScript callers and lands in "native").
 * 2. The HTTPS client alone: --fetch-requests POSTs of a 2 KB body to the same sink, 8 at a time, the
 *    way peerFetch sends them (the IP address as URL host, the name as serverName), with the CA list
 *    peerFetch passes under --ca-file (Bun's default roots plus the test CA, 265 certificates), with the
 *    test CA alone, and with no CA option at all but verification off: CPU per request (all threads)
 *    and connections opened. A per-request TLS context would show as CPU that grows with the CA list
 *    at the same number of connections.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
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
  formatPerf,
  jitDumpEnv,
  machineBusyMs,
  type PerfSummary,
  perfAvailable,
  processCpuMs,
  recordPerf,
  threadCpuMs,
} from "./_perf.ts";
import {
  BUN,
  captureCapabilities,
  machineLine,
  prefillOutbound,
  prepareTwoOrgs,
  spawnIsched,
  type TwoOrgs,
  waitFor,
  waitForPort,
} from "./_two-ischeds.ts";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    role: { type: "string" },
    messages: { type: "string", default: "3000" },
    "fetch-requests": { type: "string", default: "2000" },
    perf: { type: "boolean", default: false },
    runs: { type: "string", default: "2" },
    "no-fetch": { type: "boolean", default: false },
    "no-instrumented": { type: "boolean", default: false },
    baseline: { type: "string" },
    trust: { type: "string", default: "ca-file" },
    receiver: { type: "string", default: "sink" },
    keep: { type: "string" },
    // internal
    port: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    ca: { type: "string" },
    capabilities: { type: "string" },
    variant: { type: "string" },
    requests: { type: "string" },
    root: { type: "string" },
  },
});

const SCRIPT = new URL(import.meta.url).pathname;

/** The main thread's stages of a sending isched (innermost named function decides). */
const OUTBOUND_STAGES: [RegExp, string][] = [
  [/^(signRequest|signHeaderInput|scheduleRequest|sign)$/, "DKIM signing (RSA-2048)"],
  [/^(readAnswer|parseScheduleResponse|parseXml|readScheduleResponse)$/, "answer parsing"],
  [/^(trustStore|getCACertificates)$/, "CA list for the request"],
  [/^(peerFetch|attemptOne|readCapped|fetch|checkedAddresses|abortable)$/, "HTTP request (peerFetch, fetch)"],
  [/^(discover|get|noteSerial|addresses)$/, "discovery, capabilities cache"],
  [/^(leaseDue|lease|leaseIds|#lease\w*)$/, "queue: lease"],
  [
    /^(complete|completeLeased|insertAttempt|#complete\w*|#record\w*|transaction|wrapTransaction)$/,
    "queue: complete (commit)",
  ],
  [/^(getMessageRow|messageRow|targetMessage|fromRaw|parsedOnce|readStoredItip)$/, "read the stored message"],
  [/^(toDomain|viaTarget|sendGroup|planGroups|messageFacts|postSchedule|deliver)$/, "remote target logic"],
  [/^(log|format)$/, "log line"],
  [/^(#run|#attempt|#deliver|#startGroup|#fill\w*)$/, "dispatcher"],
];

// ---------------------------------------------------------------------------------------------
// The instrumented copy (see _instrument.ts): synchronous stretches of the sending path

const PATCHES: Patch[] = [
  // The synchronous parts only (the SQLite store answers within the call): a span across the
  // awaits would take in the microtasks of other attempts that run meanwhile.
  {
    file: "delivery/dispatcher.ts",
    find: `    const next = worthLeasing ? await this.#o.queue.nextDue() : undefined;`,
    replace: `    const __t = ${T};
    const __n = worthLeasing ? this.#o.queue.nextDue() : undefined;
    __ip("queue: next due (sync part)", __t);
    const next = await __n;`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `      ({ leased, refused } = await this.#o.queue.leaseFitting({`,
    replace: `      const __l = ${T};
      const __lp = this.#o.queue.leaseFitting({`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `        rotate,
      }));`,
    replace: `        rotate,
      });
      __ip("queue: lease (sync part)", __l);
      ({ leased, refused } = await __lp);`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `    // #fits counted the room; a group that finds none anyway (the global limit) is given back.`,
    replace: `    const __g = ${T};`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `    const busy = leased.length > 0 && leased.length >= free && released.length === 0;
    if (waitForBatch) return HELD_BACK_MS - (now - held.atMs);
    return busy ? 0 : this.#idleDelay(released.length > 0 || refused > 0);`,
    replace: `    const busy = leased.length > 0 && leased.length >= free && released.length === 0;
    __ip("dispatcher: grouping, starting attempts (sync part), release", __g);
    if (waitForBatch) return HELD_BACK_MS - (now - held.atMs);
    const __s = ${T};
    const __mp = busy ? 0 : this.#idleDelay(released.length > 0 || refused > 0);
    __ip("queue: next due (idle delay; sync part)", __s);
    return await __mp;`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `      const message = await this.#o.queue.messageRow(first.messageId);`,
    replace: `      const __m = ${T};
      const __mp = this.#o.queue.messageRow(first.messageId);
      __ip("read the stored message (SELECT; sync part)", __m);
      const message = await __mp;`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `    // A peer writes these: a 500 KB description must not become a 500 KB reason in every row.`,
    replace: `    const __r = ${T};
    // A peer writes these: a 500 KB description must not become a 500 KB reason in every row.`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `    return { deliveryId: d.id, attempt: record, next };`,
    replace: `    __ip("policy: decide, attempt row", __r);
    return { deliveryId: d.id, attempt: record, next };`,
  },
  {
    file: "delivery/dispatcher.ts",
    find: `        await this.#o.queue.completeMany(this.#o.owner, records);`,
    // The synchronous part only: the store's group commit writes the batch at the end of the turn
    // (timed below), and what runs meanwhile is not the completion's.
    replace: `        const __c = ${T};
        const __p = this.#o.queue.completeMany(this.#o.owner, records);
        __ip("queue: complete (sync part)", __c);
        await __p;`,
  },
  {
    file: "store/sqlite/group-commit.ts",
    find: `    let outcomes: Outcome[];`,
    replace: `    const __f = ${T};
    let outcomes: Outcome[];`,
  },
  {
    file: "store/sqlite/group-commit.ts",
    find: `    // In arrival order, so callers continue in the order their writes were made.`,
    replace: `    __ip("queue: group commit (leases, attempt rows, COMMIT)", __f);
    // In arrival order, so callers continue in the order their writes were made.`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `      found = await untilAborted(o.discovery.discover(domain), signal);`,
    replace: `      const __t = ${T};
      const __p = o.discovery.discover(domain);
      __ip("discovery (cached; sync part)", __t);
      found = await untilAborted(__p, signal);`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `    const kept = readSendFacts(message.sendFacts);`,
    replace: `    const __k = ${T};
    const kept = readSendFacts(message.sendFacts);
    __ip("iTIP facts kept at intake (read)", __k);`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `    const read = kept === undefined ? itip() : undefined;`,
    replace: `    const __r = ${T};
    const read = kept === undefined ? itip() : undefined;
    __ip("stored iTIP (parsed once, cached)", __r);`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `        caps = await untilAborted(o.capabilities.get(targetUrl, scheme), signal);`,
    replace: `        const __t = ${T};
        const __p = o.capabilities.get(targetUrl, scheme);
        __ip("capabilities (cached; sync part)", __t);
        caps = await untilAborted(__p, signal);`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `        build: (url) =>
          scheduleRequest({
            url,
            originator: message.originator,
            recipients: group,
            method: sending.method,
            component: sending.component,
            body,
            messageId,
            userAgent,
            key,
            nowMs: now(),
          }),`,
    replace: `        build: (url) => {
          const __t = ${T};
          const __q = scheduleRequest({
            url,
            originator: message.originator,
            recipients: group,
            method: sending.method,
            component: sending.component,
            body,
            messageId,
            userAgent,
            key,
            nowMs: now(),
          });
          __ip("request: headers + DKIM signature", __t);
          return __q;
        },`,
  },
  {
    file: "outbound/remote-target.ts",
    find: `      const answer = readAnswer({
        response: result.response,
        url: result.url,
        recipients: group,
        nowMs: now(),
      });`,
    replace: `      const __a = ${T};
      const answer = readAnswer({
        response: result.response,
        url: result.url,
        recipients: group,
        nowMs: now(),
      });
      __ip("answer parsing (XML)", __a);`,
  },
  {
    file: "dkim/crypto.ts",
    find: `  return sign(hashOf(algorithm), data, privateKey);`,
    replace: `  const __t = ${T};
  const __s = sign(hashOf(algorithm), data, privateKey);
  __ip("  of which: RSA sign (crypto.sign)", __t);
  return __s;`,
  },
  {
    file: "net/peer-fetch.ts",
    find: `  const started = performance.now();
  const url = parsePeerUrl(req.url, req.allowHttp === true);`,
    replace: `  const __t = ${T};
  const started = performance.now();
  const url = parsePeerUrl(req.url, req.allowHttp === true);`,
  },
  {
    file: "net/peer-fetch.ts",
    find: `    const addresses = await checkedAddresses(host, o, total.signal);`,
    replace: `    const __p = checkedAddresses(host, o, total.signal);
    __ip("peerFetch: URL, timers, address (sync part)", __t);
    const addresses = await __p;`,
  },
  {
    file: "net/peer-fetch.ts",
    find: `  const secure = url.protocol === "https:";
  const target = new URL(url.href);`,
    replace: `  const __t = ${T};
  const secure = url.protocol === "https:";
  const target = new URL(url.href);`,
  },
  {
    file: "net/peer-fetch.ts",
    find: `    const res = await fetch(target, init);
    connected = true;`,
    replace: `    __ip("peerFetch: headers, TLS options", __t);
    const __f = ${T};
    const __p = fetch(target, init);
    __ip("fetch() call (sync part)", __f);
    const res = await __p;
    connected = true;`,
  },
];

// ---------------------------------------------------------------------------------------------
// The counting sink

/**
 * --role sink: B's certificate, its captured capabilities for GET, 2.0;Success for every Recipient
 * of a POST; counts POSTs and distinct client ports (connections). SIGUSR2 prints the counts.
 */
async function sinkRole(): Promise<void> {
  const { scheduleResponseXml } = await import("../../src/ischedule/xml-writer.ts");
  const caps = JSON.parse(readFileSync(args.capabilities!, "utf8")) as {
    body: string;
    headers: Record<string, string>;
  };
  let posts = 0;
  const ports = new Set<number>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: Number(args.port),
    tls: { cert: readFileSync(args.cert!, "utf8"), key: readFileSync(args.key!, "utf8") },
    async fetch(request, srv) {
      const peer = srv.requestIP(request);
      if (peer) ports.add(peer.port);
      if (request.method === "GET") return new Response(caps.body, { headers: caps.headers });
      await request.arrayBuffer();
      posts++;
      const recipients = (request.headers.get("recipient") ?? "").split(",").map((r) => r.trim());
      return new Response(
        scheduleResponseXml(recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" }))),
        {
          headers: {
            "Content-Type": "application/xml; charset=utf-8",
            "iSchedule-Version": "1.0",
            "iSchedule-Capabilities": caps.headers["ischedule-capabilities"] ?? "1",
          },
        },
      );
    },
  });
  process.on("SIGUSR2", () => console.log(JSON.stringify({ posts, connections: ports.size })));
  console.log(JSON.stringify({ port: server.port }));
}

interface Child {
  child: ReturnType<typeof spawn>;
  lines: string[];
  firstLine: Promise<string>;
}

function spawnRole(cpu: number, argv: string[]): Child {
  const child = spawn("taskset", ["-c", String(cpu), BUN, SCRIPT, ...argv], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let buffer = "";
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        lines.push(buffer.slice(0, nl));
        if (lines.length === 1) resolve(lines[0]!);
        buffer = buffer.slice(nl + 1);
      }
    });
    child.once("exit", (code) => reject(new Error(`${argv.join(" ")} exited with ${code}`)));
  });
  return { child, lines, firstLine };
}

async function counts(sink: Child): Promise<{ posts: number; connections: number }> {
  const before = sink.lines.length;
  sink.child.kill("SIGUSR2");
  await waitFor("the sink's counts", () => sink.lines.length > before, 5000, 10);
  return JSON.parse(sink.lines.at(-1)!);
}

// ---------------------------------------------------------------------------------------------
// 1. The drain

interface DrainProfile {
  mode: DrainMode;
  /** Which source A ran from (this tree, or --baseline). */
  label: string;
  messages: number;
  perSecond: number;
  /** A's CPU per message, all threads (ended ones included). */
  cpuUsPerMessage: number;
  /** Per thread still there at the end. */
  threadsUsPerMessage: Map<string, number>;
  otherCpuPct: number;
  posts: number;
  connections: number;
  perf?: PerfSummary;
  stages?: StageSums;
}

/**
 * plain: A from a source folder as it is (this tree's src/, or --baseline's); instrumented: A from
 * the instrumented copy; perf: this tree's A under perf.
 */
type DrainMode = "plain" | "instrumented" | "perf";

/**
 * --role isched --root SRC -- FLAGS: `isched serve FLAGS` from the given src folder (an
 * instrumented copy) with the probes installed.
 */
async function ischedRole(): Promise<void> {
  installProbes();
  const { run } = await import(join(args.root!, "cli/main.ts"));
  await run(["serve", ...positionals]);
}

async function drain(
  orgs: TwoOrgs,
  dir: string,
  capabilitiesFile: string,
  o: { mode: DrainMode; src: string; label: string },
): Promise<DrainProfile> {
  const { Database } = await import("bun:sqlite");
  const messages = Number(args.messages);
  mkdirSync(dir, { recursive: true });
  const dataA = join(dir, "a-data");
  // With the source A runs from (its schema, what its intake stores with each message); the
  // instrumented copy's probes exist only in A's process: its fill is this tree's, the same code.
  await prefillOutbound({
    dataDir: dataA,
    messages,
    recipients: (i) => [`mailto:user${i}@b.test`],
    ...(o.mode === "plain" ? { src: o.src } : {}),
  });
  // --receiver isched: a real isched B (store target) on CPU 1, whose POSTs and connections go uncounted.
  const receiver =
    args.receiver === "isched"
      ? spawnIsched({ cpu: 1, flags: orgs.flagsB({ dataDir: join(dir, "b-data") }) })
      : undefined;
  const sink = receiver
    ? undefined
    : spawnRole(1, [
        ...["--role", "sink", "--port", String(orgs.portB), "--cert", orgs.certB.certFile],
        ...["--key", orgs.certB.keyFile, "--capabilities", capabilitiesFile],
      ]);
  if (sink) await sink.firstLine;
  else await waitForPort(orgs.portB);
  const receiverPid = receiver?.pid ?? sink!.child.pid!;
  const jitDir = join(dir, "jit");
  mkdirSync(jitDir, { recursive: true });
  let a: { pid: number; stop: () => Promise<void>; child: ReturnType<typeof spawn>; lines?: string[] };
  if (o.mode !== "perf") {
    const c = spawnRole(0, ["--role", "isched", "--root", o.src, "--", ...orgs.flagsA({ dataDir: dataA })]);
    a = {
      pid: c.child.pid!,
      child: c.child,
      lines: c.lines,
      stop: async () => {
        if (c.child.exitCode !== null || c.child.signalCode !== null) return;
        c.child.kill("SIGTERM");
        await new Promise((r) => c.child.once("exit", r));
      },
    };
  } else {
    // spawnIsched passes this process's environment on: JITDump for A only.
    const env = o.mode === "perf" ? jitDumpEnv(jitDir) : {};
    Object.assign(process.env, env);
    const p = spawnIsched({ cpu: 0, flags: orgs.flagsA({ dataDir: dataA }) });
    for (const k of Object.keys(env)) delete process.env[k];
    a = { pid: p.pid, child: p.child as ReturnType<typeof spawn>, stop: () => p.stop() };
  }
  try {
    await waitFor("A's database", () => Bun.file(join(dataA, "isched.db-wal")).size > 0, 30_000);
    const db = new Database(join(dataA, "isched.db"), { readonly: true });
    const done = db.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM deliveries WHERE state NOT IN ('queued', 'in-flight')",
    );
    // Measure from the first completions (start-up and the first discovery left out) to the end.
    await waitFor("A's first deliveries", () => done.get()!.n >= 50, 60_000, 5);
    // Only the instrumented A has probes (and a SIGUSR1 handler: to `isched serve` it is fatal).
    if (a.lines) a.child.kill("SIGUSR1");
    const first = done.get()!.n;
    const t0 = performance.now();
    const threads0 = threadCpuMs(a.pid);
    const cpu0 = processCpuMs(a.pid);
    const busy0 = machineBusyMs();
    const sink0 = processCpuMs(receiverPid);
    let perf: Promise<void> | undefined;
    const perfData = join(dir, "perf.data");
    if (o.mode === "perf") perf = recordPerf({ pid: a.pid, seconds: 4, out: perfData });
    await waitFor(
      `${messages} final deliveries at A`,
      () => {
        if (a.child.exitCode !== null || a.child.signalCode !== null) throw new Error("isched A exited");
        return done.get()!.n >= messages;
      },
      30 * 60_000,
      20,
    );
    const seconds = (performance.now() - t0) / 1000;
    const threads1 = threadCpuMs(a.pid);
    const cpuMs = processCpuMs(a.pid) - cpu0;
    const busy = machineBusyMs() - busy0;
    const sinkMs = processCpuMs(receiverPid) - sink0;
    let stages: StageSums | undefined;
    if (a.lines) {
      const before = a.lines.length;
      a.child.kill("SIGUSR2");
      await waitFor(
        "A's stage sums",
        () => a.lines!.slice(before).some((l) => l.startsWith('{"stages"')),
        5000,
        10,
      );
      stages = JSON.parse(a.lines.slice(before).find((l) => l.startsWith('{"stages"'))!).stages;
    }
    await perf;
    db.close();
    const n = messages - first;
    const threadsUsPerMessage = new Map<string, number>();
    for (const [k, v] of threads1) threadsUsPerMessage.set(k, ((v - (threads0.get(k) ?? 0)) * 1000) / n);
    const c = sink ? await counts(sink) : { posts: Number.NaN, connections: Number.NaN };
    return {
      mode: o.mode,
      label: o.label,
      messages: n,
      perSecond: n / seconds,
      cpuUsPerMessage: (cpuMs * 1000) / n,
      threadsUsPerMessage,
      otherCpuPct: (Math.max(0, busy - cpuMs - sinkMs) / (seconds * 1000)) * 100,
      ...c,
      perf:
        o.mode === "perf"
          ? analysePerf({ perfData, jitDir, pid: a.pid, stages: OUTBOUND_STAGES })
          : undefined,
      stages,
    };
  } finally {
    await a.stop();
    sink?.child.kill("SIGKILL");
    await receiver?.stop();
  }
}

function _sumOf(m: Map<string, number>): number {
  let t = 0;
  for (const v of m.values()) t += v;
  return t;
}

// ---------------------------------------------------------------------------------------------
// 2. The HTTPS client alone

/**
 * --role fetch --variant V: --requests POSTs to 127.0.0.1:--port, 8 in flight, as peerFetch sends
 * them; prints CPU µs per request of this whole process (all threads, after 200 warm-up requests).
 */
async function fetchRole(): Promise<void> {
  const tls = await import("node:tls");
  const ca = readFileSync(args.ca!, "utf8");
  const variant = args.variant!;
  const tlsOptions =
    variant === "ca-list"
      ? { serverName: "isched.b.test", ca: [...tls.getCACertificates("default"), ca] }
      : variant === "one-ca"
        ? { serverName: "isched.b.test", ca: [ca] }
        : { serverName: "isched.b.test", rejectUnauthorized: false };
  const body = new Uint8Array(2048).fill(65);
  const url = `https://127.0.0.1:${args.port}/.well-known/ischedule`;
  const post = async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "text/calendar", Recipient: "mailto:u@b.test", host: "isched.b.test" },
      body,
      tls: tlsOptions,
      redirect: "manual",
      decompress: false,
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  const total = Number(args.requests);
  const inFlight = async (count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < count) await post();
      }),
    );
  };
  await inFlight(200);
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await inFlight(total);
  const u = process.cpuUsage(u0);
  console.log(
    JSON.stringify({
      cpuUsPerRequest: (u.user + u.system) / total,
      perSecond: total / ((performance.now() - t0) / 1000),
    }),
  );
}

interface FetchRow {
  variant: string;
  cpuUsPerRequest: number;
  perSecond: number;
  posts: number;
  connections: number;
}

async function fetchVariants(orgs: TwoOrgs, capabilitiesFile: string): Promise<FetchRow[]> {
  const rows: FetchRow[] = [];
  // Two rounds, interleaved, so a change in the machine's load shows as a spread.
  for (let round = 0; round < 2; round++) {
    for (const variant of ["ca-list", "one-ca", "no-ca-unverified"]) {
      const sink = spawnRole(1, [
        ...["--role", "sink", "--port", String(orgs.portB), "--cert", orgs.certB.certFile],
        ...["--key", orgs.certB.keyFile, "--capabilities", capabilitiesFile],
      ]);
      await sink.firstLine;
      try {
        const client = spawnRole(0, [
          ...["--role", "fetch", "--variant", variant, "--port", String(orgs.portB)],
          ...["--ca", orgs.caFile, "--requests", args["fetch-requests"]!],
        ]);
        const result = JSON.parse(await client.firstLine) as { cpuUsPerRequest: number; perSecond: number };
        rows.push({ variant, ...result, ...(await counts(sink)) });
      } finally {
        sink.child.kill("SIGKILL");
      }
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------

const REPO = join(new URL(".", import.meta.url).pathname, "..", "..");

async function orchestrate(): Promise<void> {
  const dir = args.keep ?? mkdtempSync(join(tmpdir(), "isched-profile-outbound-"));
  mkdirSync(dir, { recursive: true });
  if (args.perf && !perfAvailable())
    throw new Error("--perf: perf is not installed (apt-get install linux-perf)");
  if (args.trust !== "ca-file" && args.trust !== "system")
    throw new Error(`--trust must be ca-file or system, not ${args.trust}`);
  if (args.receiver !== "sink" && args.receiver !== "isched")
    throw new Error(`--receiver must be sink or isched, not ${args.receiver}`);
  const orgs = await prepareTwoOrgs({ dir: join(dir, `orgs-${Date.now()}`), trust: args.trust });
  try {
    const capabilitiesFile = join(dir, "capabilities.json");
    await captureCapabilities(orgs, capabilitiesFile);
    const src = instrumentedCopy(join(dir, "instrumented"), PATCHES);
    // Plain runs alternate between --baseline's source and this tree's (B A A B ...), so that a
    // change of the machine's load during the session falls on both alike.
    const sources = [{ label: "this tree", src: join(REPO, "src") }];
    if (args.baseline)
      sources.unshift({
        label: args.baseline,
        src: join(baselineCopy(join(dir, "baseline"), args.baseline), "src"),
      });
    const drains: DrainProfile[] = [];
    const run = (mode: DrainMode, s: { label: string; src: string }) =>
      drain(orgs, join(dir, `drain-${mode}-${drains.length}-${Date.now()}`), capabilitiesFile, {
        mode,
        ...s,
      });
    for (let i = 0; i < Number(args.runs); i++) {
      for (const s of i % 2 === 0 ? sources : [...sources].reverse()) drains.push(await run("plain", s));
      if (!args["no-instrumented"]) drains.push(await run("instrumented", { label: "this tree", src }));
    }
    if (args.perf) drains.push(await run("perf", sources.at(-1)!));
    const f = args["no-fetch"] ? [] : await fetchVariants(orgs, capabilitiesFile);
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const plain = drains.filter((d) => d.mode === "plain");
    const instrumented = drains.filter((d) => d.mode === "instrumented");
    const lines = [
      machineLine(),
      `Command: npx bun scripts/bench/profile-outbound.ts ${process.argv.slice(2).join(" ")}`,
      `Trust: ${args.trust === "system" ? "the test CA in Bun's default store (NODE_EXTRA_CA_CERTS), no --ca-file: no CA option per request, as with a public certificate" : "--ca-file with the test CA: the default roots plus it with every request"}`,
      "",
      `Drain of ${args.messages} one-recipient messages to ${args.receiver === "isched" ? "isched B (store target; POSTs and connections not counted)" : "the counting sink"}, measured from A's 50th completion:`,
      "",
      "| A | source | messages/s | A's CPU µs/message (all threads) | POSTs | connections | other CPU on the machine |",
      "|---|---|---:|---:|---:|---:|---:|",
      ...drains.map(
        (d) =>
          `| ${d.mode} | ${d.label} | ${d.perSecond.toFixed(0)} | ${d.cpuUsPerMessage.toFixed(0)} | ${Number.isNaN(d.posts) ? "-" : d.posts} | ${Number.isNaN(d.connections) ? "-" : d.connections} | ${d.otherCpuPct.toFixed(0)}% |`,
      ),
      "",
      "A's threads (unmodified runs, in the order above), CPU µs per message:",
      ...[...new Set(plain.flatMap((d) => [...d.threadsUsPerMessage.keys()]))].map(
        (t) =>
          `- ${t}: ${plain.map((d) => `${(d.threadsUsPerMessage.get(t) ?? 0).toFixed(0)} (${d.label})`).join(", ")}`,
      ),
    ];
    if (instrumented.length > 0) {
      const perMessage = new Map<string, number[]>();
      const wallPerMessage = new Map<string, number[]>();
      const calls = new Map<string, number[]>();
      for (const d of instrumented)
        for (const [k, v] of Object.entries(d.stages ?? {})) {
          perMessage.set(k, [...(perMessage.get(k) ?? []), v.cpuUs / d.messages]);
          wallPerMessage.set(k, [...(wallPerMessage.get(k) ?? []), v.wallUs / d.messages]);
          calls.set(k, [...(calls.get(k) ?? []), v.count / d.messages]);
        }
      const total = mean(instrumented.map((d) => d.cpuUsPerMessage));
      const timed = [...perMessage].filter(([k]) => !k.startsWith("  ")).reduce((x, [, v]) => x + mean(v), 0);
      lines.push(
        "",
        `Stages of the instrumented A (CPU of its main thread's synchronous stretches; A's CPU ${total.toFixed(0)} µs per message, all threads):`,
        "",
        "| stage | CPU µs/message (each run) | mean | share of A's CPU | wall µs (mean) | calls/message |",
        "|---|---:|---:|---:|---:|---:|",
        ...[...perMessage].map(
          ([k, v]) =>
            `| ${k} | ${v.map((x) => x.toFixed(1)).join(", ")} | ${mean(v).toFixed(1)} | ${((mean(v) / total) * 100).toFixed(1)}% | ${mean(wallPerMessage.get(k)!).toFixed(1)} | ${mean(calls.get(k)!).toFixed(2)} |`,
        ),
        `| **timed, total** | | **${timed.toFixed(1)}** | ${((timed / total) * 100).toFixed(1)}% |`,
        `| not timed: fetch's HTTP and TLS work (main and HTTP Client threads), promises, timers, GC, JIT | | ${(total - timed).toFixed(1)} | ${(((total - timed) / total) * 100).toFixed(1)}% |`,
      );
    }
    const perfRun = drains.find((d) => d.perf);
    if (perfRun?.perf) lines.push("", ...formatPerf(perfRun.perf, "perf, isched A (unmodified) mid-drain"));
    lines.push(
      "",
      `The HTTPS client alone: ${args["fetch-requests"]} POSTs of 2 KB, 8 in flight, to the sink (CPU of the client process, all threads):`,
      "",
      "| TLS options | CPU µs/request | requests/s | POSTs | connections |",
      "|---|---:|---:|---:|---:|",
      ...f.map(
        (r) =>
          `| ${r.variant} | ${r.cpuUsPerRequest.toFixed(0)} | ${r.perSecond.toFixed(0)} | ${r.posts} | ${r.connections} |`,
      ),
    );
    console.log(`\n${lines.join("\n")}`);
    writeFileSync(join(dir, "report.md"), `${lines.join("\n")}\n`);
  } finally {
    await orgs.stop();
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

switch (args.role) {
  case "isched":
    await ischedRole();
    break;
  case "sink":
    await sinkRole();
    break;
  case "fetch":
    await fetchRole();
    process.exit(0);
    break;
  default:
    await orchestrate();
}
