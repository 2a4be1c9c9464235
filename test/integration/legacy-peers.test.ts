/**
 * Legacy peers (the compiled binary): CalendarServer deployments that publish only the pre-draft-05
 * `_ischedule._tcp` SRV record (plain HTTP), or whose HTTPS endpoint redirects to http://. HTTPS stays
 * the rule; a peer the operator names with `--peer D=legacy-http` may use plain HTTP, and the start-up
 * summary, the log, the console and every attempt say so. Peers that are not named never get it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { FIXTURES, fixtureResponse, readHttpFixture } from "../support/http-fixture.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { labArgs, type ServedBinary, serveBinary, submitInvitation } from "../support/serve-binary.ts";

const CS = join(FIXTURES, "calendarserver");
const keyA = generateDkimKey("rsa");

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let isched: ServedBinary;
let plain: ReturnType<typeof Bun.serve>;
let secure: ReturnType<typeof Bun.serve>;
const received: { host: string; recipient: string }[] = [];

/** CalendarServer's captured answer, for the recipient asked (it names one per response). */
function answer(recipient: string): Response {
  const captured = fixtureResponse(readHttpFixture(join(CS, "delivered-response.http")));
  return new Response(
    readHttpFixture(join(CS, "delivered-response.http"))
      .body.toString()
      .replace("mailto:cyrus@example.net", recipient),
    { status: captured.status, headers: captured.headers },
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-legacy-"));
  ca = createTestCa();
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem);
  // A CalendarServer on plain HTTP (its _ischedule._tcp service).
  plain = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "GET") return fixtureResponse(readHttpFixture(join(CS, "capabilities.http")));
      await req.text();
      const recipient = req.headers.get("recipient") ?? "";
      received.push({ host: req.headers.get("host") ?? url.host, recipient });
      return answer(recipient);
    },
  });
  // A CalendarServer on HTTPS whose well-known URI redirects to its plain-HTTP port.
  const cert = ca.issue(["cal.moved.test", "cal.moved-no.test"]);
  secure = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    fetch(req) {
      const url = new URL(req.url);
      const host = (req.headers.get("host") ?? "").split(":")[0];
      return new Response(null, {
        status: 301,
        headers: { Location: `http://${host}:${plain.port}/ischedule${url.search}` },
      });
    },
  });
  dns = await startDnsmasq({
    zones: ["a.test", "legacy.test", "plain.test", "moved.test", "moved-no.test"],
    srv: [
      { name: "_ischedule._tcp.legacy.test", target: "cal.legacy.test", port: plain.port! },
      { name: "_ischedule._tcp.plain.test", target: "cal.plain.test", port: plain.port! },
      { name: "_ischedules._tcp.moved.test", target: "cal.moved.test", port: secure.port! },
      { name: "_ischedules._tcp.moved-no.test", target: "cal.moved-no.test", port: secure.port! },
    ],
    hosts: ["cal.legacy.test", "cal.plain.test", "cal.moved.test", "cal.moved-no.test"].map((name) => ({
      name,
      address: "127.0.0.1",
    })),
    txt: [{ name: "sel._domainkey.a.test", strings: splitTxtValue(keyA.record) }],
  });
  isched = await serveBinary([
    ...labArgs({
      domain: "a.test",
      keyFile: join(dir, "a.key"),
      selector: "sel",
      dns: dns.server,
      caFile: ca.caCertFile,
    }),
    "--peer",
    "legacy.test=legacy-http",
    "--peer",
    "moved.test=legacy-http",
  ]);
});

afterAll(async () => {
  await isched?.stop();
  plain?.stop(true);
  secure?.stop(true);
  await dns?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

interface Attempt {
  target: string | null;
  tls: string | null;
}

async function attempts(id: number): Promise<Attempt[]> {
  const m = await isched.api<{ deliveries: { attemptList: Attempt[] }[] }>(`/messages/${id}`);
  return m.body.deliveries[0]!.attemptList;
}

describe("a peer named with --peer D=legacy-http", () => {
  test("start-up says which peers may use plain HTTP", () => {
    expect(isched.stdout()).toContain(
      "  legacy HTTP   legacy.test, moved.test (--peer D=legacy-http: plain-HTTP iSchedule allowed for these peers only)",
    );
    expect(isched.stderr()).toContain("plain-HTTP iSchedule allowed for a legacy peer");
  });

  test("publishing only _ischedule._tcp, it is reached over plain HTTP, and the attempt says so", async () => {
    const sent = await submitInvitation(isched, { domain: "a.test", attendee: "mailto:bob@legacy.test" });
    expect(sent.recipients[0]).toMatchObject({
      state: "delivered",
      status: "1.2;Scheduling message has been delivered",
    });
    expect(received).toContainEqual({
      host: `cal.legacy.test:${plain.port}`,
      recipient: "mailto:bob@legacy.test",
    });
    expect(await attempts(sent.id)).toEqual([
      expect.objectContaining({
        target: `http://cal.legacy.test:${plain.port}/.well-known/ischedule`,
        tls: "none: plain HTTP (--peer legacy.test=legacy-http)",
      }),
    ]);
  });

  test("its HTTPS endpoint's redirect to http:// is followed", async () => {
    const sent = await submitInvitation(isched, { domain: "a.test", attendee: "mailto:carol@moved.test" });
    expect(sent.recipients[0]).toMatchObject({ state: "delivered" });
    expect(received).toContainEqual({
      host: `cal.moved.test:${plain.port}`,
      recipient: "mailto:carol@moved.test",
    });
  });

  test("the console's peer page shows the opt-in", async () => {
    const peer = await isched.api<{ route: unknown }>("/peers/legacy.test");
    expect(peer.body.route).toEqual({ url: null, legacyHttp: true, sign: true });
  });
});

describe("a peer not named", () => {
  test("publishing only _ischedule._tcp, it is never reached over plain HTTP; the reason names the opt-in", async () => {
    const sent = await submitInvitation(isched, { domain: "a.test", attendee: "mailto:dave@plain.test" });
    expect(received.map((r) => r.recipient)).not.toContain("mailto:dave@plain.test");
    expect(sent.recipients[0]).toMatchObject({ state: "failed", status: "5.2;Invalid calendar service" });
    expect(sent.recipients[0]!.description).toBe(
      "no _ischedules._tcp SRV record for plain.test (it publishes _ischedule._tcp, plain HTTP, which isched uses only for a peer named with --peer plain.test=legacy-http)",
    );
  });

  test("its redirect from https to http:// is refused, naming the opt-in", async () => {
    const sent = await submitInvitation(isched, { domain: "a.test", attendee: "mailto:erin@moved-no.test" });
    expect(received.map((r) => r.recipient)).not.toContain("mailto:erin@moved-no.test");
    expect(sent.recipients[0]!.description).toContain(
      `refusing the redirect from https://cal.moved-no.test:${secure.port}/.well-known/ischedule?action=capabilities to http://cal.moved-no.test:${plain.port}/ischedule?action=capabilities: it leaves https for plain http (allowed only for a peer named with --peer moved-no.test=legacy-http)`,
    );
  });
});
