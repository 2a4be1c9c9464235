/**
 * Every error element of the receiver, each triggered by a request a remote peer could really send,
 * over real sockets: the HTTP status, the IS:error child, a response-description and the iSchedule
 * headers. The peers' keys are published by a real DNS server (dnsmasq) on loopback. Requests go
 * through a raw HTTP client so that repeated fields, streamed bodies and a second loopback source
 * address (127.0.0.2, not trusted) are sent exactly as written.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey, signRequest } from "../../src/dkim/sign.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { ISCHEDULE_NS } from "../../src/ischedule/namespaces.ts";
import { parseXml } from "../../src/ischedule/xml-reader.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import {
  freeBusyRequest,
  ics,
  invitation,
  startIsched,
  statuses,
  type TestServer,
} from "../support/isched.ts";
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../support/raw-http.ts";

const PEER = generateDkimKey("rsa");
const DENIED = generateDkimKey("rsa");
const peerKey = loadSigningKey(PEER.privateKeyPem, "peer.test", "s1");
const deniedKey = loadSigningKey(DENIED.privateKeyPem, "denied.test", "s1");

const BERNARD = "mailto:bernard@peer.test";
const ANN = "mailto:ann@org.test";
const SMALL_CAP = 64 * 1024;

let dns: RunningDnsmasq;
/** Hosts org.test (store), fb.test (free/busy capable) and branch.peer.test; trusts peer.test unsigned from 127.0.0.1. */
let isched: TestServer;
/** At most 2 recipients and 64 KB bodies. */
let small: TestServer;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ["peer.test", "denied.test"],
    txt: [
      { name: "s1._domainkey.peer.test", strings: splitTxtValue(PEER.record) },
      { name: "s1._domainkey.denied.test", strings: splitTxtValue(DENIED.record) },
    ],
  });
  isched = await startIsched({
    domains: ["org.test", "fb.test", "branch.peer.test"],
    deliver: [
      { domain: "org.test", target: { kind: "store" } },
      // Only there to advertise VFREEBUSY; every free/busy request below is refused before delivery.
      { domain: "fb.test", target: { kind: "ischedule", url: "http://127.0.0.1:9/ischedule" } },
    ],
    trust: [
      { domain: "peer.test", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } },
      { domain: "denied.test", policy: { mode: "deny" } },
    ],
    dnsServer: dns.server,
  });
  small = await startIsched({
    domains: ["org.test"],
    limits: { ...DEFAULT_LIMITS, maxRecipients: 2, maxContentLength: SMALL_CAP },
    dnsServer: dns.server,
  });
});

afterAll(async () => {
  await isched?.close();
  await small?.close();
  await dns?.stop();
});

interface Post {
  originator?: string;
  recipients?: string[];
  body: string;
  /** null: unsigned. Default: peer.test's key. */
  key?: SigningKey | null;
  nowMs?: number;
  contentType?: string;
  /** Changes the fields after signing (to break or add things as a peer would). */
  after?: (fields: RawField[]) => RawField[];
  server?: TestServer;
  localAddress?: string;
}

function portOf(server: TestServer): number {
  return Number(new URL(server.url).port);
}

/** The fields of a scheduling POST as a peer sends them, signed unless key is null. */
function peerFields(p: Post): RawField[] {
  const method = /^METHOD:(\S+)/m.exec(p.body)?.[1] ?? "REQUEST";
  const component = /^BEGIN:(VEVENT|VTODO|VFREEBUSY|VJOURNAL)/m.exec(p.body)?.[1] ?? "VEVENT";
  const fields: [string, string][] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", crypto.randomUUID()],
    ["Originator", p.originator ?? BERNARD],
    ["Recipient", (p.recipients ?? [ANN]).join(", ")],
    ["Content-Type", p.contentType ?? `text/calendar; component=${component}; method=${method}`],
    ["Cache-Control", "no-cache, no-transform"],
  ];
  const key = p.key === undefined ? peerKey : p.key;
  if (key) {
    const signature = signRequest({ key, fields, body: Buffer.from(p.body), nowMs: p.nowMs ?? Date.now() });
    fields.unshift(["DKIM-Signature", signature]);
  }
  return [["Host", "isched.org.test"], ...fields];
}

function post(p: Post): Promise<RawResponse> {
  const server = p.server ?? isched;
  const fields = peerFields(p);
  return rawExchange({
    port: portOf(server),
    localAddress: p.localAddress,
    request: requestBytes({
      path: "/.well-known/ischedule",
      fields: p.after ? p.after(fields) : fields,
      body: p.body,
    }),
  });
}

