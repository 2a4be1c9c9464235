/**
 * Shared set-up of the outbound and SMTP intake benchmarks: isched A (a.test, the sender) and isched B
 * (the receiver, `store` target, hosting one or more domains) as real `isched serve` processes, each
 * pinned to a core with taskset, a test CA for B's HTTPS, and dnsmasq publishing B's SRV records
 * (`_ischedules._tcp.DOMAIN` -> isched.b.test:PORT) and A's DKIM key (TXT, TTL 300 s so that the
 * receiver's key cache and the sender's discovery cache work as in production).
 *
 * Run directly, this file is the launcher of one isched process (`bun scripts/bench/_two-ischeds.ts
 * serve FLAGS...`): the real command line (`src/cli/main.ts`). The dispatcher's limits are set with
 * the serve flags --max-deliveries and --max-per-peer.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

export const BUN = process.execPath;
export const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const LAUNCHER = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// The launcher

async function launch(argv: string[]): Promise<void> {
  const { run } = await import("../../src/cli/main.ts");
  await run(argv);
}

/**
 * A bare iSchedule receiver for diagnosis: serves a capabilities document captured from a real isched
 * B and answers every POST "2.0;Success" for each Recipient, verifying nothing and storing nothing.
 * It shows what isched A can send when the receiver costs next to nothing.
 */
async function sink(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      port: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      capabilities: { type: "string" },
    },
  });
  const { scheduleResponseXml } = await import("../../src/ischedule/xml-writer.ts");
  const caps = JSON.parse(readFileSync(values.capabilities!, "utf8")) as {
    body: string;
    headers: Record<string, string>;
  };
  const serial = caps.headers["ischedule-capabilities"] ?? "1";
  Bun.serve({
    hostname: "127.0.0.1",
    port: Number(values.port),
    tls: { cert: readFileSync(values.cert!, "utf8"), key: readFileSync(values.key!, "utf8") },
    async fetch(request) {
      if (request.method === "GET") return new Response(caps.body, { headers: caps.headers });
      await request.arrayBuffer();
      const recipients = (request.headers.get("recipient") ?? "").split(",").map((r) => r.trim());
      const xml = scheduleResponseXml(
        recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" })),
      );
      return new Response(xml, {
        headers: {
          "Content-Type": "application/xml; charset=utf-8",
          "iSchedule-Version": "1.0",
          "iSchedule-Capabilities": serial,
        },
      });
    },
  });
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  if (argv[0] === "sink") await sink(argv.slice(1));
  else await launch(argv);
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface IschedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it printed on stderr (its log, with --log-level). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnIschedOptions {
  /** The core it runs on (taskset -c). */
  cpu: number;
  /** The `isched serve` flags (without "serve"). */
  flags: string[];
  maxPerTarget?: number;
  maxConcurrent?: number;
  /** Write a --cpu-prof profile into this folder. */
  profileDir?: string;
}

