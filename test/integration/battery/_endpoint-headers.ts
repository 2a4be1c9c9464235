/**
 * Endpoint cases: every header field of the valid request dropped, repeated, garbled, re-cased,
 * folded, quoted... (25 ways × 10 fields), each with its expected answer; then values of the fields
 * isched reads (Content-Type, Originator, Recipient, iSchedule-Version) that real software gets
 * wrong, and fields a request should not carry.
 *
 * A signed field (h= has iSchedule-Version, iSchedule-Message-ID, Originator, Recipient, Content-Type,
 * User-Agent) that still passes the header checks after the change fails the signature; Host and
 * Cache-Control are neither signed nor used. Bun's HTTP parser refuses some requests before isched
 * runs (a NUL or CR byte, a 100 KB field, a Content-Length that is not one number): a bare 400/431.
 */
import type { RawField } from "../../support/raw-http.ts";
import type { Case } from "./_cases.ts";
import {
  ANN,
  BARE_400,
  BOTH_DELIVERED,
  CAL,
  calendar,
  type EndpointTarget,
  type Expected,
  endpointCase,
  httpLayer,
  ISM,
  invitation,
  refused,
  send,
  sendBody,
  sendLines,
  TOO_LONG,
  uid,
  VF,
  validFields,
  veventLines,
} from "./_endpoint-request.ts";

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

type Mutation = (name: string, value: string, fields: RawField[]) => RawField[];

/** How each field is broken. Values are bytes: "\xc3\xa9\xff" is the UTF-8 é and a stray 0xFF. */
const MUTATIONS = {
  dropped: () => [],
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
  "with a CR byte in the middle": (name, value) => [[name, middle(value, "\r")]],
  "with non-ASCII bytes in the middle": (name, value) => [[name, middle(value, "\xc3\xa9\xff")]],
  "with a UTF-8 byte-order mark in front": (name, value) => [[name, `\xef\xbb\xbf${value}`]],
  "doubled as a comma list": (name, value) => [[name, `${value},${value}`]],
  "with a trailing comma": (name, value) => [[name, `${value},`]],
  "with a leading comma": (name, value) => [[name, `,${value}`]],
  "in double quotes": (name, value) => [[name, `"${value}"`]],
  "with a parameter appended": (name, value) => [[name, `${value}; zz=1`]],
  "percent-encoded": (name, value) => [[name, encodeURIComponent(value)]],
  "in upper case": (name, value) => [[name, value.toUpperCase()]],
  "padded with spaces and tabs": (name, value) => [[name, ` \t ${value} \t`]],
  // RFC 9112 §5.2: obs-fold is replaced by spaces or refused; Bun refuses it.
  "folded onto a second line (obs-fold)": (name, value) => [[name, middle(value, "\r\n ")]],
  "repeated on 50 lines": (name, value) => Array.from({ length: 50 }, (): RawField => [name, value]),
  "with its name in upper case": (name, value) => [[name.toUpperCase(), value]],
  "with its name misspelt": (name, value) => [[`${name}x`, value]],
  // RFC 9112 §5.1: no whitespace is allowed between a field name and the colon.
  "with a space before the colon": (name, value) => [[`${name} `, value]],
} satisfies Record<string, Mutation>;
type MutationName = keyof typeof MUTATIONS;

const BAD_VERSION = refused(400, "version-not-supported");
const NO_TYPE = refused(400, "invalid-calendar-data-type");
const SIGNED_FIELD_CHANGED = VF(/signature does not match/);
const ORIGINATOR_INVALID = refused(400, "originator-invalid");
const RECIPIENT_INVALID = refused(400, "recipient-missing", /not a valid calendar user address/);

/** What Bun's parser does alike for every field: these never reach isched. */
const PARSER: Partial<Record<MutationName, Expected>> = {
  "100 KB long": TOO_LONG,
  "with a NUL byte in the middle": BARE_400,
  "with a CR byte in the middle": BARE_400,
  "folded onto a second line (obs-fold)": BARE_400,
  "with a space before the colon": BARE_400,
};