const replace = (name: string, value: string) => (fields: RawField[]) =>
  fields.map(([n, v]): RawField => (n.toLowerCase() === name.toLowerCase() ? [n, value] : [n, v]));
const drop = (name: string) => (fields: RawField[]) =>
  fields.filter(([n]) => n.toLowerCase() !== name.toLowerCase());

/**
 * Asserts an iSchedule error answer: the status, <error xmlns="urn:ietf:params:xml:ns:ischedule">
 * whose first child is the element, a non-empty response-description (returned), and the iSchedule
 * headers with the server's capabilities serial.
 */
function expectError(r: RawResponse, status: number, element: string, server = isched): string {
  expect({ status: r.status, element: errorElement(r.text) }).toEqual({ status, element });
  expect(r.headers.get("content-type")).toStartWith("application/xml");
  expect(r.headers.get("ischedule-version")).toBe("1.0");
  expect(r.headers.get("ischedule-capabilities")).toBe(String(server.capabilities().serial));
  const text = parseXml(r.text).children.find((c) => c.name === "response-description")?.text ?? "";
  expect(text.trim()).not.toBe("");
  return text;
}

function errorElement(xml: string): string | undefined {
  try {
    const root = parseXml(xml);
    if (root.name !== "error" || root.ns !== ISCHEDULE_NS) return `not an IS:error: <${root.name}>`;
    return root.children[0]?.ns === ISCHEDULE_NS ? root.children[0].name : undefined;
  } catch (e) {
    return `unparseable: ${(e as Error).message}`;
  }
}

const invite = (uid: string, attendees = [ANN]) => invitation({ uid, organizer: BERNARD, attendees });

/** A REQUEST VEVENT with the given lines inside the VEVENT (after UID and DTSTAMP). */
function event(uid: string, lines: string[], o: { start?: string; end?: string } = {}): string {
  return ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//peer.test//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20261125T120000Z",
    `DTSTART:${o.start ?? "20261202T100000Z"}`,
    `DTEND:${o.end ?? "20261202T110000Z"}`,
    "SUMMARY:Planning",
    `ORGANIZER:${BERNARD}`,
    `ATTENDEE;PARTSTAT=NEEDS-ACTION:${ANN}`,
    ...lines,
    "END:VEVENT",
    "END:VCALENDAR",
  );
}

describe("header checks (draft §6.1)", () => {
  test("a request without iSchedule-Version is refused with 400 version-not-supported", async () => {
    const r = await post({ body: invite("v-1"), after: drop("iSchedule-Version") });
    expect(expectError(r, 400, "version-not-supported")).toContain("no iSchedule-Version");
  });

  test("iSchedule-Version 2.0 is refused with 400 version-not-supported naming the supported 1.0", async () => {
    const r = await post({ body: invite("v-2"), after: replace("iSchedule-Version", "2.0") });
    const description = expectError(r, 400, "version-not-supported");
    expect(description).toContain("2.0");
    expect(description).toContain("supported: 1.0");
  });

  test("a JSON body type is refused with 400 invalid-calendar-data-type", async () => {
    const r = await post({ body: invite("ct-1"), contentType: "application/json" });
    expect(expectError(r, 400, "invalid-calendar-data-type")).toContain("application/json");
  });

  test("a request without Content-Type is refused with 400 invalid-calendar-data-type", async () => {
    const r = await post({ body: invite("ct-2"), after: drop("Content-Type") });
    expect(expectError(r, 400, "invalid-calendar-data-type")).toContain("no Content-Type");
  });

  test("a request without Originator is refused with 400 originator-missing", async () => {
    const r = await post({ body: invite("o-1"), after: drop("Originator") });
    expectError(r, 400, "originator-missing");
  });

  test("two Originator fields are refused with 400 too-many-originators", async () => {
    const r = await post({
      body: invite("o-2"),
      after: (fields) => [...fields, ["Originator", "mailto:carol@peer.test"]],
    });
    expectError(r, 400, "too-many-originators");
  });

  test('one Originator field "a, b" is refused with 400 too-many-originators', async () => {
    const r = await post({ body: invite("o-3"), originator: `${BERNARD}, mailto:carol@peer.test` });
    expect(expectError(r, 400, "too-many-originators")).toContain("2 Originator addresses");
  });

  test("an Originator that is not a URI is refused with 400 originator-invalid", async () => {
    const r = await post({ body: invite("o-4"), originator: "bernard@peer.test" });
    expect(expectError(r, 400, "originator-invalid")).toContain("bernard@peer.test");
  });

  test("a request without Recipient is refused with 400 recipient-missing", async () => {
    const r = await post({ body: invite("r-1"), after: drop("Recipient") });
    expect(expectError(r, 400, "recipient-missing")).toContain("no Recipient");
  });

  test("a Recipient that is not an address is refused with 400 recipient-missing", async () => {
    const r = await post({ body: invite("r-2"), recipients: ["ann at org dot test"] });
    expect(expectError(r, 400, "recipient-missing")).toContain("ann at org dot test");
  });

  test("three Recipients where max-recipients is 2 are refused with 400 max-recipients", async () => {
    const three = [ANN, "mailto:bob@org.test", "mailto:eve@org.test"];
    const r = await post({ server: small, body: invite("r-3", three), recipients: three });
    expect(expectError(r, 400, "max-recipients", small)).toContain("at most 2");
  });
});

