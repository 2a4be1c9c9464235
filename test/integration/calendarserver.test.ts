/**
 * isched (the compiled binary) against Apple CalendarServer's own bytes (test/fixtures/calendarserver,
 * made by running CalendarServer's code: see its README). Inbound: CalendarServer's signed requests,
 * replayed byte for byte. Outbound: a stand-in CalendarServer on HTTPS that answers with
 * CalendarServer's captured capabilities and responses, and redirects /.well-known/ischedule to
 * /ischedule as CalendarServer does.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { parseScheduleResponse } from "../../src/ischedule/response-reader.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { FIXTURES, fixtureResponse, readHttpFixture, replayBytes } from "../support/http-fixture.ts";
import { invitation, statuses } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { rawExchange } from "../support/raw-http.ts";
import { labArgs, type ServedBinary, serveBinary } from "../support/serve-binary.ts";

const CS = join(FIXTURES, "calendarserver");
const keyA = generateDkimKey("rsa");

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let isched: ServedBinary;
/**
 * Another isched for CalendarServer's signed requests, its clock started a minute after their t=:
 * their signatures are fixed bytes, and isched honours x= for at most a day after t=.
 */
let receiver: ServedBinary;
/** The same, for the request signed with CalendarServer's host name (its own messages and log). */
let hostReceiver: ServedBinary;
/** t= of the captured requests (make.py freezes CalendarServer's clock there), plus a minute. */
const SIGNED_AT = "2025-12-05 12:01:00";
let cs: ReturnType<typeof Bun.serve>;
const atCs: { path: string; headers: Headers; body: string }[] = [];

/** Which captured answer the stand-in gives: named in the UID, or by what the request is. */
function answerFor(body: string): string {
  const uid = /^UID:(.*)$/m.exec(body)?.[1] ?? "";
  const named = /answer=([a-z-]+)/.exec(uid)?.[1];
  if (named) return `${named}.http`;
  return body.includes("BEGIN:VFREEBUSY") ? "freebusy-response.http" : "delivered-response.http";
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-cs-"));
  ca = createTestCa();
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem);
  const cert = ca.issue(["cal.example.net"]);
  // The stand-in CalendarServer: its capabilities and answers as captured from its code.
  cs = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    async fetch(req) {
      const url = new URL(req.url);
      // resource.py: the well-known URI is a redirect to the server's /ischedule (notes: CalendarServer).
      if (url.pathname === "/.well-known/ischedule")
        return new Response(null, {
          status: 301,
          headers: { Location: `https://cal.example.net:${cs.port}/ischedule${url.search}` },
        });
      if (url.pathname !== "/ischedule") return new Response("not found", { status: 404 });
      if (req.method === "GET") return fixtureResponse(readHttpFixture(join(CS, "capabilities.http")));
      const body = await req.text();
      atCs.push({ path: url.pathname, headers: req.headers, body });
      return fixtureResponse(readHttpFixture(join(CS, answerFor(body))));
    },
  });
  dns = await startDnsmasq({
    zones: ["a.test", "example.net"],
    srv: [{ name: "_ischedules._tcp.example.net", target: "cal.example.net", port: cs.port! }],
    hosts: [{ name: "cal.example.net", address: "127.0.0.1" }],
    txt: [
      { name: "sel._domainkey.a.test", strings: splitTxtValue(keyA.record) },
      // dkimtool --txt's record, where each signing domain of the fixtures publishes it.
      ...["example.net", "cal.example.net"].map((d) => ({
        name: `ischedule._domainkey.${d}`,
        strings: splitTxtValue(readFileSync(join(CS, "ischedule-txt-record.txt"), "utf8").trim()),
      })),
    ],
  });
  isched = await serveBinary([
    ...labArgs({
      domain: "a.test",
      keyFile: join(dir, "a.key"),
      selector: "sel",
      dns: dns.server,
      caFile: ca.caCertFile,
    }),
    // Our own calendar server on loopback posts unsigned (free/busy queries to CalendarServer users).
    "--trust",
    "a.test=unsigned:127.0.0.1",
  ]);
  const receiverArgs = labArgs({
    domain: "a.test",
    keyFile: join(dir, "a.key"),
    selector: "sel",
    dns: dns.server,
    caFile: ca.caCertFile,
  });
  [receiver, hostReceiver] = await Promise.all([
    serveBinary(receiverArgs, { clockFrom: SIGNED_AT }),
    serveBinary(receiverArgs, { clockFrom: SIGNED_AT }),
  ]);
});

