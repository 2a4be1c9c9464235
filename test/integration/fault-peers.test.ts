/**
 * Fault injection on the sending side: the compiled binary sends to iSchedule receivers that answer
 * garbage XML, 50 MB, a byte a second (after the head, and even the head itself), or a redirect
 * loop, all found through a real DNS server (dnsmasq SRV records) and reached over real HTTPS. All
 * five are sent to at once. Each attempt ends within its time bound (the request deadlines of
 * src/net/peer-fetch.ts: 10 s for the response head, 15 s in all), the 50 MB answer costs the
 * server no more memory than the 1 MiB it reads of it (its RSS, from /proc), the transient faults
 * are retried and the redirect loop goes to e-mail, and every attempt keeps a readable reason with
 * its duration, shown by the API and `isched queue show` (and in the attempt's log line:
 * test/integration/operations.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import type { AttemptRow } from "../../src/store/sqlite/attempts.ts";
import { runIsched } from "../support/binary-run.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { type MisbehavingPeers, startMisbehavingPeers } from "../support/misbehaving-peer.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { labArgs, type ServedBinary, serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

const FAULTS = ["garbage", "huge", "slowbody", "slowhead", "loop"] as const;
type Fault = (typeof FAULTS)[number];

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let peers: MisbehavingPeers;
let relay: RunningSmtpServer;
let sender: ServedBinary;
/** The message id of each fault's submission. */
const submitted = new Map<Fault, number>();
/** The sender's resident memory before the faults: peak and current, in kB. */
let baseline: { hwmKb: number; rssKb: number };

interface DeliveryJson {
  state: string;
  route: string;
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number | null;
  attemptList: AttemptRow[];
}

function memoryKb(pid: number): { hwmKb: number; rssKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { hwmKb: kb("VmHWM"), rssKb: kb("VmRSS") };
}

async function delivery(fault: Fault): Promise<DeliveryJson> {
  const id = submitted.get(fault)!;
  const shown = await sender.api<{ deliveries: DeliveryJson[] }>(`/messages/${id}`);
  expect(shown.status).toBe(200);
  return shown.body.deliveries[0]!;
}

/** The delivery once it has `n` attempts recorded (or is finished). */
async function afterAttempts(fault: Fault, n: number, timeoutMs: number): Promise<DeliveryJson> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const d = await delivery(fault);
    if (d.attemptList.length >= n) {
      const a = d.attemptList[0]!;
      console.log(`${fault}: first attempt ${a.durationMs} ms, ${a.requestStatus}, ${a.error}`);
      return d;
    }
    if (Date.now() > end) throw new Error(`${fault}: ${d.attemptList.length} attempts after ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-fault-peers-"));
  ca = createTestCa();
  const cert = ca.issue(FAULTS.map((f) => `isched.${f}.test`));
  peers = startMisbehavingPeers({
    hosts: {
      "isched.garbage.test": "garbage",
      "isched.huge.test": "huge",
      "isched.slowbody.test": "slow-body",
      "isched.loop.test": "loop",
    },
    slowHeadHost: "isched.slowhead.test",
    cert,
  });
  dns = await startDnsmasq({
    zones: ["org.test", ...FAULTS.map((f) => `${f}.test`)],
    srv: FAULTS.map((f) => ({
      name: `_ischedules._tcp.${f}.test`,
      target: `isched.${f}.test`,
      port: f === "slowhead" ? peers.slowHeadPort : peers.port,
    })),
    hosts: FAULTS.map((f) => ({ name: `isched.${f}.test`, address: "127.0.0.1" })),
  });
  relay = await startSmtpServer();
  const key = generateDkimKey("rsa");
  writeFileSync(join(dir, "org.key"), key.privateKeyPem, { mode: 0o600 });
  sender = await serveBinary([
    ...labArgs({
      domain: "org.test",
      keyFile: join(dir, "org.key"),
      selector: "s1",
      dns: dns.server,
      caFile: ca.caCertFile,
    }),
    "--sign-unpublished",
    "--smtp",
    `smtp://127.0.0.1:${relay.port}`,
    "--retry",
    "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
    // The submission answers at once; the attempts carry on in the background.
    "--delivery-deadline",
    "100ms",
  ]);
  baseline = memoryKb(sender.pid);
  await Promise.all(
    FAULTS.map(async (f) => {
      const s = await submitInvitation(sender, { domain: "org.test", attendee: `mailto:bob@${f}.test` });
      submitted.set(f, s.id);
    }),
  );
}, 60_000);

