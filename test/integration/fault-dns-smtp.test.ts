/**
 * Fault injection on the network services a sender depends on, with the compiled binary: its DNS
 * server stopped (dnsmasq, killed and later started again on the same port), hanging (it takes
 * queries and never answers) or answering SERVFAIL (scripted servers), and its SMTP relay refusing
 * connections (smtp-server.ts, 421) or dropping the connection in the middle of DATA (a scripted
 * server). Five senders run at once, each meeting one fault. Each attempt ends quickly, is retried (these are all temporary), keeps a readable reason,
 * and the message goes through once the service is back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import type { AttemptRow } from "../../src/store/sqlite/attempts.ts";
import { type RunningDnsmasq, startDnsmasq, type TestZone } from "../support/dnsmasq.ts";
import { type DroppingSmtp, startDroppingSmtp } from "../support/dropping-smtp.ts";
import { type MisbehavingPeers, startMisbehavingPeers } from "../support/misbehaving-peer.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { type ScriptedDns, startServfailDns, startSilentDns } from "../support/scripted-dns.ts";
import { labArgs, type ServedBinary, serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

const SENDERS = ["dnsDown", "dnsSilent", "servfail", "smtpRefusing", "smtpDropping"] as const;
type Sender = (typeof SENDERS)[number];

let dir: string;
let ca: TestCa;
/** The DNS server that goes down, and the one that stays up (for the SMTP cases). */
let flaky: RunningDnsmasq;
let steady: RunningDnsmasq;
let servfail: ScriptedDns;
let silent: ScriptedDns;
let peers: MisbehavingPeers;
let refusing: RunningSmtpServer;
let dropping: DroppingSmtp;
const senders = new Map<Sender, ServedBinary>();
const submitted = new Map<Sender, number>();

interface DeliveryJson {
  state: string;
  route: string;
  lastError: string | null;
  attemptList: AttemptRow[];
}

async function delivery(s: Sender): Promise<DeliveryJson> {
  const shown = await senders.get(s)!.api<{ deliveries: DeliveryJson[] }>(`/messages/${submitted.get(s)}`);
  expect(shown.status).toBe(200);
  return shown.body.deliveries[0]!;
}