/** A field that is neither signed nor read: every change but the parser's is accepted. */
const UNUSED: Record<MutationName, Expected> = {
  ...(Object.fromEntries(Object.keys(MUTATIONS).map((m) => [m, BOTH_DELIVERED])) as Record<
    MutationName,
    Expected
  >),
  ...PARSER,
};

/** A signed field no check reads: any change to its canonical value breaks the signature. */
const SIGNED_ONLY: Record<MutationName, Expected> = {
  ...(Object.fromEntries(Object.keys(MUTATIONS).map((m) => [m, SIGNED_FIELD_CHANGED])) as Record<
    MutationName,
    Expected
  >),
  ...PARSER,
  // Relaxed canonicalization (RFC 6376 §3.4.2): names are lower-cased, leading and trailing
  // whitespace dropped, so none of these changes what was signed.
  "padded with spaces and tabs": BOTH_DELIVERED,
  "with its name in upper case": BOTH_DELIVERED,
};

/**
 * The expected answer of each header × mutation. Where a header is missing from a row, the mutation
 * does what PARSER (or the row's spread) says.
 */
const EXPECTED: Record<HeaderName, Record<MutationName, Expected>> = {
  Host: {
    ...UNUSED,
    dropped: BARE_400, // RFC 9112 §3.2
    "with its name misspelt": BARE_400, // no Host either
  },
  "DKIM-Signature": {
    ...UNUSED,
    dropped: VF(/no DKIM-Signature header/),
    "repeated with a conflicting value": VF(/tag list/),
    empty: VF(/tag list is empty/),
    "whitespace only": VF(/tag list is empty/),
    "8 KB long": VF(/not a valid tag list/),
    // The middle falls inside b=, where whitespace is allowed (RFC 6376 §3.5).
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": VF(/not allowed in a value|does not match/),
    "with non-ASCII bytes in the middle": VF(/not allowed in a value|does not match/),
    "with a UTF-8 byte-order mark in front": VF(/tag list/),
    "doubled as a comma list": VF(/tag list/),
    "with a trailing comma": VF(/b=|base64|tag list/),
    "with a leading comma": VF(/tag list/),
    "in double quotes": VF(/tag list/),
    // The DKIM-Signature itself is signed (with b= empty): a tag added after signing breaks it.
    "with a parameter appended": VF(/signature does not match/),
    "percent-encoded": VF(/tag list/),
    // Tag names are case-sensitive (RFC 6376 §3.2): V=, A=... are unknown tags, v= is missing.
    "in upper case": VF(),
    // 50 × 450 bytes: past Bun's limit on the header section.
    "repeated on 50 lines": TOO_LONG,
    "with its name misspelt": VF(/no DKIM-Signature header/),
  },
  "iSchedule-Version": {
    ...SIGNED_ONLY,
    dropped: refused(400, "version-not-supported", /no iSchedule-Version/),
    empty: BAD_VERSION,
    "whitespace only": BAD_VERSION,
    "8 KB long": BAD_VERSION,
    "with a tab in the middle": BAD_VERSION,
    "with a DEL byte in the middle": BAD_VERSION,
    "with non-ASCII bytes in the middle": BAD_VERSION,
    "with a UTF-8 byte-order mark in front": BAD_VERSION,
    "in double quotes": BAD_VERSION,
    "with a parameter appended": BAD_VERSION,
    // "1.0" has nothing to encode or to upper-case.
    "percent-encoded": BOTH_DELIVERED,
    "in upper case": BOTH_DELIVERED,
    "with its name misspelt": refused(400, "version-not-supported", /no iSchedule-Version/),
  },
  "iSchedule-Message-ID": {
    ...SIGNED_ONLY,
    "8 KB long": ISM(/longer than 256/),
    // Joined into one value of 50 × 36 characters, checked before the signature.
    "repeated on 50 lines": ISM(/longer than 256/),
    // A UUID has nothing to encode.
    "percent-encoded": BOTH_DELIVERED,
  },
  Originator: {
    ...SIGNED_ONLY,
    dropped: refused(400, "originator-missing"),
    "repeated with a conflicting value": refused(400, "too-many-originators"),
    empty: refused(400, "originator-missing"),
    "whitespace only": refused(400, "originator-missing"),
    "8 KB long": ORIGINATOR_INVALID,
    "with a tab in the middle": ORIGINATOR_INVALID,
    "with a DEL byte in the middle": ORIGINATOR_INVALID,
    "with non-ASCII bytes in the middle": ORIGINATOR_INVALID,
    "with a UTF-8 byte-order mark in front": ORIGINATOR_INVALID,
    "doubled as a comma list": refused(400, "too-many-originators"),
    "repeated on 50 lines": refused(400, "too-many-originators"),
    "with a trailing comma": ORIGINATOR_INVALID,
    "with a leading comma": ORIGINATOR_INVALID,
    "in double quotes": ORIGINATOR_INVALID,
    "with a parameter appended": ORIGINATOR_INVALID,
    "percent-encoded": ORIGINATOR_INVALID,
    // Still a valid address, but not the signed value.
    "in upper case": SIGNED_FIELD_CHANGED,
    "with its name misspelt": refused(400, "originator-missing"),
  },
  Recipient: {
    ...SIGNED_ONLY,
    dropped: refused(400, "recipient-missing"),
    empty: refused(400, "recipient-missing"),
    "whitespace only": refused(400, "recipient-missing"),
    "8 KB long": RECIPIENT_INVALID,
    // The middle is just after the comma: whitespace around commas is not significant (draft §7.2.1).
    "with a tab in the middle": BOTH_DELIVERED,
    "with a DEL byte in the middle": RECIPIENT_INVALID,
    "with non-ASCII bytes in the middle": RECIPIENT_INVALID,
    "with a UTF-8 byte-order mark in front": RECIPIENT_INVALID,
    "in double quotes": RECIPIENT_INVALID,
    "with a parameter appended": RECIPIENT_INVALID,
    "percent-encoded": RECIPIENT_INVALID,
    "with its name misspelt": refused(400, "recipient-missing"),
  },
  "Content-Type": {
    ...SIGNED_ONLY,
    dropped: refused(400, "invalid-calendar-data-type", /no Content-Type/),
    "repeated with a conflicting value": NO_TYPE,
    empty: NO_TYPE,
    "whitespace only": NO_TYPE,
    "8 KB long": NO_TYPE,
    "with a tab in the middle": NO_TYPE,
    "with a DEL byte in the middle": NO_TYPE,
    "with non-ASCII bytes in the middle": NO_TYPE,
    "with a UTF-8 byte-order mark in front": NO_TYPE,
    "doubled as a comma list": NO_TYPE,
    "repeated on 50 lines": NO_TYPE,
    "with a trailing comma": NO_TYPE,
    "with a leading comma": NO_TYPE,
    "in double quotes": NO_TYPE,
    "percent-encoded": NO_TYPE,
    "with its name misspelt": refused(400, "invalid-calendar-data-type", /no Content-Type/),
  },
  "Cache-Control": UNUSED,
  "User-Agent": SIGNED_ONLY,
  "Content-Length": {
    ...UNUSED,
    // No length: the body is not part of this request, so it does not match bh=.
    dropped: VF(/body hash does not match/),
    "with its name misspelt": VF(/body hash does not match/),
    "repeated with a conflicting value": BARE_400,
    empty: BARE_400,
    "whitespace only": BARE_400,
    "8 KB long": BARE_400,
    "with a tab in the middle": BARE_400,
    "with a DEL byte in the middle": BARE_400,
    "with non-ASCII bytes in the middle": BARE_400,
    "with a UTF-8 byte-order mark in front": BARE_400,
    "doubled as a comma list": BARE_400,
    // RFC 9112 §6.3 lets a recipient take a list of identical values as one: Bun does.
    "repeated on 50 lines": BOTH_DELIVERED,
    "with a trailing comma": BARE_400,
    "with a leading comma": BARE_400,
    "in double quotes": BARE_400,
    "with a parameter appended": BARE_400,
  },
};