export function spawnIsched(o: SpawnIschedOptions): IschedProcess {
  const limits = [
    ...(o.maxPerTarget !== undefined ? ["--max-per-peer", String(o.maxPerTarget)] : []),
    ...(o.maxConcurrent !== undefined ? ["--max-deliveries", String(o.maxConcurrent)] : []),
  ];
  const profile = o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.profileDir}`] : [];
  const argv = [BUN, ...profile, LAUNCHER, "serve", ...o.flags, ...limits];
  // Its log (info: a line per request) goes to /dev/null as a production log would go to a file;
  // warnings and errors are kept.
  const child = spawn("taskset", ["-c", String(o.cpu), ...argv], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
    if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    pid: child.pid!,
    stderr: () => stderr,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Pins the calling process (and so the children it starts later) to one core. */
export function pinSelf(cpu: number): void {
  spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], { stdio: "ignore" });
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU time (ms, user + system, all threads) a process has used so far; 0 once it is gone. */
export function cpuMsOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** VmRSS of a process in kB (from /proc/PID/status). */
export function rssKbOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

export async function waitFor(what: string, check: () => boolean, timeoutMs: number, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
      socket.end();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Two organisations

export interface TwoOrgsOptions {
  /** A work folder (keys, certificates, data folders). */
  dir: string;
  /** The domains B hosts; each gets an SRV record pointing at B. Default ["b.test"]. */
  bDomains?: readonly string[];
  /** DNS TTL of every record, seconds. Default 300. */
  ttl?: number;
  /**
   * How A trusts B's certificate. "ca-file" (default): `--ca-file` with the test CA, so peerFetch
   * passes the default roots plus that CA with every request. "system": the way production trusts a
   * peer with a public certificate, without the network: the test CA is put in Bun's default store
   * (NODE_EXTRA_CA_CERTS, set in this process's environment so that every child inherits it, in
   * place of the machine's own) and A runs without --ca-file, so peerFetch passes no CA option.
   */
  trust?: "ca-file" | "system";
}

export interface TwoOrgs {
  readonly dir: string;
  readonly bDomains: readonly string[];
  readonly portB: number;
  readonly dns: { host: string; port: number };
  readonly caFile: string;
  readonly keyAFile: string;
  /** B's certificate (isched.b.test, signed by the test CA). */
  readonly certB: { readonly certFile: string; readonly keyFile: string };
  /** `isched serve` flags for A (a.test, signing with selector sel). */
  flagsA(o: { dataDir: string; smtpListen?: string; consolePort?: number; apiTokenFile?: string }): string[];
  /** `isched serve` flags for B (store target, HTTPS, every B domain). */
  flagsB(o: { dataDir: string }): string[];
  stop(): Promise<void>;
}

export async function prepareTwoOrgs(o: TwoOrgsOptions): Promise<TwoOrgs> {
  const { splitTxtValue } = await import("../../src/dkim/dns-record.ts");
  const { generateDkimKey } = await import("../../src/dkim/keygen.ts");
  const { startDnsmasq } = await import("../../test/support/dnsmasq.ts");
  const { createTestCa } = await import("../../test/support/pki.ts");
  const { freePort } = await import("../../test/support/ports.ts");
  const bDomains = o.bDomains ?? ["b.test"];
  mkdirSync(o.dir, { recursive: true });
  mkdirSync(join(o.dir, "pki"));
  const ca = createTestCa(join(o.dir, "pki"));
  const keyA = generateDkimKey("rsa", 2048);
  const keyAFile = join(o.dir, "a.key");
  writeFileSync(keyAFile, keyA.privateKeyPem);
  // B signs nothing here, but without a key it would make one per domain at start-up.
  const keyBFile = join(o.dir, "b.key");
  writeFileSync(keyBFile, generateDkimKey("rsa", 2048).privateKeyPem);
  const portB = await freePort();
  const dns = await startDnsmasq({
    zones: ["a.test", "b.test", ...bDomains.filter((d) => d !== "b.test")],
    ttl: o.ttl ?? 300,
    srv: bDomains.map((d) => ({ name: `_ischedules._tcp.${d}`, target: "isched.b.test", port: portB })),
    hosts: [{ name: "isched.b.test", address: "127.0.0.1" }],
    txt: [{ name: "sel._domainkey.a.test", strings: splitTxtValue(keyA.record) }],
  });
  const certB = ca.issue(["isched.b.test"]);
  const systemTrust = o.trust === "system";
  if (systemTrust) process.env.NODE_EXTRA_CA_CERTS = ca.caCertFile;
  const dnsFlag = `${dns.server.host}:${dns.server.port}`;
  return {
    dir: o.dir,
    bDomains,
    portB,
    dns: dns.server,
    caFile: ca.caCertFile,
    keyAFile,
    certB: { certFile: certB.certFile, keyFile: certB.keyFile },
    flagsA: (a) => [
      "--domain",
      "a.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      `127.0.0.1:${a.consolePort ?? 0}`,
      ...(a.apiTokenFile ? ["--api-token-file", a.apiTokenFile] : []),
      "--data",
      a.dataDir,
      "--dkim-key",
      keyAFile,
      "--dkim-selector",
      "sel",
      "--dns-server",
      dnsFlag,
      ...(systemTrust ? [] : ["--ca-file", ca.caCertFile]),
      "--allow-private-peers",
      ...(a.smtpListen ? ["--smtp-listen", a.smtpListen, "--smtp-allow", "127.0.0.1"] : []),
    ],
    flagsB: (b) => [
      ...bDomains.flatMap((d) => ["--domain", d]),
      "--listen",
      `127.0.0.1:${portB}`,
      "--console",
      "127.0.0.1:0",
      "--data",
      b.dataDir,
      "--tls-cert",
      certB.certFile,
      "--tls-key",
      certB.keyFile,
      "--deliver",
      "store",
      "--dkim-key",
      keyBFile,
      "--dkim-selector",
      "sel",
      "--dns-server",
      dnsFlag,
      "--ca-file",
      ca.caCertFile,
      "--allow-private-peers",
    ],
    async stop() {
      await dns.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** A REQUEST invitation from alice@a.test, CRLF, about 700 bytes with one attendee. */
export function invitation(o: { uid: string; attendees: readonly string[] }): string {
  return `${[
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched bench//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${o.uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SEQUENCE:0",
    "SUMMARY:Quarterly planning",
    "LOCATION:Room 4\\, second floor",
    "DESCRIPTION:Agenda: budget review\\, hiring plan\\, the office move.",
    "ORGANIZER;CN=Alice Martin:mailto:alice@a.test",
    "ATTENDEE;CN=Alice Martin;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:alice@a.test",
    ...o.attendees.map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
  ].join("\r\n")}\r\n`;
}

export interface PrefillOptions {
  dataDir: string;
  messages: number;
  /** The recipients of message i. */
  recipients: (i: number) => string[];
  /** When the deliveries fall due (default: now). */
  nextAttemptAt?: number;
  /** Messages per transaction. Default 100. */
  batch?: number;
  /** A shared body instead of one invitation per message (much faster for large fills). */
  body?: (i: number) => string;
  /**
   * The src/ folder of the isched that will drain the queue (default: this tree's): the database
   * gets its schema, and each message what its intake stores with it (the iTIP send facts, when
   * that source keeps them).
   */
  src?: string;
}

/**
 * Stores outbound messages in A's database before A starts, as its submission API would: one
 * message, one `ischedule` delivery per recipient (what outbound-crash.test.ts does).
 */
export async function prefillOutbound(o: PrefillOptions): Promise<void> {
  const src = o.src ?? join(import.meta.dir, "..", "..", "src");
  const { DeliveryQueue } = await import(join(src, "queue/queue.ts"));
  const { openDatabase } = await import(join(src, "store/sqlite/database.ts"));
  const { createSqliteStore } = await import(join(src, "store/sqlite/store.ts"));
  const { parseItip } = await import(join(src, "itip/index.ts"));
  const facts: { sendFactsOf?: (itip: unknown) => unknown; storableSendFacts?: (f: unknown) => string } =
    await import(join(src, "outbound/message-facts.ts"));
  const sendFacts = (body: string): { sendFacts?: string } =>
    facts.sendFactsOf && facts.storableSendFacts
      ? { sendFacts: facts.storableSendFacts(facts.sendFactsOf(parseItip(body))) }
      : {};
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const db = openDatabase(join(o.dataDir, "isched.db"));
  const batch = o.batch ?? 100;
  // `batch` accepts made together are one transaction (the store's group commit).
  const queue = new DeliveryQueue(createSqliteStore(db, { groupCommit: { maxWrites: batch } }));
  const fill = (first: number) =>
    Array.from({ length: Math.min(first + batch, o.messages) - first }, (_, k) => {
      const i = first + k;
      const recipients = o.recipients(i);
      const uid = `bench-${i}@a.test`;
      const body = o.body ? o.body(i) : invitation({ uid, attendees: recipients });
      return queue.accept(
        {
          direction: "outbound",
          intake: "api",
          originator: "mailto:alice@a.test",
          method: "REQUEST",
          component: "VEVENT",
          uid,
          summary: "Quarterly planning",
          contentType: "text/calendar; method=REQUEST; component=VEVENT",
          body,
          ...sendFacts(body),
        },
        recipients.map((recipient) => ({
          recipient,
          domain: recipient.slice(recipient.indexOf("@") + 1),
          route: "ischedule" as const,
          ...(o.nextAttemptAt !== undefined ? { nextAttemptAt: o.nextAttemptAt } : {}),
        })),
      );
    });
  for (let first = 0; first < o.messages; first += batch) await Promise.all(fill(first));
  db.close();
}

// ---------------------------------------------------------------------------------------------
// Draining A's queue to B

export interface DrainOptions {
  orgs: TwoOrgs;
  /** A folder of its own for this run (A's and B's data). */
  dir: string;
  /** Messages pre-filled in A's queue, one recipient each (user{i}@b.test). */
  messages: number;
  /** The receiver: a real isched B (store target), or the bare sink (diagnosis). */
  receiver: "isched" | "sink";
  /** For the sink: the capabilities document and headers captured from a real B. */
  capabilitiesFile?: string;
  maxPerTarget?: number;
  maxConcurrent?: number;
  /** Profile A (--cpu-prof) into this folder. */
  profileDir?: string;
  /** Default 0 for A, 1 for the receiver. */
  cpuA?: number;
  cpuB?: number;
}

export interface DrainResult {
  messages: number;
  delivered: number;
  /** From A's first attempt to its last completion (from A's attempts table). */
  seconds: number;
  perSecond: number;
  /** From spawning A (start-up included) until every delivery was final. */
  wallSeconds: number;
  /** CPU used during the drain, in % of one core. */
  cpuA: number;
  cpuB: number;
  /** Messages the receiver holds (isched B only). */
  atB?: number;
}

export async function measureDrain(o: DrainOptions): Promise<DrainResult> {
  const { Database } = await import("bun:sqlite");
  const dataA = join(o.dir, "a-data");
  const dataB = join(o.dir, "b-data");
  await prefillOutbound({
    dataDir: dataA,
    messages: o.messages,
    recipients: (i) => [`mailto:user${i}@b.test`],
  });
  const receiver =
    o.receiver === "isched"
      ? spawnIsched({ cpu: o.cpuB ?? 1, flags: o.orgs.flagsB({ dataDir: dataB }) })
      : spawnSink({ cpu: o.cpuB ?? 1, orgs: o.orgs, capabilitiesFile: o.capabilitiesFile! });
  try {
    await waitForPort(o.orgs.portB);
    const a = spawnIsched({
      cpu: o.cpuA ?? 0,
      flags: o.orgs.flagsA({ dataDir: dataA }),
      maxPerTarget: o.maxPerTarget,
      maxConcurrent: o.maxConcurrent,
      profileDir: o.profileDir,
    });
    const spawnedAt = performance.now();
    const cpuStart = { a: cpuMsOf(a.pid), b: cpuMsOf(receiver.pid) };
    try {
      await waitFor("A's database", () => existsSync(join(dataA, "isched.db-wal")), 30_000);
      const db = new Database(join(dataA, "isched.db"), { readonly: true });
      const done = db.query<{ n: number }, []>(
        "SELECT count(*) AS n FROM deliveries WHERE state NOT IN ('queued', 'in-flight')",
      );
      await waitFor(
        `${o.messages} final deliveries at A`,
        () => {
          if (a.child.exitCode !== null) throw new Error(`isched A exited: ${a.stderr()}`);
          return done.get()!.n >= o.messages;
        },
        30 * 60_000,
        100,
      );
      const wallSeconds = (performance.now() - spawnedAt) / 1000;
      const cpuA = cpuMsOf(a.pid) - cpuStart.a;
      const cpuB = cpuMsOf(receiver.pid) - cpuStart.b;
      const span = db
        .query<{ first: number; last: number }, []>(
          "SELECT min(started_at) AS first, max(started_at + duration_ms) AS last FROM attempts",
        )
        .get()!;
      const delivered = db
        .query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries WHERE state = 'delivered'")
        .get()!.n;
      db.close();
      const seconds = (span.last - span.first) / 1000;
      let atB: number | undefined;
      if (o.receiver === "isched") {
        const dbB = new Database(join(dataB, "isched.db"), { readonly: true });
        atB = dbB
          .query<{ n: number }, []>("SELECT count(*) AS n FROM messages WHERE direction = 'inbound'")
          .get()!.n;
        dbB.close();
      }
      // CPU over the drain proper; start-up is a small part of it.
      const pct = (ms: number) => (ms / (wallSeconds * 1000)) * 100;
      return {
        messages: o.messages,
        delivered,
        seconds,
        perSecond: delivered / seconds,
        wallSeconds,
        cpuA: pct(cpuA),
        cpuB: pct(cpuB),
        atB,
      };
    } finally {
      await a.stop();
    }
  } finally {
    await receiver.stop();
  }
}

/** The bare receiver (see sink() above) on B's port with B's certificate. */
export function spawnSink(o: { cpu: number; orgs: TwoOrgs; capabilitiesFile: string }): IschedProcess {
  const argv = [
    BUN,
    LAUNCHER,
    "sink",
    "--port",
    String(o.orgs.portB),
    "--cert",
    o.orgs.certB.certFile,
    "--key",
    o.orgs.certB.keyFile,
    "--capabilities",
    o.capabilitiesFile,
  ];
  const child = spawn("taskset", ["-c", String(o.cpu), ...argv], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    pid: child.pid!,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Starts B on its own, saves its capabilities answer (body and headers) for the sink, stops it. */
export async function captureCapabilities(orgs: TwoOrgs, file: string): Promise<void> {
  const b = spawnIsched({ cpu: 1, flags: orgs.flagsB({ dataDir: join(orgs.dir, "capabilities-b") }) });
  try {
    await waitForPort(orgs.portB);
    const res = await fetch(`https://127.0.0.1:${orgs.portB}/.well-known/ischedule?action=capabilities`, {
      tls: { rejectUnauthorized: false },
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of res.headers)
      if (name !== "content-length" && name !== "date") headers[name] = value;
    writeFileSync(file, JSON.stringify({ body: await res.text(), headers }));
  } finally {
    await b.stop();
  }
}

