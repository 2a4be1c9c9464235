/**
 * A bad-input battery against one running isched (store target): over 200 malformed requests
 * generated from one valid, DKIM-signed invitation. Every header is dropped, repeated with a
 * conflicting value and replaced by garbage of several kinds; DKIM tags are broken one at a time; the
 * body is cut every 50 bytes and made invalid in the ways real software gets iCalendar wrong; bodies
 * are too large or trickle in slower than the server's body deadline.
 *
 * Each case states its expected answer: an iSchedule 4xx with its error element (or a 200 with
 * per-recipient statuses where the request is in fact acceptable: a tab in b=, LF line ends, OWS).
 * A few requests are not HTTP at all (a 100 KB field, a NUL byte, duplicate Content-Length): Bun's
 * HTTP parser refuses those before isched runs, with a bare 400/413/431 and no iSchedule body;
 * those cases are marked `http` and assert that status. No case may get a 5xx, the server must still
 * answer a valid request afterwards, and its memory must stay flat over two runs of the battery.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey, signRequest } from "../../src/dkim/sign.ts";
import { ISCHEDULE_NS } from "../../src/ischedule/namespaces.ts";
import { parseXml } from "../../src/ischedule/xml-reader.ts";
import { DEFAULT_LIMITS } from "../../src/server/config.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { ics, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../support/raw-http.ts";

const PEER = generateDkimKey("rsa");
const peerKey = loadSigningKey(PEER.privateKeyPem, "peer.test", "s1");
const BERNARD = "mailto:bernard@peer.test";
const ANN = "mailto:ann@org.test";
const BOB = "mailto:bob@org.test";
const CAP = DEFAULT_LIMITS.maxContentLength;
/** The server's body deadline in this test; the slow cases trickle for much longer. */
const BODY_TIMEOUT_MS = 1000;
/**
 * Memory bounds, in MB after a full GC, from measurements on this machine (2 cores, Bun 1.4.5):
 * - Over both runs, RSS grows by about 35-45 MB, nearly all of it in the first run and in three cases
 *   (measured one case at a time): parsing 5,000 ATTENDEEs (+17 MB), the FREQ=MINUTELY VTIMEZONE
 *   (+13 MB) and the never-matching RRULE (+8 MB), each a peak the allocator keeps for reuse, not a
 *   leak: six further runs moved RSS between 100 and 112 MB without a trend. 64 MB leaves room for
 *   those peaks and the noise; it catches gross leaks, the two bounds below catch small ones.
 * - The second run adds at most about 11 MB of RSS (allocator noise): 20 MB.
 * - The JS heap after a full GC is precise and flat run over run (it rose by at most 0.4 MB over six
 *   runs): 3 MB. Keeping the one parsed 5,000-ATTENDEE message per run would exceed it (3.5 MB of
 *   heap, measured with parseItip()).
 */
const RSS_GROWTH_LIMIT_MB = 64;
const RSS_SECOND_RUN_LIMIT_MB = 20;
const HEAP_SECOND_RUN_LIMIT_MB = 3;

let dns: RunningDnsmasq;
let isched: TestServer;
let port: number;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ["peer.test"],
    txt: [{ name: "s1._domainkey.peer.test", strings: splitTxtValue(PEER.record) }],
  });
  isched = await startIsched({
    domains: ["org.test"],
    deliver: [{ target: { kind: "store" } }],
    dnsServer: dns.server,
    bodyTimeoutMs: BODY_TIMEOUT_MS,
  });
  port = Number(new URL(isched.url).port);
});

afterAll(async () => {
  await isched?.close();
  await dns?.stop();
});

// ---------------------------------------------------------------------------------------------
// The valid request everything is generated from

function calendar(lines: string[], o: { method?: string; eol?: string } = {}): string {
  const all = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//peer.test//battery//EN",
    `METHOD:${o.method ?? "REQUEST"}`,
    ...lines,
    "END:VCALENDAR",
  ];
  return o.eol === undefined ? ics(...all) : `${all.join(o.eol)}${o.eol}`;
}

