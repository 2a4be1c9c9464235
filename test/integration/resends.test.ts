/**
 * A durably accepted message never makes a peer send it again, and a peer that sends it again anyway
 * under new message ids gets it delivered once, each copy with the first answer. The compiled binary,
 * with keys in a real DNS server (dnsmasq), in front of a calendar server (a counting iSchedule
 * receiver on loopback) that is slower than --delivery-deadline. The sender signs as a default
 * CalendarServer does, with d= its host name (cal.example.net for users @example.net), and the first
 * test sends as CalendarServer's work queue does (work.py: a response whose recipients are all 1.0 is
 * sent again, 10 times at most, each time signed anew with a new message id).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import { messageDetailByUid } from "../support/console-api.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { ics, statuses } from "../support/isched.ts";
import { rawExchange } from "../support/raw-http.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { signedPostBytes } from "../support/signed-post.ts";

const KEY = generateDkimKey("rsa");
const HOST_SIGNER = () => loadSigningKey(KEY.privateKeyPem, "cal.example.net", "s1");
const ORGANIZER = "mailto:cyrus@example.net";
/** The calendar server behind isched answers after this; isched's deadline is shorter. */
const CALENDAR_DELAY_MS = 700;

let dir: string;
let dns: RunningDnsmasq;
let calendar: ReturnType<typeof Bun.serve>;
let isched: ServeProcess;
/** What reached the calendar server: one entry per recipient per POST. */
const delivered: { uid: string; recipient: string; dtstamp: string }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-resends-"));
  calendar = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = await req.text();
      const recipients = (req.headers.get("Recipient") ?? "").split(",").map((r) => r.trim());
      const uid = /^UID:(.*)$/m.exec(body)?.[1]?.trim() ?? "";
      const dtstamp = /^DTSTAMP:(.*)$/m.exec(body)?.[1]?.trim() ?? "";
      for (const recipient of recipients) delivered.push({ uid, recipient, dtstamp });
      await Bun.sleep(CALENDAR_DELAY_MS);
      return new Response(
        scheduleResponseXml(recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" }))),
        { headers: { "Content-Type": "application/xml" } },
      );
    },
  });
  dns = await startDnsmasq({
    zones: ["example.net"],
    txt: [{ name: "s1._domainkey.cal.example.net", strings: splitTxtValue(KEY.record) }],
  });
  isched = running(
    await serveProcess([
      ...["--domain", "org.test", "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0"],
      ...["--data", join(dir, "data"), "--dns-server", `${dns.server.host}:${dns.server.port}`],
      ...["--deliver", `ischedule:http://127.0.0.1:${calendar.port}/ischedule`],
      ...["--delivery-deadline", "200ms", "--log-level", "warn"],
    ]),
  );
}, 60_000);

