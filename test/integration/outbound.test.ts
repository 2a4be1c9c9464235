/**
 * Two organisations, each behind its own isched, on loopback: a.test and b.test published in a real
 * DNS server (SRV _ischedules._tcp and DKIM TXT records), HTTPS with a test CA. Invitations, replies,
 * cancellations and free/busy queries cross between them, signed by one isched and verified by the
 * other, each checked at the receiving side.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import {
  freeBusyRequest,
  ics,
  invitation,
  postAsPeer,
  startIsched,
  statuses,
  type TestServer,
} from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

const keyA = generateDkimKey("rsa");
const keyB = generateDkimKey("rsa");

let ca: TestCa;
let dns: RunningDnsmasq;
let a: TestServer;
let b: TestServer;
let webhookB: ReturnType<typeof Bun.serve>;
let dir: string;
const atB: {
  method: string;
  component: string;
  uid: string;
  recipients: string[];
  dkim: { result: string; domain: string };
}[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-outbound-"));
  ca = createTestCa();
  const [portA, portB] = [await freePort(), await freePort()];
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem);
  writeFileSync(join(dir, "b.key"), keyB.privateKeyPem);
  dns = await startDnsmasq({
    zones: ["a.test", "b.test", "nosrv.test"],
    srv: [
      { name: "_ischedules._tcp.a.test", target: "isched.a.test", port: portA },
      { name: "_ischedules._tcp.b.test", target: "isched.b.test", port: portB },
    ],
    hosts: [
      { name: "isched.a.test", address: "127.0.0.1" },
      { name: "isched.b.test", address: "127.0.0.1" },
    ],
    txt: [
      { name: "sel._domainkey.a.test", strings: splitTxtValue(keyA.record) },
      { name: "sel._domainkey.b.test", strings: splitTxtValue(keyB.record) },
    ],
  });
  // b.test's organisation: a webhook that records what arrives and answers free/busy.
  webhookB = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json()) as (typeof atB)[number] & { calendar: string };
      atB.push(body);
      return Response.json({
        recipients: body.recipients.map((recipient) => ({
          recipient,
          status: "2.0;Success",
          calendarData:
            body.component === "VFREEBUSY"
              ? ics(
                  "BEGIN:VCALENDAR",
                  "VERSION:2.0",
                  "PRODID:-//b//EN",
                  "METHOD:REPLY",
                  "BEGIN:VFREEBUSY",
                  `UID:${body.uid}`,
                  "DTSTAMP:20261125T120000Z",
                  "ORGANIZER:mailto:alice@a.test",
                  `ATTENDEE:${recipient}`,
                  "FREEBUSY:20261202T140000Z/20261202T150000Z",
                  "END:VFREEBUSY",
                  "END:VCALENDAR",
                )
              : undefined,
        })),
      });
    },
  });
  // The local servers and the tests reach their own isched at 127.0.0.1: the certificates say so too.
  const certA = ca.issue(["isched.a.test", "127.0.0.1"]);
  const certB = ca.issue(["isched.b.test", "127.0.0.1"]);
  const common = { dnsServer: dns.server, ca: ca.caCertPem, dkimSelector: "sel" };
  a = await startIsched({
    ...common,
    domains: ["a.test"],
    listen: { host: "127.0.0.1", port: portA },
    tls: { cert: certA.certPem, key: certA.keyPem, certFile: certA.certFile },
    dkimKeyFile: join(dir, "a.key"),
    // a.test's own calendar server posts from loopback, unsigned.
    trust: [{ domain: "a.test", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
  });
  b = await startIsched({
    ...common,
    domains: ["b.test"],
    listen: { host: "127.0.0.1", port: portB },
    tls: { cert: certB.certPem, key: certB.keyPem, certFile: certB.certFile },
    dkimKeyFile: join(dir, "b.key"),
    deliver: [{ target: { kind: "webhook", url: `http://127.0.0.1:${webhookB.port}/` } }],
    webhookSecret: "s",
    trust: [{ domain: "b.test", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
  });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  webhookB?.stop(true);
  await dns?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** What a local calendar server does: POST unsigned to its own isched over the trusted link. */
