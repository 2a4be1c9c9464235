/**
 * Outbound delivery beyond the happy path, with real parts: Debian's Cyrus as a remote receiver
 * through a static route (unsigned: it has no DKIM), a receiver that is down and then up (retried,
 * then delivered once), and a domain without iSchedule (no SRV record: the invitation is emailed,
 * and the email received by a real SMTP server has the iMIP structure).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { simpleParser } from "mailparser";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { parsePeerFlag } from "../../src/outbound/static-routes.ts";
import { waitForEvent } from "../support/caldav.ts";
import { type RunningCyrus, startCyrus } from "../support/cyrus.ts";
import { type RunningDnsmasq, startDnsmasq, type TestZone } from "../support/dnsmasq.ts";
import { invitation, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

let cyrus: RunningCyrus;
let dns: RunningDnsmasq;
let smtp: RunningSmtpServer;
let ca: TestCa;
let isched: TestServer;
let flakyPort: number;
let flaky: ReturnType<typeof Bun.serve> | undefined;
const flakyHits: string[] = [];

function startFlaky(): void {
  const cert = ca.issue(["cal.flaky.test"]);
  flaky = Bun.serve({
    hostname: "127.0.0.1",
    port: flakyPort,
    tls: { cert: cert.certPem, key: cert.keyPem },
    async fetch(req) {
      if (req.method === "GET") {
        return new Response(
          `<?xml version="1.0" encoding="utf-8"?><query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities><serial-number>1</serial-number><versions><version>1.0</version></versions></capabilities></query-result>`,
          { headers: { "Content-Type": "application/xml" } },
        );
      }
      flakyHits.push(req.headers.get("ischedule-message-id") ?? "");
      const recipient = req.headers.get("recipient") ?? "";
      return new Response(
        `<?xml version="1.0" encoding="utf-8"?><schedule-response xmlns="urn:ietf:params:xml:ns:ischedule"><response><recipient>${recipient}</recipient><request-status>2.0;Success</request-status></response></schedule-response>`,
        { headers: { "Content-Type": "application/xml" } },
      );
    },
  });
}

beforeAll(async () => {
  ca = createTestCa();
  flakyPort = await freePort();
  cyrus = await startCyrus({ domains: ["cyrus.test"], users: [{ name: "carol", password: "pw-carol" }] });
  smtp = await startSmtpServer();
  const zone: TestZone = {
    zones: ["flaky.test", "plain.test", "home.test"],
    srv: [{ name: "_ischedules._tcp.flaky.test", target: "cal.flaky.test", port: flakyPort }],
    hosts: [{ name: "cal.flaky.test", address: "127.0.0.1" }],
  };
  dns = await startDnsmasq(zone);
  isched = await startIsched({
    domains: ["home.test"],
    trust: [{ domain: "home.test", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
    peers: [parsePeerFlag(`cyrus.test=${cyrus.ischeduleUrl},sign=no,legacy-http`)],
    dnsServer: dns.server,
    ca: ca.caCertPem,
    smtpUrl: `smtp://127.0.0.1:${smtp.port}`,
    imipFrom: "isched@home.test",
    deliveryDeadlineMs: 1500,
  });
  // The operator publishes the key isched made on first start, and isched sees it: signing may start.
  const made = isched.keys.generated[0]!;
  await dns.replace({
    ...zone,
    txt: [{ name: `${made.selector}._domainkey.home.test`, strings: splitTxtValue(made.record) }],
  });
  await isched.keyPublication.check();
  expect(isched.keyPublication.waitReason("home.test")).toBeUndefined();
});

afterAll(async () => {
  await isched?.close();
  flaky?.stop(true);
  await dns?.stop();
  await smtp?.stop();
  await cyrus?.stop();
  ca?.remove();
});

const fromLocal = (recipients: string[], body: string) =>
  fetch(`${isched.url}/.well-known/ischedule`, {
    method: "POST",
    headers: {
      "iSchedule-Version": "1.0",
      Originator: "mailto:alice@home.test",
      Recipient: recipients.join(", "),
      "Content-Type": "text/calendar; method=REQUEST; component=VEVENT",
    },
    body,
  }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe("outbound delivery", () => {
  test("to Cyrus as a remote receiver through a static route, unsigned: the event lands in carol's calendar", async () => {
    const body = invitation({
      uid: "to-cyrus-1",
      organizer: "mailto:alice@home.test",
      attendees: ["mailto:carol@cyrus.test"],
    });
    const r = await fromLocal(["mailto:carol@cyrus.test"], body);
    expect(statuses(r.text)).toEqual({ "mailto:carol@cyrus.test": "2.0;Success" });
    const event = await waitForEvent(cyrus, "carol", "pw-carol", "Default", "to-cyrus-1");
    expect(event).toContain("ORGANIZER;CN=Organizer:mailto:alice@home.test");
  });

  test("a receiver that is down is retried with backoff and gets the message once when it is up", async () => {
    const body = invitation({
      uid: "flaky-1",
      organizer: "mailto:alice@home.test",
      attendees: ["mailto:dan@flaky.test"],
    });
    const r = await fromLocal(["mailto:dan@flaky.test"], body);
    // Held for the remote peer: 1.1, which a local CalendarServer does not resend (src/inbound/answers.ts).
    expect(statuses(r.text)).toEqual({ "mailto:dan@flaky.test": "1.1;Sent" });
    await Bun.sleep(700);
    startFlaky();
    const deadline = Date.now() + 10_000;
    let state = "";
    while (Date.now() < deadline) {
      state = isched.db
        .query<{ state: string }, []>(
          "SELECT d.state FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.uid = 'flaky-1'",
        )
        .get()!.state;
      if (state === "delivered") break;
      await Bun.sleep(100);
    }
    expect(state).toBe("delivered");
    expect(flakyHits.length).toBe(1);
    const attempts = isched.db
      .query<{ outcome: string; started_at: number }, []>(
        "SELECT a.outcome, a.started_at FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.id = d.message_id WHERE m.uid = 'flaky-1' ORDER BY a.id",
      )
      .all();
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.at(-1)!.outcome).toBe("delivered");
    expect(attempts.slice(0, -1).every((a) => a.outcome === "temporary")).toBe(true);
    // Backoff: the gaps between attempts do not shrink.
    const gaps = attempts.slice(1).map((a, i) => a.started_at - attempts[i]!.started_at);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]! * 0.8);
  });

  test("a domain without an iSchedule server gets the invitation by email (iMIP)", async () => {
    const before = smtp.messages.length;
    const body = invitation({
      uid: "plain-1",
      organizer: "mailto:alice@home.test",
      attendees: ["mailto:erin@plain.test"],
      summary: "Offsite",
    });
    const r = await fromLocal(["mailto:erin@plain.test"], body);
    expect(r.status).toBe(200);
    await smtp.waitFor(before + 1, 10_000);
    const m = smtp.messages[before]!;
    expect(m.rcptTo).toEqual(["erin@plain.test"]);
    const mail = await simpleParser(Buffer.from(m.raw));
    expect(mail.subject).toBe("Invitation: Offsite");
    expect(mail.from?.value[0]?.address).toBe("isched@home.test");
    expect(mail.replyTo?.value[0]?.address).toBe("alice@home.test");
    expect(mail.date).toBeInstanceOf(Date);
    expect(mail.messageId).toMatch(/@home\.test>$/);
    const raw = Buffer.from(m.raw).toString("latin1");
    expect(raw).toMatch(/Content-Type: multipart\/mixed;/);
    expect(raw).toMatch(/Content-Type: multipart\/alternative;/);
    expect(raw).toMatch(/Content-Type: text\/calendar; method=REQUEST; charset=UTF-8; component=VEVENT/);
    expect(raw).toMatch(/Content-Type: application\/ics; name="invite.ics"/);
    const calendar = mail.attachments.find((a) => a.contentType === "text/calendar");
    expect(calendar?.content.toString()).toContain("UID:plain-1");
    const state = isched.db
      .query<{ state: string; route: string }, []>(
        "SELECT d.state, d.route FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.uid = 'plain-1'",
      )
      .get();
    expect(state).toEqual({ state: "sent-imip", route: "imip" });
  });
});