afterAll(async () => {
  // The peers first: the sender's attempts still waiting on them then end at once.
  await peers?.stop();
  await sender?.stop();
  await relay?.stop();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("a peer answering garbage XML", () => {
  test("is a temporary failure (5.1), retried, with the parser's reason", async () => {
    const d = await afterAttempts("garbage", 2, 20_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.httpStatus).toBe(200);
    expect(first.error).toContain("answered HTTP 200 with no schedule-response");
    expect(first.durationMs).toBeLessThan(3000);
    expect(peers.posts("isched.garbage.test").length).toBeGreaterThanOrEqual(2);
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
  }, 30_000);
});

describe("a peer answering 50 MB", () => {
  test("is cut off at 1 MiB, costs the server no more memory than that, and is retried", async () => {
    const d = await afterAttempts("huge", 1, 20_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain("exceeds 1048576 bytes");
    expect(first.durationMs).toBeLessThan(5000);
    await afterAttempts("huge", 2, 20_000);
    const after = memoryKb(sender.pid);
    console.log(
      `sender RSS: peak ${baseline.hwmKb} -> ${after.hwmKb} kB, now ${baseline.rssKb} -> ${after.rssKb} kB ` +
        `after ${peers.posts("isched.huge.test").length} answers of 50 MB`,
    );
    // Two 50 MB bodies read whole would add 100 MB; what is read stops at 1 MiB each.
    expect(after.hwmKb - baseline.hwmKb).toBeLessThan(40 * 1024);
  }, 30_000);
});

describe("a peer answering a byte a second", () => {
  test("after the head: abandoned at the 15 s request deadline, then retried", async () => {
    const d = await afterAttempts("slowbody", 1, 30_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain("No complete response from isched.slowbody.test within 15000ms");
    expect(first.durationMs).toBeGreaterThanOrEqual(14_000);
    expect(first.durationMs).toBeLessThan(20_000);
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
  }, 40_000);

  test("even the status line: abandoned at the 10 s deadline for the response head, then retried", async () => {
    const d = await afterAttempts("slowhead", 1, 30_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain("No answer from isched.slowhead.test");
    expect(first.error).toContain("within 10000ms (the connection, TLS handshake or response head");
    expect(first.durationMs).toBeGreaterThanOrEqual(9_000);
    expect(first.durationMs).toBeLessThan(14_000);
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
  }, 40_000);
});

describe("a peer answering a redirect loop", () => {
  test("is followed 3 hops at most, then the message goes by e-mail with the reason", async () => {
    const d = await afterAttempts("loop", 2, 20_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.2;Invalid calendar service");
    expect(first.httpStatus).toBe(307);
    expect(first.error).toMatch(/redirect/i);
    expect(first.durationMs).toBeLessThan(3000);
    expect(peers.posts("isched.loop.test").length).toBeLessThanOrEqual(4);
    expect(d.state).toBe("sent-imip");
    await relay.waitFor(1, 5000);
    expect(relay.messages.some((m) => m.rcptTo.includes("bob@loop.test"))).toBe(true);
  }, 30_000);
});

describe("the operator's view", () => {
  test("isched queue show gives each attempt's reason in words", async () => {
    await afterAttempts("slowbody", 1, 30_000);
    const id = submitted.get("slowbody")!;
    const shown = await runIsched(["queue", "show", String(id), "--data", sender.dataDir]);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain("No complete response from isched.slowbody.test within 15000ms");
  }, 40_000);
});