afterAll(async () => {
  await isched?.stop();
  calendar?.stop(true);
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function invite(o: { uid: string; attendees: string[]; dtstamp?: string; sequence?: number }): string {
  return ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//CALENDARSERVER.ORG//NONSGML Version 1//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${o.uid}`,
    `DTSTAMP:${o.dtstamp ?? "20261204T120000Z"}`,
    `SEQUENCE:${o.sequence ?? 0}`,
    "DTSTART:20261210T100000Z",
    "DURATION:PT1H",
    "SUMMARY:Budget review",
    `ORGANIZER:${ORGANIZER}`,
    ...o.attendees.map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
  );
}

/** One send as CalendarServer makes it: signed now, with a new iSchedule-Message-ID (dkim.py). */
async function send(body: string, recipients: string[]): Promise<Record<string, string>> {
  const r = await rawExchange({
    port: isched.port,
    request: signedPostBytes({ key: HOST_SIGNER(), originator: ORGANIZER, recipients, body }),
  });
  expect(r.status).toBe(200);
  return statuses(r.text);
}

const deliveriesOf = (uid: string) => delivered.filter((d) => d.uid === uid);

/** Waits until the calendar server has had `n` deliveries of `uid` (isched goes on after answering). */
async function settle(uid: string, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (deliveriesOf(uid).length < n && Date.now() < deadline) await Bun.sleep(50);
  // Anything more would come within the calendar's delay: wait that long again.
  await Bun.sleep(CALENDAR_DELAY_MS + 300);
}

describe("a calendar server slower than the deadline", () => {
  test("CalendarServer's work queue (all 1.0 = send again, new message id each time) stops after one send: one delivery", async () => {
    const body = invite({ uid: "cs-work-1@example.net", attendees: ["mailto:ann@org.test"] });
    const answers: Record<string, string>[] = [];
    // work.py ScheduleWorkMixin.checkTemporaryFailure: all 1.0 raises JobTemporaryError, run again
    // after TemporaryFailureDelay (60 s; 100 ms here), at most MaxTemporaryFailures (10) times.
    for (let run = 0; run <= 10; run++) {
      const answer = await send(body, ["mailto:ann@org.test"]);
      answers.push(answer);
      if (!Object.values(answer).every((s) => s.split(";")[0] === "1.0")) break;
      await Bun.sleep(100);
    }
    expect(answers).toEqual([{ "mailto:ann@org.test": "1.1;Sent" }]);
    await settle("cs-work-1@example.net", 1);
    expect(deliveriesOf("cs-work-1@example.net").length).toBe(1);
  });

  test("copies sent again under new message ids, one after another, are delivered once and answered like the first", async () => {
    const uid = "resent-1@example.net";
    const body = invite({ uid, attendees: ["mailto:ann@org.test"] });
    const first = await send(body, ["mailto:ann@org.test"]);
    expect(first).toEqual({ "mailto:ann@org.test": "1.1;Sent" });
    // One copy while the first is still being delivered, two after it was.
    expect(await send(body, ["mailto:ann@org.test"])).toEqual(first);
    await settle(uid, 1);
    for (let i = 0; i < 2; i++) expect(await send(body, ["mailto:ann@org.test"])).toEqual(first);
    await settle(uid, 1);
    expect(deliveriesOf(uid).length).toBe(1);
    // The console's page of the message counts the copies.
    expect((await messageDetailByUid(isched, join(dir, "data"), uid)).resent).toMatchObject({ copies: 3 });
  });

  test("eight copies sent at once under eight message ids: one delivery, eight equal answers", async () => {
    const uid = "resent-2@example.net";
    const body = invite({ uid, attendees: ["mailto:ann@org.test", "mailto:bob@org.test"] });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => send(body, ["mailto:ann@org.test", "mailto:bob@org.test"])),
    );
    for (const a of answers)
      expect(a).toEqual({ "mailto:ann@org.test": "1.1;Sent", "mailto:bob@org.test": "1.1;Sent" });
    await settle(uid, 2);
    expect(
      deliveriesOf(uid)
        .map((d) => d.recipient)
        .sort(),
    ).toEqual(["mailto:ann@org.test", "mailto:bob@org.test"]);
  });

  test("a new revision (DTSTAMP, SEQUENCE) is delivered again, and a copy with one more recipient goes to that one only", async () => {
    const uid = "resent-3@example.net";
    await send(invite({ uid, attendees: ["mailto:ann@org.test"] }), ["mailto:ann@org.test"]);
    await send(invite({ uid, attendees: ["mailto:ann@org.test"], dtstamp: "20261204T120500Z" }), [
      "mailto:ann@org.test",
    ]);
    await send(
      invite({ uid, attendees: ["mailto:ann@org.test"], dtstamp: "20261204T120500Z", sequence: 1 }),
      ["mailto:ann@org.test"],
    );
    const wider = invite({
      uid,
      attendees: ["mailto:ann@org.test", "mailto:bob@org.test"],
      dtstamp: "20261204T120500Z",
      sequence: 1,
    });
    expect(await send(wider, ["mailto:ann@org.test", "mailto:bob@org.test"])).toEqual({
      "mailto:ann@org.test": "1.1;Sent",
      "mailto:bob@org.test": "1.1;Sent",
    });
    await settle(uid, 4);
    expect(deliveriesOf(uid).map((d) => `${d.recipient} ${d.dtstamp}`)).toEqual([
      "mailto:ann@org.test 20261204T120000Z",
      "mailto:ann@org.test 20261204T120500Z",
      "mailto:ann@org.test 20261204T120500Z",
      "mailto:bob@org.test 20261204T120500Z",
    ]);
  });
});