async function until(
  s: Sender,
  check: (d: DeliveryJson) => boolean,
  timeoutMs: number,
): Promise<DeliveryJson> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const d = await delivery(s);
    if (check(d)) {
      for (const a of d.attemptList)
        console.log(`${s}: attempt ${a.durationMs} ms ${a.route} ${a.requestStatus} ${a.error ?? ""}`);
      return d;
    }
    if (Date.now() > end)
      throw new Error(`${s}: condition not met after ${timeoutMs} ms: ${JSON.stringify(d.attemptList)}`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-fault-net-"));
  ca = createTestCa();
  peers = startMisbehavingPeers({
    hosts: { "isched.b.test": "ok" },
    slowHeadHost: "isched.unused.test",
    cert: ca.issue(["isched.b.test"]),
  });
  const zone: TestZone = {
    zones: ["org.test", "b.test", "nowhere.test"],
    srv: [{ name: "_ischedules._tcp.b.test", target: "isched.b.test", port: peers.port }],
    hosts: [{ name: "isched.b.test", address: "127.0.0.1" }],
  };
  [flaky, steady, servfail, silent, refusing, dropping] = await Promise.all([
    startDnsmasq(zone),
    startDnsmasq(zone),
    startServfailDns(),
    startSilentDns(),
    // A relay that takes no mail now: 421 to every connection.
    startSmtpServer({ refuseConnectionsAfter: 0 }),
    startDroppingSmtp({ dropFirst: 1 }),
  ]);
  const key = generateDkimKey("rsa");
  writeFileSync(join(dir, "org.key"), key.privateKeyPem, { mode: 0o600 });
  const start = (dns: { host: string; port: number }, extra: string[] = []) =>
    serveBinary([
      ...labArgs({
        domain: "org.test",
        keyFile: join(dir, "org.key"),
        selector: "s1",
        dns,
        caFile: ca.caCertFile,
      }),
      "--sign-unpublished",
      "--retry",
      "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
      "--delivery-deadline",
      "100ms",
      ...extra,
    ]);
  const started = await Promise.all([
    start(flaky.server),
    start(silent.server),
    start(servfail.server),
    start(steady.server, ["--smtp", `smtp://127.0.0.1:${refusing.port}`]),
    start(steady.server, ["--smtp", `smtp://127.0.0.1:${dropping.port}`]),
  ]);
  for (const [i, s] of SENDERS.entries()) senders.set(s, started[i]!);

  await flaky.pause();
  const to: Record<Sender, string> = {
    dnsDown: "mailto:bob@b.test",
    dnsSilent: "mailto:bob@b.test",
    servfail: "mailto:bob@b.test",
    // No iSchedule receiver there (NXDOMAIN): the message goes by e-mail, to the relay.
    smtpRefusing: "mailto:zed@nowhere.test",
    smtpDropping: "mailto:zed@nowhere.test",
  };
  await Promise.all(
    SENDERS.map(async (s) => {
      const sent = await submitInvitation(senders.get(s)!, { domain: "org.test", attendee: to[s] });
      submitted.set(s, sent.id);
    }),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([...senders.values()].map((s) => s.stop()));
  await peers?.stop();
  await Promise.all([
    flaky?.stop(),
    steady?.stop(),
    servfail?.stop(),
    silent?.stop(),
    refusing?.stop(),
    dropping?.stop(),
  ]);
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("the DNS server", () => {
  test("stopped: the lookup is refused at once, retried, and the message delivered once DNS is back", async () => {
    const failed = await until("dnsDown", (d) => d.attemptList.length >= 1, 20_000);
    const first = failed.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain("SRV lookup of _ischedules._tcp.b.test failed");
    expect(first.error).toContain("ECONNREFUSED");
    expect(first.durationMs).toBeLessThan(2000);
    expect(failed.state === "queued" || failed.state === "in-flight").toBe(true);
    await flaky.resume();
    const done = await until("dnsDown", (d) => d.state === "delivered", 30_000);
    expect(done.attemptList.at(-1)!.requestStatus).toBe("2.0;Success");
    expect(peers.posts("isched.b.test").length).toBe(1);
  }, 60_000);

  test("hanging: the lookup is given up after two tries of 2 s, and retried", async () => {
    const d = await until("dnsSilent", (x) => x.attemptList.length >= 1, 20_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain("timeout after 2 attempts of 2000ms");
    expect(first.error).toContain("_ischedules._tcp.b.test SRV");
    expect(first.durationMs).toBeGreaterThanOrEqual(3900);
    expect(first.durationMs).toBeLessThan(8000);
    expect(silent.asked).toContain("_ischedules._tcp.b.test SRV");
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
  }, 30_000);

  test("answering SERVFAIL: a temporary failure that names the answer, retried", async () => {
    const d = await until("servfail", (x) => x.attemptList.length >= 2, 20_000);
    const first = d.attemptList[0]!;
    expect(first.requestStatus).toBe("5.1;Service unavailable");
    expect(first.error).toContain(`SERVFAIL from 127.0.0.1:${servfail.server.port}`);
    expect(first.error).toContain("_ischedules._tcp.b.test SRV");
    expect(first.durationMs).toBeLessThan(2000);
    expect(servfail.asked).toContain("_ischedules._tcp.b.test SRV");
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
  }, 30_000);
});

describe("the SMTP relay", () => {
  test("refusing every connection (421): the e-mail is retried with the relay's words", async () => {
    const d = await until(
      "smtpRefusing",
      (x) => x.attemptList.filter((a) => a.route === "imip").length >= 2,
      20_000,
    );
    const viaImip = d.attemptList.filter((a) => a.route === "imip");
    expect(viaImip[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(viaImip[0]!.error).toContain("421");
    expect(viaImip[0]!.durationMs).toBeLessThan(3000);
    expect(d.route).toBe("imip");
    expect(d.state === "queued" || d.state === "in-flight").toBe(true);
    expect(refusing.messages).toHaveLength(0);
  }, 30_000);

  test("dropping the connection in the middle of DATA: retried, and sent once", async () => {
    const d = await until("smtpDropping", (x) => x.state === "sent-imip", 20_000);
    const viaImip = d.attemptList.filter((a) => a.route === "imip");
    expect(viaImip[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(viaImip[0]!.error).toBeTruthy();
    expect(viaImip[0]!.durationMs).toBeLessThan(3000);
    expect(viaImip.at(-1)!.requestStatus).toBe("1.1;Sent");
    expect(dropping.drops).toHaveLength(1);
    expect(dropping.drops[0]!).toBeGreaterThan(0);
    expect(dropping.messages).toHaveLength(1);
    expect(dropping.messages[0]!.rcptTo).toEqual(["zed@nowhere.test"]);
  }, 30_000);
});