describe("max-content-length: the body is read with a hard cap", () => {
  const head = (extra: RawField[]): RawField[] => [
    ["Host", "isched.org.test"],
    ["iSchedule-Version", "1.0"],
    ["Originator", BERNARD],
    ["Recipient", ANN],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
    ...extra,
  ];

  test("a Content-Length over the cap gets 413 before any of the body is sent", async () => {
    // Only the head goes out: the answer must come without the server waiting for the body.
    const r = await rawExchange({
      port: portOf(small),
      request: requestBytes({
        path: "/.well-known/ischedule",
        fields: head([["Content-Length", String(SMALL_CAP + 1)]]),
      }),
      timeoutMs: 5000,
    });
    expect(expectError(r, 413, "max-content-length", small)).toContain(`${SMALL_CAP} bytes`);
  });

  test("a chunked body that grows past the cap gets 413 while the client is still sending", async () => {
    // Twice the cap in 1 KB chunks and no last chunk: a server that waited for the end of the body
    // would never answer; the answer must come once the cap is passed.
    const chunk = Buffer.from(`400\r\n${"x".repeat(1024)}\r\n`);
    const r = await rawExchange({
      port: portOf(small),
      request: requestBytes({
        path: "/.well-known/ischedule",
        fields: head([["Transfer-Encoding", "chunked"]]),
      }),
      async stream(send, answered) {
        for (let i = 0; i < (2 * SMALL_CAP) / 1024 && !answered(); i++) await send(chunk);
      },
      timeoutMs: 5000,
    });
    expectError(r, 413, "max-content-length", small);
  });
});

describe("verification-failed (403): the engine's reason goes to the peer", () => {
  test("an unsigned request from an address peer.test is not trusted from (127.0.0.2) is refused", async () => {
    const r = await post({ body: invite("vf-1"), key: null, localAddress: "127.0.0.2" });
    expect(expectError(r, 403, "verification-failed")).toContain("no DKIM-Signature");
  });

  test("a signature whose b= was altered does not verify", async () => {
    const r = await post({
      body: invite("vf-2"),
      after: (fields) =>
        fields.map(([n, v]): RawField => {
          if (n !== "DKIM-Signature") return [n, v];
          const at = v.indexOf("b=", v.indexOf("bh=") + 3) + 10;
          return [n, `${v.slice(0, at)}${v[at] === "A" ? "B" : "A"}${v.slice(at + 1)}`];
        }),
    });
    expect(expectError(r, 403, "verification-failed")).toContain("signature does not match");
  });

  test("a signature that expired an hour ago is refused with the engine's expiry reason", async () => {
    const r = await post({ body: invite("vf-3"), nowMs: Date.now() - 2 * 3600_000 });
    expect(expectError(r, 403, "verification-failed")).toMatch(
      /The signature expired at x=\d+, \d+ seconds ago/,
    );
  });

  test("a signature by a selector with no published key is refused with key-not-found", async () => {
    const unpublished = loadSigningKey(PEER.privateKeyPem, "peer.test", "gone");
    const r = await post({ body: invite("vf-4"), key: unpublished });
    expect(expectError(r, 403, "verification-failed")).toContain(
      "No key record for selector gone of peer.test",
    );
  });
});