const fromLocal = (server: TestServer, originator: string, recipients: string[], body: string) =>
  fetch(`${server.url}/.well-known/ischedule`, {
    method: "POST",
    headers: {
      "iSchedule-Version": "1.0",
      Originator: originator,
      Recipient: recipients.join(", "),
      "Content-Type": `text/calendar; method=${/^METHOD:(\S+)/m.exec(body)![1]}`,
    },
    body,
    tls: { ca: ca.caCertPem },
  }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe("a.test and b.test through their ischeds", () => {
  test("an invitation from alice@a.test reaches b.test signed by a.test, and the answer comes back", async () => {
    const body = invitation({
      uid: "ab-1",
      organizer: "mailto:alice@a.test",
      attendees: ["mailto:bob@b.test"],
    });
    const r = await fromLocal(a, "mailto:alice@a.test", ["mailto:bob@b.test"], body);
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ "mailto:bob@b.test": "2.0;Success" });
    const got = atB.find((m) => m.uid === "ab-1");
    expect(got).toMatchObject({
      method: "REQUEST",
      component: "VEVENT",
      recipients: ["mailto:bob@b.test"],
      dkim: { result: "pass", domain: "a.test" },
    });
  });

  test("bob's reply goes back to a.test, signed by b.test, into alice's inbox", async () => {
    const reply = ics(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//b//EN",
      "METHOD:REPLY",
      "BEGIN:VEVENT",
      "UID:ab-1",
      "DTSTAMP:20261125T130000Z",
      "DTSTART:20261202T100000Z",
      "ORGANIZER:mailto:alice@a.test",
      "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@b.test",
      "END:VEVENT",
      "END:VCALENDAR",
    );
    const r = await fromLocal(b, "mailto:bob@b.test", ["mailto:alice@a.test"], reply);
    expect(statuses(r.text)).toEqual({ "mailto:alice@a.test": "2.0;Success" });
    const res = await fetch(`${a.consoleUrl}/api/v1/inbox?recipient=mailto:alice@a.test`, {
      headers: { Authorization: `Bearer ${a.apiToken}` },
    });
    const inbox = (await res.json()) as {
      items: { method: string; uid: string; dkimResult: string; dkimDomain: string; body: string }[];
    };
    expect(inbox.items[0]).toMatchObject({
      method: "REPLY",
      uid: "ab-1",
      dkimResult: "pass",
      dkimDomain: "b.test",
    });
    expect(inbox.items[0]!.body).toContain("PARTSTAT=ACCEPTED");
  });

  test("a cancellation reaches b.test", async () => {
    const cancel = invitation({
      uid: "ab-1",
      organizer: "mailto:alice@a.test",
      attendees: ["mailto:bob@b.test"],
      method: "CANCEL",
    });
    const r = await fromLocal(a, "mailto:alice@a.test", ["mailto:bob@b.test"], cancel);
    expect(statuses(r.text)).toEqual({ "mailto:bob@b.test": "2.0;Success" });
    expect(atB.filter((m) => m.uid === "ab-1").map((m) => m.method)).toEqual(["REQUEST", "CANCEL"]);
  });

  test("a free/busy query answers with b.test's VFREEBUSY reply", async () => {
    const query = freeBusyRequest({
      uid: "ab-fb",
      organizer: "mailto:alice@a.test",
      attendees: ["mailto:bob@b.test"],
    });
    const r = await fromLocal(a, "mailto:alice@a.test", ["mailto:bob@b.test"], query);
    expect(statuses(r.text)).toEqual({ "mailto:bob@b.test": "2.0;Success" });
    expect(r.text).toContain("FREEBUSY:20261202T140000Z/20261202T150000Z");
  });

  test("b.test refuses a request signed by a.test that claims a b.test originator", async () => {
    const { loadSigningKey } = await import("../../src/dkim/sign.ts");
    const forged = await postAsPeer({
      url: `${b.url}/.well-known/ischedule`,
      ca: ca.caCertPem,
      key: loadSigningKey(keyA.privateKeyPem, "a.test", "sel"),
      originator: "mailto:mallory@b.test",
      recipients: ["mailto:bob@b.test"],
      body: invitation({
        uid: "forged",
        organizer: "mailto:mallory@b.test",
        attendees: ["mailto:bob@b.test"],
      }),
    });
    expect(forged.status).toBe(403);
    expect(forged.text).toContain("<originator-denied/>");
    expect(atB.some((m) => m.uid === "forged")).toBe(false);
  });
});
