/**
 * Issue 6's two organisations, end to end with real parts: Cyrus A and Cyrus B (Debian), each behind
 * its own isched, a.test and b.test published in dnsmasq (SRV and DKIM keys), HTTPS with a test CA.
 * Each Cyrus sends its iMIP to its own isched's SMTP intake (smtp_backend: host). A user on Cyrus A
 * invites a user on Cyrus B over CalDAV: the invitation reaches Cyrus B by iSchedule (isched B
 * verifies isched A's signature). The attendee accepts over CalDAV: the REPLY goes back the same way
 * and the organiser's copy shows the new PARTSTAT. An attendee at a domain with no iSchedule server
 * gets the original email through the relay, unchanged.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { getEvent, putEvent, waitForEvent } from "../support/caldav.ts";
import { type RunningCyrus, startCyrus } from "../support/cyrus.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { ics, startIsched, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let relay: RunningSmtpServer;
let cyrusA: RunningCyrus;
let cyrusB: RunningCyrus;
let ischedA: TestServer;
let ischedB: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-two-orgs-"));
  ca = createTestCa();
  const keyA = generateDkimKey("rsa");
  const keyB = generateDkimKey("rsa");
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem);
  writeFileSync(join(dir, "b.key"), keyB.privateKeyPem);
  const [httpsA, httpsB, smtpA, smtpB] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  dns = await startDnsmasq({
    zones: ["a.test", "b.test", "nowhere.test"],
    srv: [
      { name: "_ischedules._tcp.a.test", target: "isched.a.test", port: httpsA },
      { name: "_ischedules._tcp.b.test", target: "isched.b.test", port: httpsB },
    ],
    hosts: [
      { name: "isched.a.test", address: "127.0.0.1" },
      { name: "isched.b.test", address: "127.0.0.1" },
    ],
    txt: [
      { name: "k._domainkey.a.test", strings: splitTxtValue(keyA.record) },
      { name: "k._domainkey.b.test", strings: splitTxtValue(keyB.record) },
    ],
  });
  relay = await startSmtpServer();
  cyrusA = await startCyrus({
    domains: ["a.test"],
    users: [{ name: "alice", password: "pw-alice" }],
    smtpHost: { host: "127.0.0.1", port: smtpA },
  });
  cyrusB = await startCyrus({
    domains: ["b.test"],
    users: [{ name: "bob", password: "pw-bob" }],
    smtpHost: { host: "127.0.0.1", port: smtpB },
  });
  const org = (domain: string, key: string, https: number, smtp: number, cyrus: RunningCyrus) => {
    const cert = ca.issue([`isched.${domain}`]);
    return startIsched({
      domains: [domain],
      listen: { host: "127.0.0.1", port: https },
      tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
      dkimKeyFile: join(dir, key),
      dkimSelector: "k",
      deliver: [{ target: { kind: "ischedule", url: cyrus.ischeduleUrl } }],
      dnsServer: dns.server,
      ca: ca.caCertPem,
      trust: [{ domain, policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
      smtpIntake: {
        listen: { host: "127.0.0.1", port: smtp },
        allow: parseCidrList("127.0.0.1"),
        relay: `smtp://127.0.0.1:${relay.port}`,
        maxSizeBytes: 1024 * 1024,
      },
    });
  };
  ischedA = await org("a.test", "a.key", httpsA, smtpA, cyrusA);
  ischedB = await org("b.test", "b.key", httpsB, smtpB, cyrusB);
});

afterAll(async () => {
  await ischedA?.close();
  await ischedB?.close();
  await cyrusA?.stop();
  await cyrusB?.stop();
  await relay?.stop();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const event = (uid: string, attendees: string[], partstat = "NEEDS-ACTION") =>
  ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261203T150000Z",
    "DTEND:20261203T160000Z",
    "SUMMARY:Cross-organisation review",
    "ORGANIZER;CN=Alice:mailto:alice@a.test",
    "ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:alice@a.test",
    ...attendees.map((a) => `ATTENDEE;PARTSTAT=${partstat};RSVP=TRUE:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
  );

test("alice on Cyrus A invites bob on Cyrus B; bob accepts; alice's copy shows ACCEPTED", async () => {
  await putEvent(
    cyrusA,
    "alice",
    "pw-alice",
    "Default",
    "two-orgs-1",
    event("two-orgs-1", ["mailto:bob@b.test"]),
  );
  // The invitation went Cyrus A -> SMTP -> isched A -> iSchedule (signed) -> isched B -> Cyrus B.
  const atBob = await waitForEvent(cyrusB, "bob", "pw-bob", "Default", "two-orgs-1", undefined, 15_000);
  expect(atBob).toContain("SUMMARY:Cross-organisation review");
  const inbound = ischedB.db
    .query<{ intake: string; dkim_result: string; dkim_domain: string; method: string }, []>(
      "SELECT intake, dkim_result, dkim_domain, method FROM messages WHERE uid = 'two-orgs-1' AND direction = 'inbound'",
    )
    .get();
  expect(inbound).toEqual({
    intake: "ischedule",
    dkim_result: "pass",
    dkim_domain: "a.test",
    method: "REQUEST",
  });
  const outbound = ischedA.db
    .query<{ intake: string }, []>("SELECT intake FROM messages WHERE uid = 'two-orgs-1'")
    .get();
  expect(outbound?.intake).toBe("smtp");
  expect(relay.messages.some((m) => Buffer.from(m.raw).toString("latin1").includes("two-orgs-1"))).toBe(
    false,
  );

  // Bob accepts in his own calendar: Cyrus B sends the REPLY by iMIP to isched B, which delivers it by
  // iSchedule to isched A and Cyrus A.
  const accepted = atBob!.replace(
    /ATTENDEE;([^\r\n]*?)PARTSTAT=NEEDS-ACTION([^\r\n]*?):mailto:bob@b\.test/,
    "ATTENDEE;$1PARTSTAT=ACCEPTED$2:mailto:bob@b.test",
  );
  expect(accepted).not.toBe(atBob);
  await putEvent(cyrusB, "bob", "pw-bob", "Default", "two-orgs-1", accepted);
  const deadline = Date.now() + 15_000;
  let organiserCopy = "";
  while (Date.now() < deadline) {
    organiserCopy = (await getEvent(cyrusA, "alice", "pw-alice", "Default", "two-orgs-1")) ?? "";
    if (/PARTSTAT=ACCEPTED[^\r\n]*:mailto:bob@b\.test/.test(organiserCopy.replace(/\r\n /g, ""))) break;
    await Bun.sleep(200);
  }
  expect(organiserCopy.replace(/\r\n /g, "")).toMatch(/PARTSTAT=ACCEPTED[^\r\n]*:mailto:bob@b\.test/);
  const reply = ischedA.db
    .query<{ dkim_domain: string; method: string }, []>(
      "SELECT dkim_domain, method FROM messages WHERE uid = 'two-orgs-1' AND direction = 'inbound'",
    )
    .get();
  expect(reply).toEqual({ dkim_domain: "b.test", method: "REPLY" });
}, 60_000);

test("an attendee at a domain without iSchedule gets Cyrus's original email through the relay, unchanged", async () => {
  const before = relay.messages.length;
  await putEvent(
    cyrusA,
    "alice",
    "pw-alice",
    "Default",
    "two-orgs-2",
    event("two-orgs-2", ["mailto:zed@nowhere.test"]),
  );
  await relay.waitFor(before + 1, 15_000);
  const mail = relay.messages[before]!;
  expect(mail.rcptTo).toEqual(["zed@nowhere.test"]);
  expect(mail.mailFrom).toBe("alice@a.test");
  const raw = Buffer.from(mail.raw).toString("latin1");
  expect(raw).toContain("Invitation.ics");
  expect(raw).toMatch(/Message-ID: <cyrus-caldav-/i);
  // The log shows the message with its intake and, for the recipient, that it was relayed (not
  // sent by iSchedule).
  const logged = ischedA.db
    .query<{ intake: string; route: string; state: string; request_status: string }, []>(
      "SELECT m.intake, d.route, d.state, d.request_status FROM messages m JOIN deliveries d ON d.message_id = m.id WHERE m.uid = 'two-orgs-2'",
    )
    .all();
  expect(logged).toEqual([
    { intake: "smtp", route: "relay", state: "delivered", request_status: "1.1;Sent" },
  ]);
}, 60_000);