function veventLines(uid: string, extra: string[] = [], o: { attendees?: string[] } = {}): string[] {
  return [
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SUMMARY:Quarterly planning",
    `ORGANIZER;CN=Bernard:${BERNARD}`,
    ...(o.attendees ?? [ANN, BOB]).map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:${a}`),
    ...extra,
    "END:VEVENT",
  ];
}

/** About 2 KB: long enough to be cut at 40 places. */
function richInvitation(uid: string): string {
  return calendar(
    veventLines(uid, [
      "LOCATION:Room 4\\, second floor",
      "DESCRIPTION:Agenda: budget review\\, hiring plan\\, the office move and anything",
      "  else that comes up. Please bring the figures for your department and the",
      "  list of open positions. Dial-in details follow in a separate message.",
      "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Carol:mailto:carol@peer.test",
      "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Dave:mailto:dave@peer.test",
      "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Erin:mailto:erin@peer.test",
      "CATEGORIES:MEETING,PLANNING",
      "SEQUENCE:0",
      "PRIORITY:5",
      "TRANSP:OPAQUE",
      "CLASS:PUBLIC",
      "BEGIN:VALARM",
      "ACTION:DISPLAY",
      "DESCRIPTION:Quarterly planning starts in 15 minutes",
      "TRIGGER:-PT15M",
      "END:VALARM",
      ...Array.from({ length: 10 }, (_, i) => `X-PEER-NOTE-${i}:${"note ".repeat(12).trim()}`),
    ]),
  );
}

interface Build {
  body?: string | Uint8Array;
  recipients?: string[];
  originator?: string;
  key?: SigningKey;
  nowMs?: number;
  /** Changes the DKIM-Signature value after signing. */
  signature?: (value: string) => string;
}

/** The header fields of a valid signed POST, in wire order, Host first and Content-Length last. */
function validFields(b: Build = {}): RawField[] {
  const body = Buffer.from(b.body ?? calendar(veventLines(`battery-${crypto.randomUUID()}`)));
  const text = body.toString("latin1");
  const method = /^METHOD:(\S+)/m.exec(text)?.[1] ?? "REQUEST";
  const component = /^BEGIN:(VEVENT|VTODO|VFREEBUSY|VJOURNAL)/m.exec(text)?.[1] ?? "VEVENT";
  const fields: [string, string][] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", crypto.randomUUID()],
    ["Originator", b.originator ?? BERNARD],
    ["Recipient", (b.recipients ?? [ANN, BOB]).join(", ")],
    ["Content-Type", `text/calendar; component=${component}; method=${method}`],
    ["Cache-Control", "no-cache, no-transform"],
    ["User-Agent", "peer-battery/1.0"],
  ];
  const signature = signRequest({
    key: b.key ?? peerKey,
    fields,
    body,
    nowMs: b.nowMs ?? Date.now(),
  });
  return [
    ["Host", "isched.org.test"],
    ["DKIM-Signature", b.signature ? b.signature(signature) : signature],
    ...fields,
    ["Content-Length", String(body.length)],
  ];
}

function send(fields: RawField[], body: string | Uint8Array): Promise<RawResponse> {
  return rawExchange({
    port,
    request: requestBytes({ path: "/.well-known/ischedule", fields, body, contentLength: false }),
  });
}

/** A valid request for `body`, with `change` applied to its fields. */
function sendBody(body: string | Uint8Array, b: Omit<Build, "body"> = {}, change = (f: RawField[]) => f) {
  return send(change(validFields({ ...b, body })), body);
}

// ---------------------------------------------------------------------------------------------
// Expected answers

type Expected =
  /** An iSchedule refusal with this error element; the description must match when given. */
  | { status: number; element: string; description?: RegExp }
  /** Accepted: each recipient's request-status. */
  | { status: 200; statuses: Record<string, string> }
  /** Refused by Bun's HTTP parser before isched runs: a bare status, no iSchedule body. */
  | { http: number };

const refused = (status: number, element: string, description?: RegExp): Expected => ({
  status,
  element,
  description,
});
const BOTH_DELIVERED: Expected = { status: 200, statuses: { [ANN]: "2.0;Success", [BOB]: "2.0;Success" } };
const httpLayer = (status: number): Expected => ({ http: status });
const VF = (description?: RegExp) => refused(403, "verification-failed", description);
const CAL = (description?: RegExp) => refused(400, "invalid-calendar-data", description);
const ISM = (description?: RegExp) => refused(400, "invalid-scheduling-message", description);

function check(r: RawResponse, expected: Expected): void {
  expect(r.status).toBeLessThan(500);
  if ("http" in expected) {
    expect(r.status).toBe(expected.http);
    // Bun's own refusal: isched never saw the request.
    expect(r.headers.get("ischedule-version")).toBeNull();
    return;
  }
  expect(r.headers.get("ischedule-version")).toBe("1.0");
  expect(r.headers.get("ischedule-capabilities")).toBe(String(isched.capabilities().serial));
  if ("statuses" in expected) {
    expect({ status: r.status, statuses: statuses(r.text) }).toEqual({
      status: 200,
      statuses: expected.statuses,
    });
    return;
  }
  const root = parseXml(r.text);
  const description = root.children.find((c) => c.name === "response-description")?.text ?? "";
  expect({
    status: r.status,
    root: `${root.ns} ${root.name}`,
    element: root.children[0]?.ns === ISCHEDULE_NS ? root.children[0].name : undefined,
  }).toEqual({ status: expected.status, root: `${ISCHEDULE_NS} error`, element: expected.element });
  expect(description.trim()).not.toBe("");
  if (expected.description) expect(description).toMatch(expected.description);
}

interface Case {
  name: string;
  expected: Expected;
  run: () => Promise<RawResponse>;
}

const cases: Case[] = [];
const add = (name: string, expected: Expected, run: () => Promise<RawResponse>) =>
  cases.push({ name, expected, run });

// ---------------------------------------------------------------------------------------------
// Headers: every field of the valid request dropped, repeated and garbled

const HEADERS = [
  "Host",
  "DKIM-Signature",
  "iSchedule-Version",
  "iSchedule-Message-ID",
  "Originator",
  "Recipient",
  "Content-Type",
  "Cache-Control",
  "User-Agent",
  "Content-Length",
] as const;
type HeaderName = (typeof HEADERS)[number];

const middle = (v: string, insert: string) =>
  `${v.slice(0, Math.floor(v.length / 2))}${insert}${v.slice(Math.floor(v.length / 2))}`;

/** A second, conflicting value of each field. */
const CONFLICTING: Record<HeaderName, (fields: RawField[]) => string> = {
  Host: () => "evil.test",
  "DKIM-Signature": () => validFields().find(([n]) => n === "DKIM-Signature")![1],
  "iSchedule-Version": () => "2.0",
  "iSchedule-Message-ID": () => crypto.randomUUID(),
  Originator: () => "mailto:carol@peer.test",
  Recipient: () => "mailto:eve@org.test",
  "Content-Type": () => "application/json",
  "Cache-Control": () => "max-age=0",
  "User-Agent": () => "other-agent/2.0",
  "Content-Length": (fields) => String(Number(fields.find(([n]) => n === "Content-Length")![1]) + 10),
};

type Mutation = (name: string, value: string, fields: RawField[]) => RawField[] | "drop";

/** How each field is broken. Values are bytes: "\xc3\xa9\xff" is the UTF-8 é and a stray 0xFF. */
const MUTATIONS: Record<string, Mutation> = {
  dropped: () => "drop",
  "repeated with a conflicting value": (name, value, fields) => [
    [name, value],
    [name, CONFLICTING[name as HeaderName](fields)],
  ],
  empty: (name) => [[name, ""]],
  "whitespace only": (name) => [[name, " \t  "]],
  "100 KB long": (name) => [[name, "a".repeat(100 * 1024)]],
  "8 KB long": (name) => [[name, "a".repeat(8 * 1024)]],
  "with a tab in the middle": (name, value) => [[name, middle(value, "\t")]],
  "with a DEL byte in the middle": (name, value) => [[name, middle(value, "\x7f")]],
  "with a NUL byte in the middle": (name, value) => [[name, middle(value, "\x00")]],
  "with non-ASCII bytes in the middle": (name, value) => [[name, middle(value, "\xc3\xa9\xff")]],
  "doubled as a comma list": (name, value) => [[name, `${value},${value}`]],
  "padded with spaces and tabs": (name, value) => [[name, ` \t ${value} \t`]],
  "with its name in upper case": (name, value) => [[name.toUpperCase(), value]],
};

const BAD_VERSION = refused(400, "version-not-supported");
const NO_TYPE = refused(400, "invalid-calendar-data-type");
const SIGNED_FIELD_CHANGED = VF(/signature does not match/);
const BARE_400 = httpLayer(400);
const TOO_LONG = httpLayer(431);

/**
 * The expected answer of each header × mutation. A signed field (h= has iSchedule-Version,
 * iSchedule-Message-ID, Originator, Recipient, Content-Type, User-Agent) that still passes the header
 * checks after the change fails the signature; Host and Cache-Control are neither signed nor used.
 */
const EXPECTED: Record<HeaderName, Record<keyof typeof MUTATIONS, Expected>> = {
  Host: {
    dropped: BARE_400, // RFC 9112 §3.2
    "repeated with a conflicting value": BOTH_DELIVERED,
    empty: BOTH_DELIVERED,
    "whitespace only": BOTH_DELIVERED,
    "100 KB long": TOO_LONG,
    "8 KB long": BOTH_DELIVERED,
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": BOTH_DELIVERED,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": BOTH_DELIVERED,
    "doubled as a comma list": BOTH_DELIVERED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "DKIM-Signature": {
    dropped: VF(/no DKIM-Signature header/),
    "repeated with a conflicting value": VF(/tag list/),
    empty: VF(/tag list is empty/),
    "whitespace only": VF(/tag list is empty/),
    "100 KB long": TOO_LONG,
    "8 KB long": VF(/not a valid tag list/),
    // The middle falls inside b=, where whitespace is allowed (RFC 6376 §3.5).
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": VF(/not allowed in a value|does not match/),
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": VF(/not allowed in a value|does not match/),
    "doubled as a comma list": VF(/tag list/),
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "iSchedule-Version": {
    dropped: refused(400, "version-not-supported", /no iSchedule-Version/),
    "repeated with a conflicting value": SIGNED_FIELD_CHANGED,
    empty: BAD_VERSION,
    "whitespace only": BAD_VERSION,
    "100 KB long": TOO_LONG,
    "8 KB long": BAD_VERSION,
    "with a tab in the middle": BAD_VERSION,
    "with a DEL byte in the middle": BAD_VERSION,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": BAD_VERSION,
    "doubled as a comma list": SIGNED_FIELD_CHANGED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "iSchedule-Message-ID": {
    dropped: SIGNED_FIELD_CHANGED,
    "repeated with a conflicting value": SIGNED_FIELD_CHANGED,
    empty: SIGNED_FIELD_CHANGED,
    "whitespace only": SIGNED_FIELD_CHANGED,
    "100 KB long": TOO_LONG,
    "8 KB long": ISM(/longer than 256/),
    "with a tab in the middle": SIGNED_FIELD_CHANGED,
    "with a DEL byte in the middle": SIGNED_FIELD_CHANGED,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": SIGNED_FIELD_CHANGED,
    "doubled as a comma list": SIGNED_FIELD_CHANGED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  Originator: {
    dropped: refused(400, "originator-missing"),
    "repeated with a conflicting value": refused(400, "too-many-originators"),
    empty: refused(400, "originator-missing"),
    "whitespace only": refused(400, "originator-missing"),
    "100 KB long": TOO_LONG,
    "8 KB long": refused(400, "originator-invalid"),
    "with a tab in the middle": refused(400, "originator-invalid"),
    "with a DEL byte in the middle": refused(400, "originator-invalid"),
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": refused(400, "originator-invalid"),
    "doubled as a comma list": refused(400, "too-many-originators"),
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  Recipient: {
    dropped: refused(400, "recipient-missing"),
    "repeated with a conflicting value": SIGNED_FIELD_CHANGED,
    empty: refused(400, "recipient-missing"),
    "whitespace only": refused(400, "recipient-missing"),
    "100 KB long": TOO_LONG,
    "8 KB long": refused(400, "recipient-missing"),
    // The middle is just after the comma: whitespace around commas is not significant (draft §7.2.1).
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": refused(400, "recipient-missing"),
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": refused(400, "recipient-missing"),
    "doubled as a comma list": SIGNED_FIELD_CHANGED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "Content-Type": {
    dropped: refused(400, "invalid-calendar-data-type", /no Content-Type/),
    "repeated with a conflicting value": NO_TYPE,
    empty: NO_TYPE,
    "whitespace only": NO_TYPE,
    "100 KB long": TOO_LONG,
    "8 KB long": NO_TYPE,
    "with a tab in the middle": NO_TYPE,
    "with a DEL byte in the middle": NO_TYPE,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": NO_TYPE,
    "doubled as a comma list": NO_TYPE,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "Cache-Control": {
    dropped: BOTH_DELIVERED,
    "repeated with a conflicting value": BOTH_DELIVERED,
    empty: BOTH_DELIVERED,
    "whitespace only": BOTH_DELIVERED,
    "100 KB long": TOO_LONG,
    "8 KB long": BOTH_DELIVERED,
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": BOTH_DELIVERED,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": BOTH_DELIVERED,
    "doubled as a comma list": BOTH_DELIVERED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "User-Agent": {
    dropped: SIGNED_FIELD_CHANGED,
    "repeated with a conflicting value": SIGNED_FIELD_CHANGED,
    empty: SIGNED_FIELD_CHANGED,
    "whitespace only": SIGNED_FIELD_CHANGED,
    "100 KB long": TOO_LONG,
    "8 KB long": SIGNED_FIELD_CHANGED,
    "with a tab in the middle": SIGNED_FIELD_CHANGED,
    "with a DEL byte in the middle": SIGNED_FIELD_CHANGED,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": SIGNED_FIELD_CHANGED,
    "doubled as a comma list": SIGNED_FIELD_CHANGED,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
  "Content-Length": {
    // No length: the body is not part of this request, so it does not match bh=.
    dropped: VF(/body hash does not match/),
    "repeated with a conflicting value": BARE_400,
    empty: BARE_400,
    "whitespace only": BARE_400,
    "100 KB long": TOO_LONG,
    "8 KB long": BARE_400,
    "with a tab in the middle": BARE_400,
    "with a DEL byte in the middle": BARE_400,
    "with a NUL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": BARE_400,
    "doubled as a comma list": BARE_400,
    "padded with spaces and tabs": BOTH_DELIVERED,
    "with its name in upper case": BOTH_DELIVERED,
  },
};

for (const header of HEADERS) {
  for (const [how, mutate] of Object.entries(MUTATIONS)) {
    add(`${header} ${how}`, EXPECTED[header][how]!, () => {
      const body = calendar(veventLines(`battery-${crypto.randomUUID()}`));
      const fields = validFields({ body });
      const changed = fields.flatMap(([n, v]): RawField[] => {
        if (n !== header) return [[n, v]];
        const out = mutate(n, v, fields);
        return out === "drop" ? [] : out;
      });
      return send(changed, body);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// DKIM-Signature tags broken one at a time (verified in the order of RFC 6376 §6.1.1)

const setTag = (sig: string, tag: string, value: string) =>
  sig.replace(new RegExp(`(^|; )${tag}=[^;]*`), `$1${tag}=${value}`);
const dropTag = (sig: string, tag: string) => sig.replace(new RegExp(`(^|; )${tag}=[^;]*(; )?`), "$1");
const tagValue = (sig: string, tag: string) => new RegExp(`(?:^|; )${tag}=([^;]*)`).exec(sig)![1]!;

const DKIM_CASES: [string, Expected, Build][] = [
  ["a tag given twice (d=)", VF(/tag d= appears twice/), { signature: (s) => `${s}; d=peer.test` }],
  ["no b= tag", VF(/no b= tag/), { signature: (s) => dropTag(s, "b") }],
  ["an empty b=", VF(/does not match|empty|b=/), { signature: (s) => setTag(s, "b", "") }],
  ["b= that is not base64", VF(/b=|base64/), { signature: (s) => setTag(s, "b", "!!not*base64!!") }],
  ["bh= that is not base64", VF(/bh=|base64/), { signature: (s) => setTag(s, "bh", "%%%") }],
  [
    "bh= of another body",
    VF(/body hash does not match/),
    { signature: (s) => setTag(s, "bh", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") },
  ],
  [
    "h= without Recipient",
    VF(/Recipient/),
    { signature: (s) => setTag(s, "h", tagValue(s, "h").replace(/(^|:)Recipient(?=:|$)/, "")) },
  ],
  [
    "h= naming Content-Length, which must not be signed",
    VF(/Content-Length|must not be signed/i),
    { signature: (s) => setTag(s, "h", `${tagValue(s, "h")}:Content-Length`) },
  ],
  [
    "h= naming Originator twice",
    VF(/twice|Originator/i),
    { signature: (s) => setTag(s, "h", `${tagValue(s, "h")}:Originator`) },
  ],
  [
    "an unknown algorithm (rsa-sha512)",
    VF(/rsa-sha512 is not supported/),
    { signature: (s) => setTag(s, "a", "rsa-sha512") },
  ],
  ["a=rsa-sha1 (RFC 8301)", VF(/rsa-sha1 is refused/), { signature: (s) => setTag(s, "a", "rsa-sha1") }],
  ["v=2", VF(/v=2 is not supported/), { signature: (s) => setTag(s, "v", "2") }],
  [
    "c=simple/simple",
    VF(/c=simple\/simple is not supported/),
    { signature: (s) => setTag(s, "c", "simple/simple") },
  ],
  ["only q=dns/axfr", VF(/q=|query/), { signature: (s) => setTag(s, "q", "dns/axfr") }],
  [
    "d= that is not a domain name",
    VF(/d=peer\.\.test is not a domain name/),
    { signature: (s) => setTag(s, "d", "peer..test") },
  ],
  ["t= an hour in the future", VF(/in the future/), { nowMs: Date.now() + 3600_000 }],
  ["x= two hours ago (expired)", VF(/expired/), { nowMs: Date.now() - 3 * 3600_000 }],
  [
    "x= before t=",
    VF(/x=|expired/),
    { signature: (s) => setTag(s, "x", String(Number(tagValue(s, "t")) - 10)) },
  ],
  [
    "l= shorter than the body",
    VF(/l=10 does not cover the whole body/),
    { signature: (s) => s.replace("; bh=", "; l=10; bh=") },
  ],
  [
    "a value that is not a tag list",
    VF(/not a valid tag list/),
    { signature: () => "this is not a signature" },
  ],
  [
    "a selector with no key record",
    VF(/No key record for selector nokey of peer\.test/),
    { key: loadSigningKey(PEER.privateKeyPem, "peer.test", "nokey") },
  ],
  [
    "d=peer.test for an Originator at other.test",
    refused(403, "originator-denied", /signed by peer\.test/),
    { originator: "mailto:bernard@other.test" },
  ],
];

for (const [what, expected, build] of DKIM_CASES) {
  add(`DKIM-Signature with ${what}`, expected, () => {
    const organizer = build.originator ?? BERNARD;
    const body = calendar(veventLines(`dkim-${crypto.randomUUID()}`)).replace(BERNARD, organizer);
    return send(validFields({ ...build, body }), body);
  });
}

add("two DKIM-Signature header lines, both valid", VF(/tag list|more than one/), () => {
  const body = calendar(veventLines(`dkim-${crypto.randomUUID()}`));
  const fields = validFields({ body });
  const second = validFields({ body }).find(([n]) => n === "DKIM-Signature")!;
  return send([...fields.slice(0, 2), second, ...fields.slice(2)], body);
});

// ---------------------------------------------------------------------------------------------
// Bodies: truncated and invalid iCalendar, each correctly signed

{
  const whole = richInvitation("cut-template");
  for (let at = 50; at < Buffer.byteLength(whole); at += 50) {
    add(`a 2 KB invitation cut after ${at} bytes`, CAL(), () =>
      sendBody(Buffer.from(richInvitation("cut-template")).subarray(0, at)),
    );
  }
}

const uid = () => `body-${crypto.randomUUID()}`;
const BODY_CASES: [string, Expected, () => string | Uint8Array][] = [
  [
    "LF-only line ends (accepted, as real clients send them)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid()), { eol: "\n" }),
  ],
  ["CR-only line ends", CAL(), () => calendar(veventLines(uid()), { eol: "\r" })],
  ["an empty body", CAL(), () => ""],
  [
    "bytes that are not UTF-8",
    CAL(/not UTF-8/),
    () => Buffer.from(calendar(veventLines(uid(), ["COMMENT:caf\xe9"])), "latin1"),
  ],
  ["plain text", CAL(), () => "Hi Ann, see you on Tuesday at ten. Bernard\r\n"],
  ["an HTML page", CAL(), () => "<!doctype html><html><body>502 Bad Gateway</body></html>\r\n"],
  [
    "a DTSTART with letters in the date",
    CAL(/DTSTART/),
    () => calendar(veventLines(uid())).replace("DTSTART:20261202T100000Z", "DTSTART:2026XX02T100000Z"),
  ],
  [
    "a DTSTART in month 13",
    CAL(/DTSTART/),
    () => calendar(veventLines(uid())).replace("DTSTART:20261202T100000Z", "DTSTART:20261302T100000Z"),
  ],
  ["SEQUENCE:abc", CAL(/SEQUENCE/), () => calendar(veventLines(uid(), ["SEQUENCE:abc"]))],
  [
    "DURATION:1 hour",
    CAL(/DURATION/),
    () => calendar(veventLines(uid(), ["DURATION:1 hour"])).replace("DTEND:20261202T110000Z\r\n", ""),
  ],
  [
    "RRULE:FREQ=SOMETIMES",
    CAL(/RRULE/),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=SOMETIMES;COUNT=3"])),
  ],
  ["an RRULE without FREQ", CAL(/RRULE|RECUR/), () => calendar(veventLines(uid(), ["RRULE:COUNT=3"]))],
  [
    "an ATTENDEE that is not an address",
    CAL(/ATTENDEE/),
    () => calendar(veventLines(uid(), ["ATTENDEE:Dave from accounting"])),
  ],
  ["a line with no colon", CAL(), () => calendar(veventLines(uid(), ["THIS LINE HAS NO COLON"]))],
  [
    "a nested BEGIN:VEVENT without END",
    CAL(),
    () => calendar([...veventLines(uid()).slice(0, -1), "BEGIN:VEVENT", `UID:${uid()}`, "END:VEVENT"]),
  ],
  ["END:VTODO closing a VEVENT", CAL(), () => calendar([...veventLines(uid()).slice(0, -1), "END:VTODO"])],
  ["two VCALENDARs", CAL(), () => calendar(veventLines(uid())) + calendar(veventLines(uid()))],
  ["VERSION:3.0", CAL(/VERSION/), () => calendar(veventLines(uid())).replace("VERSION:2.0", "VERSION:3.0")],
  ["no METHOD", ISM(/no METHOD/), () => calendar(veventLines(uid())).replace("METHOD:REQUEST\r\n", "")],
  [
    "two METHODs",
    ISM(/METHOD/),
    () => calendar(veventLines(uid())).replace("METHOD:REQUEST", "METHOD:REQUEST\r\nMETHOD:CANCEL"),
  ],
  [
    "a VEVENT and a VTODO together",
    ISM(/mixes VEVENT and VTODO/),
    () =>
      calendar([
        ...veventLines(uid()),
        "BEGIN:VTODO",
        `UID:${uid()}`,
        "DTSTAMP:20261125T120000Z",
        `ORGANIZER:${BERNARD}`,
        `ATTENDEE:${ANN}`,
        "END:VTODO",
      ]),
  ],
  ["no VEVENT at all", ISM(/no scheduling component/), () => calendar([])],
  [
    "two masters with one UID",
    ISM(/without RECURRENCE-ID/),
    () => {
      const u = uid();
      return calendar([...veventLines(u), ...veventLines(u)]);
    },
  ],
  [
    "5,000 ATTENDEEs (accepted: nothing limits attendees)",
    BOTH_DELIVERED,
    () =>
      calendar(
        veventLines(
          uid(),
          Array.from({ length: 5000 }, (_, i) => `ATTENDEE;CN=Guest ${i}:mailto:guest${i}@peer.test`),
        ),
      ),
  ],
  [
    "an open-ended FREQ=SECONDLY RRULE (accepted: max-instances cannot refuse forever)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), ["RRULE:FREQ=SECONDLY"])),
  ],
  [
    "FREQ=SECONDLY;COUNT=1000000",
    refused(400, "max-instances"),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=SECONDLY;COUNT=1000000"])),
  ],
  [
    "an RRULE that never matches (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5)",
    refused(400, "max-instances"),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5"])),
  ],
  [
    "a VTIMEZONE with RRULE:FREQ=MINUTELY used by DTSTART",
    CAL(/steps to expand/),
    () =>
      calendar([
        "BEGIN:VTIMEZONE",
        "TZID:Minutely",
        "BEGIN:STANDARD",
        "DTSTART:16010101T000000",
        "RRULE:FREQ=MINUTELY",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0000",
        "END:STANDARD",
        "END:VTIMEZONE",
        ...veventLines(uid()).map((l) =>
          l.startsWith("DTSTART:")
            ? "DTSTART;TZID=Minutely:20261202T100000"
            : l.startsWith("DTEND:")
              ? "DTEND;TZID=Minutely:20261202T110000"
              : l,
        ),
      ]),
  ],
  [
    "a 100 KB SUMMARY line (accepted: under the size cap)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), [`COMMENT:${"x".repeat(100 * 1024)}`])),
  ],
];

for (const [what, expected, body] of BODY_CASES) {
  add(`a body with ${what}`, expected, () => sendBody(body()));
}

// ---------------------------------------------------------------------------------------------
// Oversize and slow bodies

/** Fields of a valid request whose Content-Length (or Transfer-Encoding) is replaced. */
function headOnly(framing: RawField, body = calendar(veventLines(uid()))): RawField[] {
  return [...validFields({ body }).filter(([n]) => n !== "Content-Length"), framing];
}
const chunkOf = (bytes: Uint8Array) =>
  Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from("\r\n")]);
const fieldsRequest = (fields: RawField[], body?: Uint8Array) =>
  requestBytes({ path: "/.well-known/ischedule", fields, body, contentLength: false });

/** Writes the body one byte at a time, `gapMs` apart, until the server answers. */
function trickle(body: Uint8Array, gapMs: number, chunked: boolean) {
  return async (send: (b: Uint8Array) => Promise<void>, answered: () => boolean) => {
    for (let i = 0; i < body.length && !answered(); i++) {
      const byte = body.subarray(i, i + 1);
      await send(chunked ? chunkOf(byte) : byte);
      await Bun.sleep(gapMs);
    }
  };
}
const TIMED_OUT = refused(408, "invalid-calendar-data", /not received in time/);

add(
  `a ${CAP + 1}-byte body (1 MB cap) sent whole with its Content-Length`,
  refused(413, "max-content-length"),
  () => {
    const body = Buffer.alloc(CAP + 1, "a");
    return rawExchange({
      port,
      request: fieldsRequest(headOnly(["Content-Length", String(body.length)]), body),
    });
  },
);

add("a Content-Length over the cap, the body never sent", refused(413, "max-content-length"), () =>
  rawExchange({
    port,
    request: fieldsRequest(headOnly(["Content-Length", String(CAP + 1)])),
    timeoutMs: 3000,
  }),
);

add("a chunked body growing past the cap, never finished", refused(413, "max-content-length"), () =>
  rawExchange({
    port,
    request: fieldsRequest(headOnly(["Transfer-Encoding", "chunked"])),
    async stream(send, answered) {
      const chunk = chunkOf(Buffer.alloc(16 * 1024, "a"));
      for (let i = 0; i < (2 * CAP) / (16 * 1024) && !answered(); i++) await send(chunk);
    },
  }),
);

add("a Content-Length of 10 GB", refused(413, "max-content-length", /\(10000000000 bytes\)/), () =>
  rawExchange({ port, request: fieldsRequest(headOnly(["Content-Length", "10000000000"])), timeoutMs: 3000 }),
);

add("a Content-Length larger than the body, which then stalls", TIMED_OUT, () => {
  const body = Buffer.from(calendar(veventLines(uid())));
  return rawExchange({
    port,
    request: fieldsRequest(headOnly(["Content-Length", String(body.length + 100)], body.toString()), body),
  });
});

add(
  "a Content-Length smaller than the body (the rest is not signed data)",
  VF(/body hash does not match/),
  () => {
    const body = Buffer.from(calendar(veventLines(uid())));
    return rawExchange({
      port,
      request: fieldsRequest(headOnly(["Content-Length", String(body.length - 20)], body.toString()), body),
    });
  },
);

add("the head sent and no body at all", TIMED_OUT, () => {
  const body = calendar(veventLines(uid()));
  return rawExchange({ port, request: fieldsRequest(validFields({ body })) });
});

add(`a body trickled byte by byte, slower than the ${BODY_TIMEOUT_MS} ms body deadline`, TIMED_OUT, () => {
  const body = calendar(veventLines(uid()));
  return rawExchange({
    port,
    request: fieldsRequest(validFields({ body })),
    stream: trickle(Buffer.from(body), 20, false),
  });
});

add(
  `a chunked body of one-byte chunks, slower than the ${BODY_TIMEOUT_MS} ms body deadline`,
  TIMED_OUT,
  () => {
    const body = calendar(veventLines(uid()));
    return rawExchange({
      port,
      request: fieldsRequest(headOnly(["Transfer-Encoding", "chunked"], body)),
      stream: trickle(Buffer.from(body), 20, true),
    });
  },
);

add("an invalid chunk size", BARE_400, () =>
  rawExchange({
    port,
    request: Buffer.concat([
      fieldsRequest(headOnly(["Transfer-Encoding", "chunked"])),
      Buffer.from("zz\r\nabc\r\n0\r\n\r\n"),
    ]),
  }),
);

// ---------------------------------------------------------------------------------------------

/** Resident set and JS heap after a full collection, in MB. */
function memoryMb(): { rss: number; heap: number } {
  Bun.gc(true);
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 };
}

describe(`bad-input battery (${cases.length} generated requests)`, () => {
  let before = { rss: 0, heap: 0 };

  beforeAll(async () => {
    // A valid request first, so the baseline is a started server (JIT, SQLite, key cache).
    check(await sendBody(calendar(veventLines(uid()))), BOTH_DELIVERED);
    before = memoryMb();
  });

  test("has at least 200 cases with distinct names", () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  test.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    check(await c.run(), c.expected);
  });

  test("a second run gets the same answers, the server still delivers, and memory stays flat", async () => {
    const afterFirst = memoryMb();
    for (const c of cases) {
      const r = await c.run();
      expect({ name: c.name, fivexx: r.status >= 500 }).toEqual({ name: c.name, fivexx: false });
      check(r, c.expected);
    }
    check(await sendBody(calendar(veventLines(uid()))), BOTH_DELIVERED);
    const capabilities = await fetch(`${isched.url}/.well-known/ischedule?action=capabilities`);
    expect(capabilities.status).toBe(200);
    const afterSecond = memoryMb();
    const show = (m: { rss: number; heap: number }) =>
      `rss ${m.rss.toFixed(1)} MB, heap ${m.heap.toFixed(1)} MB`;
    console.log(
      `battery memory: before: ${show(before)}; after run 1: ${show(afterFirst)}; after run 2: ${show(afterSecond)}`,
    );
    expect(afterSecond.rss - before.rss).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    expect(afterSecond.rss - afterFirst.rss).toBeLessThan(RSS_SECOND_RUN_LIMIT_MB);
    expect(afterSecond.heap - afterFirst.heap).toBeLessThan(HEAP_SECOND_RUN_LIMIT_MB);
  }, 180_000);
});