describe("originator-denied (403)", () => {
  test("a signature by peer.test for an Originator in another domain is refused", async () => {
    const r = await post({
      body: invitation({ uid: "od-1", organizer: "mailto:mallory@other.test", attendees: [ANN] }),
      originator: "mailto:mallory@other.test",
    });
    expect(expectError(r, 403, "originator-denied")).toContain("signed by peer.test");
  });

  test("an Originator in a domain isched hosts, signed by the peer's parent domain, is refused", async () => {
    // isched serves branch.peer.test; peer.test's signature covers it by the d= rule but must not
    // let a remote server speak for isched's own users.
    const r = await post({
      body: invitation({ uid: "od-2", organizer: "mailto:boss@branch.peer.test", attendees: [ANN] }),
      originator: "mailto:boss@branch.peer.test",
    });
    expect(expectError(r, 403, "originator-denied")).toContain("branch.peer.test is served by this server");
  });

  test("a domain the operator denies is refused even with a valid signature", async () => {
    const r = await post({
      body: invitation({ uid: "od-3", organizer: "mailto:x@denied.test", attendees: [ANN] }),
      originator: "mailto:x@denied.test",
      key: deniedKey,
    });
    expect(expectError(r, 403, "originator-denied")).toContain("from denied.test");
  });

  test("a REQUEST whose Originator is an ATTENDEE (a forward) is refused", async () => {
    const body = invitation({
      uid: "od-4",
      organizer: "mailto:carol@peer.test",
      attendees: [BERNARD, ANN],
    });
    const r = await post({ body });
    expect(expectError(r, 403, "originator-denied")).toContain("does not allow forwarding");
  });
});

describe("body checks (draft §6.1, §9.2)", () => {
  test("a body that is not iCalendar is refused with 400 invalid-calendar-data", async () => {
    const r = await post({
      body: "Hello, please find the meeting details below.\r\n",
      contentType: "text/calendar; component=VEVENT; method=REQUEST",
    });
    expectError(r, 400, "invalid-calendar-data");
  });

  test("a VCALENDAR cut off in the middle is refused with 400 invalid-calendar-data", async () => {
    const whole = invite("bd-2");
    const r = await post({ body: whole.slice(0, whole.indexOf("ORGANIZER")) });
    expectError(r, 400, "invalid-calendar-data");
  });

  test("a METHOD that disagrees with the Content-Type is refused with 400 invalid-scheduling-message", async () => {
    const r = await post({
      body: invite("bd-3"),
      contentType: "text/calendar; component=VEVENT; method=CANCEL",
    });
    expect(expectError(r, 400, "invalid-scheduling-message")).toContain("method=CANCEL");
  });

  test("a METHOD of 10 KB, or a component parameter of 4 KB, is quoted clipped in the description", async () => {
    const method = "X".repeat(10 * 1024);
    const r = await post({
      body: invite("bd-3b").replace("METHOD:REQUEST", `METHOD:${method}`),
      contentType: "text/calendar; component=VEVENT; method=REQUEST",
    });
    expect(expectError(r, 400, "invalid-scheduling-message")).toBe(
      `Content-Type says method=REQUEST but the body's METHOD is ${"X".repeat(77)}....`,
    );
    const component = "V".repeat(4096);
    const c = await post({
      body: invite("bd-3c"),
      contentType: `text/calendar; component=${component}; method=REQUEST`,
    });
    expect(expectError(c, 400, "invalid-scheduling-message")).toBe(
      `Content-Type says component=${"V".repeat(77)}... but the body holds a VEVENT.`,
    );
  });

  test("a VEVENT without UID is refused with 400 invalid-scheduling-message", async () => {
    const body = invite("bd-4").replace("UID:bd-4\r\n", "");
    const r = await post({ body });
    expect(expectError(r, 400, "invalid-scheduling-message")).toContain("UID");
  });

  test("METHOD:PUBLISH, which the store target does not take, is refused with 400 invalid-scheduling-message", async () => {
    const r = await post({
      body: invitation({ uid: "bd-5", organizer: BERNARD, attendees: [ANN], method: "PUBLISH" }),
    });
    expect(expectError(r, 400, "invalid-scheduling-message")).toContain("PUBLISH");
  });

  test("a VFREEBUSY request whose Recipients are not its ATTENDEEs is refused with 400 recipient-mismatch", async () => {
    const body = freeBusyRequest({
      uid: "bd-6",
      organizer: BERNARD,
      attendees: ["mailto:ann@fb.test", "mailto:bob@fb.test"],
    });
    const r = await post({ body, recipients: ["mailto:ann@fb.test"] });
    expect(expectError(r, 400, "recipient-mismatch")).toContain("mailto:bob@fb.test is not a Recipient");
  });

  test("an inline binary ATTACH is refused with 400 attachment-type-not-supported", async () => {
    const body = event("bd-7", [
      "ATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY:SGVsbG8sIHdvcmxkIQ==",
    ]);
    const r = await post({ body });
    expect(expectError(r, 400, "attachment-type-not-supported")).toContain("Inline");
  });

  test("an event in 1850 is refused with 400 min-date-time", async () => {
    const body = event("bd-8", [], { start: "18500101T100000Z", end: "18500101T110000Z" });
    expect(expectError(await post({ body }), 400, "min-date-time")).toContain(
      "Every instance of the message is over by 18500101T110000Z, before the minimum 19000101T000000Z.",
    );
  });

  test("a weekly series begun in 1899 is taken: it still has instances after min-date-time", async () => {
    const body = event("bd-8b", ["RRULE:FREQ=WEEKLY", "CREATED:18991201T000000Z"], {
      start: "18990102T100000Z",
      end: "18990102T110000Z",
    });
    expect((await post({ body })).status).toBe(200);
  });

  test("an event in 2200 is refused with 400 max-date-time", async () => {
    const body = event("bd-9", [], { start: "22000101T100000Z", end: "22000101T110000Z" });
    expect(expectError(await post({ body }), 400, "max-date-time")).toContain(
      "The first instance of the message starts at 22000101T100000Z, after the maximum 21001231T235959Z.",
    );
  });

  test("an RRULE with COUNT=20000 where max-instances is 10000 is refused with 400 max-instances", async () => {
    const body = event("bd-10", ["RRULE:FREQ=DAILY;COUNT=20000"]);
    expect(expectError(await post({ body }), 400, "max-instances")).toContain("10000");
  });
});