/** A valid request with one field replaced by what `mutate` makes of it. */
function mutated(t: EndpointTarget, header: HeaderName, mutate: Mutation) {
  const body = invitation();
  const fields = validFields({ body });
  const changed = fields.flatMap(([n, v]): RawField[] => (n === header ? mutate(n, v, fields) : [[n, v]]));
  return send(t, changed, body);
}

const CONTENT_TYPES: [string, string, Expected][] = [
  ["text/calendar without parameters", "text/calendar", BOTH_DELIVERED],
  ["text/calendar; charset=utf-8 only", "text/calendar; charset=utf-8", BOTH_DELIVERED],
  ["quoted parameter values", 'text/calendar; component="VEVENT"; method="REQUEST"', BOTH_DELIVERED],
  [
    "an empty parameter between semicolons",
    "text/calendar;; component=VEVENT; method=REQUEST",
    BOTH_DELIVERED,
  ],
  ["method=CANCEL for a REQUEST body", "text/calendar; component=VEVENT; method=CANCEL", ISM(/method/i)],
  ["component=VTODO for a VEVENT body", "text/calendar; component=VTODO; method=REQUEST", ISM(/component/i)],
  // The body is read as UTF-8 whatever charset= says (RFC 5545 §6); this one is ASCII, so it reads
  // the same. A body that is not UTF-8 is refused (bodies: "bytes that are not UTF-8").
  [
    "charset=iso-8859-1 on an ASCII body",
    "text/calendar; component=VEVENT; method=REQUEST; charset=iso-8859-1",
    BOTH_DELIVERED,
  ],
  [
    "charset=utf-16 on an ASCII body",
    "text/calendar; component=VEVENT; method=REQUEST; charset=utf-16",
    BOTH_DELIVERED,
  ],
  ["a parameter given twice", "text/calendar; method=REQUEST; method=REQUEST", NO_TYPE],
  ["an unterminated quoted value", 'text/calendar; method="REQUEST', NO_TYPE],
  ["a parameter without a value", "text/calendar; method", NO_TYPE],
  ["a parameter with an empty value", "text/calendar; method=", NO_TYPE],
  ["no subtype", "text/", NO_TYPE],
  ["no slash", "textcalendar", NO_TYPE],
  ["application/calendar+xml", "application/calendar+xml", NO_TYPE],
  ["application/calendar+json", "application/calendar+json", NO_TYPE],
  ["text/plain", "text/plain", NO_TYPE],
  ["multipart/form-data with a boundary", "multipart/form-data; boundary=x", NO_TYPE],
  ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded", NO_TYPE],
  ["a 4 KB parameter value", `text/calendar; method=REQUEST; x=${"v".repeat(4096)}`, BOTH_DELIVERED],
  // Quoted back clipped, never whole.
  [
    "a component= of 4 KB",
    `text/calendar; component=${"V".repeat(4096)}; method=REQUEST`,
    ISM(/component=V{77}\.\.\. but the body holds a VEVENT/),
  ],
  [
    "a method= of 4 KB",
    `text/calendar; component=VEVENT; method=${"M".repeat(4096)}`,
    ISM(/method=M{77}\.\.\. but the body's METHOD is REQUEST/),
  ],
  [
    "200 parameters",
    `text/calendar${Array.from({ length: 200 }, (_, i) => `; p${i}=v`).join("")}`,
    BOTH_DELIVERED,
  ],
];

const ORIGINATORS: [string, string, Expected][] = [
  ["an Originator with no mailto: scheme", "bernard@peer.test", ORIGINATOR_INVALID],
  ["an Originator in angle brackets", "<mailto:bernard@peer.test>", ORIGINATOR_INVALID],
  ["an Originator with a display name", '"Bernard" <mailto:bernard@peer.test>', ORIGINATOR_INVALID],
  ["an Originator mailto: without a domain", "mailto:bernard", ORIGINATOR_INVALID],
  ["an Originator mailto: with an empty local part", "mailto:@peer.test", ORIGINATOR_INVALID],
  ["an Originator mailto: with two @", "mailto:bernard@x@peer.test", ORIGINATOR_INVALID],
  ["an Originator with a domain of two dots", "mailto:bernard@peer..test", ORIGINATOR_INVALID],
  ["an Originator of 3,000 characters", `mailto:${"b".repeat(3000)}@peer.test`, ORIGINATOR_INVALID],
  ["an Originator with a fragment", "mailto:bernard@peer.test#x", ORIGINATOR_INVALID],
  ["an Originator that is a relative path", "/principals/bernard", ORIGINATOR_INVALID],
  // Well-formed addresses the signer d=peer.test may not speak for.
  ["an Originator at a hosted domain", ANN, refused(403, "originator-denied")],
  [
    "an Originator at a subdomain of a hosted domain",
    "mailto:ceo@sub.org.test",
    refused(403, "originator-denied"),
  ],
  ["an Originator at another domain", "mailto:bernard@other.test", refused(403, "originator-denied")],
  // A URI of the signer's own host is its calendar user (draft §4.1: any URI scheme).
  ["an http: Originator on the signer's host", "http://peer.test/bernard", BOTH_DELIVERED],
  ["an http: Originator on another host", "http://other.test/bernard", refused(403, "originator-denied")],
  ["a urn:uuid: Originator", `urn:uuid:${crypto.randomUUID()}`, refused(403, "originator-denied")],
];

const RECIPIENTS: [string, string, Expected][] = [
  [
    "one recipient outside the hosted domains",
    "mailto:carol@other.test",
    { status: 200, statuses: { "mailto:carol@other.test": "3.7;Invalid calendar user" } },
  ],
  [
    "a recipient at a subdomain of a hosted domain",
    "mailto:x@sub.org.test",
    { status: 200, statuses: { "mailto:x@sub.org.test": "3.7;Invalid calendar user" } },
  ],
  ["the same recipient twice", `${ANN}, ${ANN}`, { status: 200, statuses: { [ANN]: "2.0;Success" } }],
  [
    "the same recipient in two spellings",
    `${ANN}, MAILTO:ann@ORG.TEST`,
    { status: 200, statuses: { [ANN]: "2.0;Success" } },
  ],
  ["a valid and an invalid recipient", `${ANN}, not an address`, RECIPIENT_INVALID],
  ["a recipient without a scheme", "ann@org.test", RECIPIENT_INVALID],
  ["a recipient in angle brackets", "<mailto:ann@org.test>", RECIPIENT_INVALID],
  ["a recipient of 3,000 characters", `mailto:${"a".repeat(3000)}@org.test`, RECIPIENT_INVALID],
  ["only commas", ",,,", refused(400, "recipient-missing")],
  [
    "a urn:uuid: recipient",
    "urn:uuid:5c6e0a3e-7d1b-4f63-9a49-0e9c1f0b6a11",
    {
      status: 200,
      statuses: { "urn:uuid:5c6e0a3e-7d1b-4f63-9a49-0e9c1f0b6a11": "3.7;Invalid calendar user" },
    },
  ],
  [
    "101 recipients (max-recipients is 100)",
    Array.from({ length: 101 }, (_, i) => `mailto:u${i}@org.test`).join(", "),
    refused(400, "max-recipients"),
  ],
];

const VERSIONS: [string, string, Expected][] = [
  ["1.00", "1.00", SIGNED_FIELD_CHANGED],
  ["2.0 then 1.0", "2.0, 1.0", SIGNED_FIELD_CHANGED],
  ["1", "1", BAD_VERSION],
  ["v1.0", "v1.0", BAD_VERSION],
  ["1.0.0", "1.0.0", BAD_VERSION],
  ["-1.0", "-1.0", BAD_VERSION],
  ["a 400-digit major version", `${"9".repeat(400)}.0`, BAD_VERSION],
  ["2.0 only", "2.0", refused(400, "version-not-supported", /not supported/)],
];

export function headerCases(target: () => EndpointTarget): Case[] {
  const cases: Case[] = [];
  const add = (name: string, expected: Expected, run: (t: EndpointTarget) => ReturnType<typeof send>) =>
    cases.push(endpointCase(target, name, expected, run));

  for (const header of HEADERS) {
    for (const [how, mutate] of Object.entries(MUTATIONS) as [MutationName, Mutation][]) {
      add(`${header} ${how}`, EXPECTED[header][how], (t) => mutated(t, header, mutate));
    }
  }
  for (const [what, value, expected] of CONTENT_TYPES) {
    add(`Content-Type with ${what}`, expected, (t) => sendBody(t, invitation(), { contentType: value }));
  }
  for (const [what, value, expected] of ORIGINATORS) {
    // The ORGANIZER says the same, so only the header (or who signs for it) is wrong.
    add(`${what}`, expected, (t) => {
      const body = invitation().replace("mailto:bernard@peer.test", value);
      return sendBody(t, body, { originator: value });
    });
  }
  for (const [what, value, expected] of RECIPIENTS) {
    // Each listed address is an ATTENDEE too, so that only the header is at fault.
    add(`Recipient with ${what}`, expected, (t) => {
      const attendees = value
        .split(",")
        .map((a) => a.trim())
        .filter((a) => /^[a-z]+:\S+$/i.test(a));
      const body = calendar(veventLines(uid(), [], { attendees }));
      return sendBody(t, body, { recipients: [value] });
    });
  }
  add("a Recipient who is not an ATTENDEE", ISM(/not an ATTENDEE/), (t) =>
    sendBody(t, invitation(), { recipients: ["mailto:zoe@org.test"] }),
  );
  for (const [what, value, expected] of VERSIONS) {
    add(`iSchedule-Version ${what}`, expected, (t) => {
      const body = invitation();
      return send(
        t,
        validFields({ body }).map(([n, v]): RawField => (n === "iSchedule-Version" ? [n, value] : [n, v])),
        body,
      );
    });
  }

  add("an Authorization field that h= does not cover", VF(/Authorization/), (t) => {
    const body = invitation();
    return send(t, [...validFields({ body }), ["Authorization", "Basic YWxpY2U6c2VjcmV0"]], body);
  });
  // isched decodes no content coding (RFC 9110 §8.4): the body is read as sent, and signed as sent.
  add("Content-Encoding: gzip on a body that is not gzip (read as sent)", BOTH_DELIVERED, (t) =>
    sendBody(t, invitation(), {}, (f) => [...f, ["Content-Encoding", "gzip"]]),
  );
  add("a gzip body with Content-Encoding: gzip", CAL(/UTF-8/), (t) =>
    sendBody(t, Bun.gzipSync(Buffer.from(invitation())), {}, (f) => [...f, ["Content-Encoding", "gzip"]]),
  );
  add("charset=iso-8859-1 on a Latin-1 body with an é", CAL(/UTF-8/), (t) =>
    sendBody(t, Buffer.from(calendar(veventLines(uid(), ["COMMENT:caf\xe9"])), "latin1"), {
      contentType: "text/calendar; component=VEVENT; method=REQUEST; charset=iso-8859-1",
    }),
  );
  add("Transfer-Encoding: chunked beside a Content-Length (RFC 9112 §6.3)", BARE_400, (t) =>
    sendBody(t, invitation(), {}, (f) => [...f, ["Transfer-Encoding", "chunked"]]),
  );
  add("Transfer-Encoding: gzip", BARE_400, (t) =>
    sendBody(t, invitation(), {}, (f) => [
      ...f.filter(([n]) => n !== "Content-Length"),
      ["Transfer-Encoding", "gzip"],
    ]),
  );
  add("500 extra header fields", httpLayer(431), (t) =>
    sendBody(t, invitation(), {}, (f) => [
      ...f,
      ...Array.from({ length: 500 }, (_, i): RawField => [`X-Extra-${i}`, "x"]),
    ]),
  );
  add("60 extra header fields", BOTH_DELIVERED, (t) =>
    sendBody(t, invitation(), {}, (f) => [
      ...f,
      ...Array.from({ length: 60 }, (_, i): RawField => [`X-Extra-${i}`, "x"]),
    ]),
  );
  add("a field name with a space inside", BARE_400, (t) =>
    sendBody(t, invitation(), {}, (f) => [...f, ["X Bad", "1"]]),
  );
  add("a field line without a colon", BARE_400, (t) => {
    const body = invitation();
    return sendLines(t, [...validFields({ body }).map(([n, v]) => `${n}: ${v}`), "X-No-Colon-Here"], body);
  });
  return cases;
}