afterAll(async () => {
  await isched?.stop();
  await receiver?.stop();
  await hostReceiver?.stop();
  cs?.stop(true);
  await dns?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const port = () => Number(new URL(receiver.url).port);

describe("CalendarServer sends to isched", () => {
  test("its signed invitation (d= its domain, one Recipient line each, Dkim-Signature casing) is verified and delivered", async () => {
    const request = readHttpFixture(join(CS, "invite-domain.http"));
    expect(request.fields.filter(([n]) => n === "Recipient").length).toBe(2);
    expect(request.fields.find(([n]) => n === "Dkim-Signature")?.[1]).toContain(
      "q=private-exchange:http/well-known:dns/txt",
    );
    const answer = await rawExchange({ port: port(), request: replayBytes(request, `127.0.0.1:${port()}`) });
    expect(answer.status).toBe(200);
    expect(statuses(answer.text)).toEqual({
      "mailto:alice@a.test": "2.0;Success",
      "mailto:bob@a.test": "2.0;Success",
    });
    const inbox = await receiver.api<{ items: { uid: string }[] }>("/inbox?recipient=mailto:bob@a.test");
    expect(inbox.body.items.map((m) => m.uid)).toContain("cs-weekly-1@example.net");
  });

  // A default CalendarServer signs with d= its host name (dkim.py getConfiguration: DKIM.Domain, else
  // ServerHostName): cal.example.net for its users @example.net, the same organisational domain.
  test("its invitation signed with d= its host name (cal.example.net) is accepted by relaxed alignment, and the log says so", async () => {
    const request = readHttpFixture(join(CS, "invite-hostname.http"));
    expect(request.fields.find(([n]) => n === "Dkim-Signature")?.[1]).toContain("d=cal.example.net;");
    const at = Number(new URL(hostReceiver.url).port);
    const answer = await rawExchange({ port: at, request: replayBytes(request, `127.0.0.1:${at}`) });
    expect(answer.status).toBe(200);
    expect(statuses(answer.text)).toEqual({
      "mailto:alice@a.test": "2.0;Success",
      "mailto:bob@a.test": "2.0;Success",
    });
    const inbox = await hostReceiver.api<{ items: { uuid: string; uid: string; dkimDomain: string }[] }>(
      "/inbox?recipient=mailto:bob@a.test",
    );
    const item = inbox.body.items.find((m) => m.uid === "cs-weekly-1@example.net");
    expect(item?.dkimDomain).toBe("cal.example.net");
    const detail = await hostReceiver.api<{ dkim: { result: string; signerRule: string } }>(
      `/messages/${item!.uuid}`,
    );
    expect(detail.body.dkim).toMatchObject({
      result: "pass",
      signerRule:
        "d=cal.example.net and the Originator's domain example.net are both in the organisational domain example.net (relaxed alignment, RFC 7489 §3.1).",
    });
  });

  // Both captured invitations are one iTIP revision (same Originator, recipients, UID, SEQUENCE and
  // DTSTAMP) signed twice, as CalendarServer's work queue signs each run anew with a new message id
  // (work.py, dkim.py): the second is a copy of the first.
  test("the same invitation signed again (host name, new message id) is answered like the first and delivered once", async () => {
    const request = readHttpFixture(join(CS, "invite-hostname.http"));
    const answer = await rawExchange({ port: port(), request: replayBytes(request, `127.0.0.1:${port()}`) });
    expect(answer.status).toBe(200);
    expect(statuses(answer.text)).toEqual({
      "mailto:alice@a.test": "2.0;Success",
      "mailto:bob@a.test": "2.0;Success",
    });
    const inbox = await receiver.api<{ items: { uuid: string; uid: string }[] }>(
      "/inbox?recipient=mailto:bob@a.test",
    );
    const copies = inbox.body.items.filter((m) => m.uid === "cs-weekly-1@example.net");
    expect(copies.length).toBe(1);
    const detail = await receiver.api<{ dkim: { domain: string }; resent: { copies: number } | null }>(
      `/messages/${copies[0]!.uuid}`,
    );
    expect(detail.body.dkim.domain).toBe("example.net");
    expect(detail.body.resent?.copies).toBe(1);
  });
});

describe("isched sends to CalendarServer", () => {
  test("an update to a weekly series created in 2024 goes by iSchedule although min-date-time is 1 January of last year", async () => {
    const caps = readHttpFixture(join(CS, "capabilities.http")).body.toString();
    expect(caps).toContain("<min-date-time>20250101T000000Z</min-date-time>");
    const update = [
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//isched tests//EN",
      "METHOD:REQUEST",
      "BEGIN:VEVENT",
      "UID:weekly-since-2024@a.test",
      "DTSTAMP:20261204T100000Z",
      "CREATED:20240102T090000Z",
      "LAST-MODIFIED:20261204T100000Z",
      "DTSTART:20240108T090000Z",
      "DTEND:20240108T100000Z",
      "RRULE:FREQ=WEEKLY",
      "EXDATE:20240304T090000Z",
      "SEQUENCE:7",
      "SUMMARY:Weekly planning",
      "ORGANIZER:mailto:alice@a.test",
      "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:cyrus@example.net",
      "END:VEVENT",
      "END:VCALENDAR",
      "",
    ].join("\r\n");
    const sent = await isched.api<{ recipients: { recipient: string; route: string; status: string }[] }>(
      "/messages",
      { method: "POST", headers: { "content-type": "text/calendar" }, body: update },
    );
    expect(sent.status).toBe(202);
    expect(sent.body.recipients).toEqual([
      expect.objectContaining({
        recipient: "mailto:cyrus@example.net",
        route: "ischedule",
        status: "1.2;Scheduling message has been delivered",
      }),
    ]);
    expect(atCs.map((r) => /^UID:(.*)$/m.exec(r.body)?.[1]?.trim())).toContain("weekly-since-2024@a.test");
  });
});

describe("CalendarServer's answers as isched reads them", () => {
  const sendTo = (uid: string) =>
    isched.api<{ recipients: { status: string; description?: string; state: string }[] }>("/messages", {
      method: "POST",
      headers: { "content-type": "text/calendar" },
      body: invitation({ uid, organizer: "mailto:alice@a.test", attendees: ["mailto:cyrus@example.net"] }),
    });

  test("its organizer-denied reads as a reason with its own text", async () => {
    const sent = await sendTo("x-answer=error-organizer-denied@a.test");
    expect(sent.body.recipients[0]).toMatchObject({
      state: "failed",
      status: "5.2;Invalid calendar service",
    });
    expect(sent.body.recipients[0]!.description).toContain(
      "refused the request: it does not let this ORGANIZER schedule with its users (HTTP 403, organizer-denied: Organizer cannot schedule)",
    );
  });

  test("its DAV:error keeps the text of twisted's error-description", async () => {
    const sent = await sendTo("x-answer=error-originator-missing@a.test");
    expect(sent.body.recipients[0]!.description).toContain(
      "refused the request (HTTP 403, originator-missing: Missing originator)",
    );
  });

  test("its free/busy answer reaches our calendar server with CRLF line ends, as CalendarServer sent them", async () => {
    const query = [
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//isched tests//EN",
      "METHOD:REQUEST",
      "BEGIN:VFREEBUSY",
      "UID:fb-1@a.test",
      "DTSTAMP:20261201T120000Z",
      "DTSTART:20261202T000000Z",
      "DTEND:20261203T000000Z",
      "ORGANIZER:mailto:alice@a.test",
      "ATTENDEE:mailto:cyrus@example.net",
      "END:VFREEBUSY",
      "END:VCALENDAR",
      "",
    ].join("\r\n");
    const res = await fetch(`${isched.url}/.well-known/ischedule`, {
      method: "POST",
      headers: {
        "iSchedule-Version": "1.0",
        "Content-Type": "text/calendar; component=VFREEBUSY; method=REQUEST",
        Originator: "mailto:alice@a.test",
        Recipient: "mailto:cyrus@example.net",
      },
      body: query,
    });
    expect(res.status).toBe(200);
    const answer = parseScheduleResponse(await res.text());
    const sentByCs = readHttpFixture(join(CS, "freebusy-response.http")).body.toString();
    const cdata = /<!\[CDATA\[([\s\S]*?)\]\]>/.exec(sentByCs)![1]!;
    expect(cdata).toContain("\r\n");
    expect(answer).toEqual({
      kind: "responses",
      responses: [expect.objectContaining({ requestStatus: "2.0;Success", calendarData: cdata })],
    });
  });
});

describe("a folded DKIM-Signature (obs-fold, RFC 9112 §5.2)", () => {
  // The draft's examples and Cyrus's DKIM builds fold the header. Bun's HTTP parser refuses
  // obs-fold itself with a bare 400 before isched sees the request (RFC 9112 §5.2 allows the 400;
  // it cannot carry an iSchedule error): docs/interop.md says so. This pins the behaviour.
  test("is refused by the HTTP layer with 400 and no body", async () => {
    const request = readHttpFixture(join(CS, "invite-domain.http"));
    const folded = {
      ...request,
      fields: request.fields.map(([n, v]) =>
        n === "Dkim-Signature" ? ([n, v.replace("; c=", ";\r\n\tc=")] as const) : ([n, v] as const),
      ),
    };
    const answer = await rawExchange({ port: port(), request: replayBytes(folded, `127.0.0.1:${port()}`) });
    expect(answer.status).toBe(400);
    expect(answer.text).toBe("");
  });
});
