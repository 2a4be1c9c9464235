/**
 * The first key is never used before peers can find it (the compiled binary, a real dnsmasq). A
 * peer that verifies before the TXT record is visible refuses the request, and CalendarServer caches
 * "no key" until it restarts; so until isched sees its own key in DNS, outbound iSchedule waits (or
 * goes by iMIP after --fallback-after), with a start-up line and the Overview saying so, unless the
 * operator starts with --sign-unpublished.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { type RunningDnsmasq, startDnsmasq, type TestZone } from "../support/dnsmasq.ts";
import { FIXTURES, fixtureResponse, readHttpFixture } from "../support/http-fixture.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { type ServedBinary, type Submitted, serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

const CS = join(FIXTURES, "calendarserver");
let ca: TestCa;
let dns: RunningDnsmasq;
let peer: ReturnType<typeof Bun.serve>;
let sink: RunningSmtpServer;
const atPeer: string[] = [];
const running: ServedBinary[] = [];
let zone: TestZone;

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["cal.b.test"]);
  // A peer that takes everything (it does not verify: what matters is whether isched sends).
  peer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    async fetch(req) {
      if (req.method === "GET") return fixtureResponse(readHttpFixture(join(CS, "capabilities.http")));
      await req.text();
      const recipient = req.headers.get("recipient") ?? "";
      atPeer.push(recipient);
      const captured = readHttpFixture(join(CS, "delivered-response.http"));
      return new Response(captured.body.toString().replace("mailto:cyrus@example.net", recipient), {
        headers: { "content-type": "text/xml" },
      });
    },
  });
  sink = await startSmtpServer();
  zone = {
    zones: ["a.test", "b.test"],
    srv: [{ name: "_ischedules._tcp.b.test", target: "cal.b.test", port: peer.port! }],
    hosts: [{ name: "cal.b.test", address: "127.0.0.1" }],
  };
  dns = await startDnsmasq(zone);
});

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  peer?.stop(true);
  await sink?.stop();
  await dns?.stop();
  ca?.remove();
}, 20_000);

/** isched for a.test with a key it makes on first start, whose record is in no DNS yet. */
async function start(...extra: string[]): Promise<ServedBinary> {
  const s = await serveBinary([
    "--domain",
    "a.test",
    "--dns-server",
    `${dns.server.host}:${dns.server.port}`,
    "--ca-file",
    ca.caCertFile,
    "--allow-private-peers",
    ...extra,
  ]);
  running.push(s);
  return s;
}

async function stateOf(s: ServedBinary, id: number, until: (state: string) => boolean, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await s.api<{ deliveries: { state: string; attempts: number; lastError: string | null }[] }>(
      `/messages/${id}`,
    );
    const d = m.body.deliveries[0]!;
    if (until(d.state) || Date.now() > end) return d;
    await Bun.sleep(100);
  }
}

describe("a first key that is not in DNS yet", () => {
  let a: ServedBinary;
  let name: string;
  let record: string;

  beforeAll(async () => {
    a = await start();
    const keys = await a.api<{ domains: { keys: { selector: string; record: string }[] }[] }>("/keys");
    const key = keys.body.domains[0]!.keys[0]!;
    name = `${key.selector}._domainkey.a.test`;
    record = key.record;
  });

  test("start-up says that outbound iSchedule waits for it", () => {
    expect(a.stdout()).toContain(
      `  DKIM key      a.test: ${name} is not in DNS yet: outbound iSchedule waits until it is (isched looks every minute; --sign-unpublished signs anyway)\n`,
    );
  });

  let waiting: Submitted;
  test("an invitation waits, nothing reaches the peer, and no attempt is used up", async () => {
    waiting = await submitInvitation(a, { domain: "a.test", attendee: "mailto:bob@b.test" });
    expect(waiting.recipients[0]).toMatchObject({ state: "queued", status: "1.0;Pending" });
    expect(waiting.recipients[0]!.description).toStartWith(
      `Waiting for isched's DKIM key ${name} to be visible in DNS: peers cannot verify its signatures before (no TXT record there yet;`,
    );
    const d = await stateOf(a, waiting.id, () => true);
    expect(d.attempts).toBe(0);
    expect(atPeer).not.toContain("mailto:bob@b.test");
  });

  test("the Overview reports the key as not visible, among the problems to know about now", async () => {
    const o = await a.api<{
      problems: { id: string; text: string }[];
      keys: { signUnpublished: boolean; domains: { name: string; visible: boolean }[] };
    }>("/overview");
    expect(o.body.problems).toContainEqual(
      expect.objectContaining({
        id: "dkim-key-unpublished:a.test",
        text: `Outbound iSchedule for a.test waits: isched's DKIM key ${name} is not visible in DNS yet (no TXT record there yet). Publish its record (Keys and DNS); isched looks every minute, or start with --sign-unpublished.`,
      }),
    );
    expect(o.body.keys).toEqual({
      signUnpublished: false,
      domains: [
        expect.objectContaining({
          domain: "a.test",
          name,
          visible: false,
          problem: "no TXT record there yet",
        }),
      ],
    });
  });

  test("once the record is published and checked, the invitation goes", async () => {
    await dns.replace({ ...zone, txt: [{ name, strings: splitTxtValue(record) }] });
    // The console's "Check DNS now" (isched also looks by itself every minute).
    const checked = await a.api<unknown>("/keys/check", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ domain: "a.test" }),
    });
    expect(checked.status).toBe(200);
    const d = await stateOf(a, waiting.id, (s) => s !== "queued" && s !== "in-flight");
    expect(d).toMatchObject({ state: "delivered", attempts: 1 });
    expect(atPeer).toContain("mailto:bob@b.test");
    expect(a.stderr()).toContain("isched's DKIM key is visible in DNS");
  });
});

describe("with --fallback-after, a key still unpublished", () => {
  test("sends the waiting invitation by iMIP when the time is up", async () => {
    const a = await start("--smtp", `smtp://127.0.0.1:${sink.port}`, "--fallback-after", "1s");
    const sent = await submitInvitation(a, { domain: "a.test", attendee: "mailto:carol@b.test" });
    expect(sent.recipients[0]!.state).toBe("queued");
    const d = await stateOf(a, sent.id, (s) => s !== "queued" && s !== "in-flight");
    expect(d.state).toBe("sent-imip");
    expect(atPeer).not.toContain("mailto:carol@b.test");
    const mail = (await sink.waitFor(1)).find((m) => m.rcptTo.includes("carol@b.test"));
    expect(mail).toBeDefined();
  });
});

describe("--sign-unpublished", () => {
  test("signs at once, and start-up warns", async () => {
    const a = await start("--sign-unpublished");
    expect(a.stdout()).toContain("is not in DNS yet; signing anyway (--sign-unpublished)");
    expect(a.stdout()).toContain(
      "warning: --sign-unpublished: a peer that verifies before the TXT record is visible refuses the request (CalendarServer keeps refusing until it restarts)",
    );
    const sent = await submitInvitation(a, { domain: "a.test", attendee: "mailto:dave@b.test" });
    expect(sent.recipients[0]).toMatchObject({ state: "delivered" });
    expect(atPeer).toContain("mailto:dave@b.test");
  });
});