describe("other methods, capabilities and trusted sources", () => {
  const url = () => `${isched.url}/.well-known/ischedule`;

  test("GET without ?action is a 400 text answer that says what to do", async () => {
    const r = await fetch(url());
    expect(r.status).toBe(400);
    expect(r.headers.get("content-type")).toStartWith("text/plain");
    expect(r.headers.get("ischedule-version")).toBe("1.0");
    expect(await r.text()).toContain("?action=capabilities");
  });

  test("PUT is 405 with the allowed methods", async () => {
    const r = await fetch(url(), { method: "PUT", body: "x" });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    expect(r.headers.get("ischedule-capabilities")).toBe(String(isched.capabilities().serial));
  });

  test("OPTIONS is 200 with iSchedule-Version and Allow", async () => {
    const r = await fetch(url(), { method: "OPTIONS" });
    expect(r.status).toBe(200);
    expect(r.headers.get("ischedule-version")).toBe("1.0");
    expect(r.headers.get("allow")).toContain("POST");
  });

  test("a conditional GET of the capabilities with their ETag is 304 without a body", async () => {
    const first = await fetch(`${url()}?action=capabilities`);
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(await first.text()).toContain("<query-result");
    const second = await fetch(`${url()}?action=capabilities`, { headers: { "If-None-Match": etag } });
    expect(second.status).toBe(304);
    expect(second.headers.get("etag")).toBe(etag);
    expect(second.headers.get("ischedule-capabilities")).toBe(String(isched.capabilities().serial));
    expect(await second.text()).toBe("");
  });

  test("a GET of the capabilities with an empty Host header is answered, not a 500", async () => {
    // Bun then gives request.url as a bare path; isched does not use Host.
    const r = await rawExchange({
      port: portOf(isched),
      request: requestBytes({
        method: "GET",
        path: "/.well-known/ischedule?action=capabilities",
        fields: [["Host", ""]],
      }),
    });
    expect(r.status).toBe(200);
    expect(r.text).toContain("<query-result");
  });

  test("a key path with a malformed percent-escape is a 400 text answer, not a 500", async () => {
    const r = await fetch(`${isched.url}/.well-known/domainkey/%E0%A4%A/x`);
    expect(r.status).toBe(400);
    expect(r.headers.get("content-type")).toStartWith("text/plain");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await r.text()).toContain("percent-escape");
  });

  test("the endpoint's 404s (an unknown path, a key it does not have) carry X-Content-Type-Options: nosniff", async () => {
    for (const path of ["/nothing-here", "/.well-known/domainkey/org.test/none"]) {
      const r = await fetch(`${isched.url}${path}`);
      expect({ path, status: r.status, nosniff: r.headers.get("x-content-type-options") }).toEqual({
        path,
        status: 404,
        nosniff: "nosniff",
      });
    }
  });

  test("an unsigned request from an address trusted for peer.test (127.0.0.1) is accepted", async () => {
    const r = await post({ body: invite("tr-1"), key: null });
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ [ANN]: "2.0;Success" });
    const row = isched.db
      .query<{ dkim_result: string }, []>("SELECT dkim_result FROM messages WHERE uid = 'tr-1'")
      .get();
    expect(row?.dkim_result).toBe("trusted");
  });
});