/**
 * Single-core RSA-2048 signing rate: crypto.sign("sha256") of a DKIM-sized header block in a loop
 * pinned to `cpu`, counted per CPU second of that loop: the single-core rate, which a machine busy with other work does not lower the way it lowers a wall-clock rate.
 */
export function signingRate(o: { cpu: number; seconds: number }): number {
  const code = `
    const { generateKeyPairSync, sign } = require("node:crypto");
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const data = Buffer.alloc(600, "x");
    const run = (ms) => { let n = 0; const end = performance.now() + ms; while (performance.now() < end) { sign("sha256", data, privateKey); n++; } return n; };
    run(500);
    const c0 = process.cpuUsage(); const n = run(${o.seconds * 1000}); const c = process.cpuUsage(c0);
    console.log(n / ((c.user + c.system) / 1e6));
  `;
  const out = spawnSync("taskset", ["-c", String(o.cpu), BUN, "-e", code], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`signing rate: ${out.stderr}`);
  return Number(out.stdout.trim());
}

// ---------------------------------------------------------------------------------------------
// Reporting

/** The machine line of a report: CPU model and cores (lscpu), Bun version, date. */
export function machineLine(): string {
  const lscpu = spawnSync("lscpu", { encoding: "utf8" }).stdout;
  const model = /^Model name:\s+(.+)$/m.exec(lscpu)?.[1]?.trim() ?? "unknown CPU";
  const cores = /^CPU\(s\):\s+(\d+)$/m.exec(lscpu)?.[1] ?? "?";
  return `Machine: ${model}, ${cores} cores; Bun ${Bun.version}; ${new Date().toISOString().slice(0, 10)}.`;
}

/**
 * Replaces the text between the two `<!-- MARKER -->` lines of `file` (markers kept); nothing else
 * in the file is touched. Throws when the markers are not there.
 */
export function replaceBetweenMarkers(file: string, marker: string, text: string): void {
  const content = readFileSync(file, "utf8");
  const tag = `<!-- ${marker} -->`;
  const first = content.indexOf(tag);
  const second = content.indexOf(tag, first + tag.length);
  if (first === -1 || second === -1) throw new Error(`${file} has no pair of ${tag} lines`);
  writeFileSync(file, `${content.slice(0, first + tag.length)}\n${text.trim()}\n${content.slice(second)}`);
}
