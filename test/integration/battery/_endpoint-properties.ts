/**
 * Endpoint cases: the invitation's iCalendar broken property by property, each body correctly
 * signed, so that only the iCalendar is at fault: a 2 KB invitation cut every 50 bytes, then every
 * property dropped, repeated, emptied, garbled, oversized, with bad parameters, re-cased and folded.
 */
import type { Case } from "./_cases.ts";
import {
  BOTH_DELIVERED,
  CAL,
  calendar,
  type EndpointTarget,
  type Expected,
  endpointCase,
  ISM,
  refused,
  sendBody,
  uid,
  veventLines,
} from "./_endpoint-request.ts";

/** About 2 KB: long enough to be cut at 40 places. */
function richInvitation(id: string): string {
  return calendar(
    veventLines(id, [
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

/** The properties of the invitation whose line a mutation rewrites (the first line with that name). */
const PROPERTIES = [
  "VERSION",
  "PRODID",
  "METHOD",
  "UID",
  "DTSTAMP",
  "DTSTART",
  "DTEND",
  "SUMMARY",
  "ORGANIZER",
  "ATTENDEE",
] as const;
type Property = (typeof PROPERTIES)[number];

type LineMutation = (line: string) => string[];
const nameOf = (line: string) => /^[^;:]+/.exec(line)![0];
const lineValue = (line: string) => line.slice(line.indexOf(":") + 1);
const headOf = (line: string) => line.slice(0, line.indexOf(":"));

const LINE_MUTATIONS = {
  dropped: () => [],
  "given twice": (line) => [line, line],
  "given twice with different values": (line) => [line, `${headOf(line)}:${lineValue(line)}x`],
  "with an empty value": (line) => [`${headOf(line)}:`],
  "with a 10 KB value": (line) => [`${headOf(line)}:${"x".repeat(10 * 1024)}`],
  "with a control character in its value": (line) => [`${headOf(line)}:${lineValue(line)}\x01`],
  "with an unknown X- parameter": (line) => [`${headOf(line)};X-BATTERY=1:${lineValue(line)}`],
  "with a parameter that has no value": (line) => [`${headOf(line)};CN:${lineValue(line)}`],
  "with an unterminated quoted parameter": (line) => [`${headOf(line)};CN="Bern:${lineValue(line)}`],
  "with its name in lower case": (line) => [
    `${headOf(line).replace(nameOf(line), nameOf(line).toLowerCase())}:${lineValue(line)}`,
  ],
  // RFC 5545 §3.1: a CRLF followed by one space is removed when the line is unfolded.
  "folded every 10 characters": (line) => [line.replace(/(.{10})(?=.)/g, "$1\r\n ")],
} satisfies Record<string, LineMutation>;
type LineMutationName = keyof typeof LINE_MUTATIONS;

/** What every property shares: parameters and names are syntax, checked alike everywhere. */
const SYNTAX = {
  "with a control character in its value": CAL(/control character U\+0001/),
  "with a parameter that has no value": CAL(/has no "=" and value/),
  "with an unterminated quoted parameter": CAL(/is not closed/),
  // RFC 5545 §3.2: unknown parameters are ignored; names are case-insensitive; folding is undone.
  "with an unknown X- parameter": BOTH_DELIVERED,
  "with its name in lower case": BOTH_DELIVERED,
  "folded every 10 characters": BOTH_DELIVERED,
} satisfies Partial<Record<LineMutationName, Expected>>;
const once = (name: string, element = "invalid-calendar-data") => ({
  "given twice": refused(400, element, new RegExp(`2 ${name} properties`)),
  "given twice with different values": refused(400, element, new RegExp(`2 ${name} properties`)),
});
const notDateTime = (name: string) => ({
  "with an empty value": CAL(new RegExp(`${name} value "" is not a valid DATE-TIME`)),
  "with a 10 KB value": CAL(new RegExp(`${name} value "x+\\.\\.\\." is not a valid DATE-TIME`)),
});
const notAddress = (name: string) => ({
  "with an empty value": CAL(new RegExp(`${name} value "" is not a calendar user address`)),
  "with a 10 KB value": CAL(new RegExp(`${name} value "x+\\.\\.\\." is not a calendar user address`)),
});
const required = (name: string) => ISM(new RegExp(`METHOD:REQUEST requires ${name} in every VEVENT`));

/**
 * Every property × mutation. VERSION and PRODID are REQUIRED by RFC 5545 §3.6 but isched, like
 * most readers, accepts a calendar without them; a wrong VERSION is refused.
 */
const PROPERTY_EXPECTED: Record<Property, Record<LineMutationName, Expected>> = {
  VERSION: {
    ...SYNTAX,
    ...once("VERSION"),
    dropped: BOTH_DELIVERED,
    "with an empty value": CAL(/VERSION: is not supported/),
    "with a 10 KB value": CAL(/VERSION:x+\.\.\. is not supported/),
  },
  PRODID: {
    ...SYNTAX,
    ...once("PRODID"),
    dropped: BOTH_DELIVERED,
    "with an empty value": BOTH_DELIVERED,
    "with a 10 KB value": BOTH_DELIVERED,
  },
  METHOD: {
    ...SYNTAX,
    ...once("METHOD", "invalid-scheduling-message"),
    dropped: ISM(/no METHOD property/),
    "with an empty value": ISM(/METHOD: is not a method name/),
    // The Content-Type names REQUEST (only the body is at fault); the body's method is quoted clipped.
    "with a 10 KB value": ISM(/Content-Type says method=REQUEST but the body's METHOD is X+\.\.\./),
  },
  UID: {
    ...SYNTAX,
    ...once("UID"),
    dropped: required("UID"),
    "with an empty value": ISM(/has an empty UID/),
    "with a 10 KB value": BOTH_DELIVERED,
  },
  DTSTAMP: { ...SYNTAX, ...once("DTSTAMP"), ...notDateTime("DTSTAMP"), dropped: required("DTSTAMP") },
  DTSTART: { ...SYNTAX, ...once("DTSTART"), ...notDateTime("DTSTART"), dropped: required("DTSTART") },
  // Without DTEND (or DURATION) the event is an instant (RFC 5545 §3.6.1).
  DTEND: { ...SYNTAX, ...once("DTEND"), ...notDateTime("DTEND"), dropped: BOTH_DELIVERED },
  SUMMARY: {
    ...SYNTAX,
    ...once("SUMMARY"),
    dropped: BOTH_DELIVERED,
    "with an empty value": BOTH_DELIVERED,
    "with a 10 KB value": BOTH_DELIVERED,
  },
  ORGANIZER: { ...SYNTAX, ...once("ORGANIZER"), ...notAddress("ORGANIZER"), dropped: required("ORGANIZER") },
  ATTENDEE: {
    ...SYNTAX,
    ...notAddress("ATTENDEE"),
    // The first ATTENDEE is Ann, a Recipient.
    dropped: ISM(/Recipient mailto:ann@org.test is not an ATTENDEE/),
    // ATTENDEE may appear any number of times; a repeated one is the same attendee.
    "given twice": BOTH_DELIVERED,
    "given twice with different values": BOTH_DELIVERED,
  },
};

function withLine(property: Property, mutate: LineMutation): string {
  const lines = calendar(veventLines(uid())).split("\r\n");
  const at = lines.findIndex((l) => nameOf(l) === property);
  return [...lines.slice(0, at), ...mutate(lines[at]!), ...lines.slice(at + 1)].join("\r\n");
}

export function propertyCases(target: () => EndpointTarget): Case[] {
  const cases: Case[] = [];
  const whole = richInvitation("cut-template");
  for (let at = 50; at < Buffer.byteLength(whole); at += 50) {
    cases.push(
      endpointCase(target, `a 2 KB invitation cut after ${at} bytes`, CAL(), (t) =>
        sendBody(t, Buffer.from(richInvitation(uid())).subarray(0, at)),
      ),
    );
  }
  for (const property of PROPERTIES) {
    for (const [how, mutate] of Object.entries(LINE_MUTATIONS) as [LineMutationName, LineMutation][]) {
      cases.push(
        endpointCase(
          target,
          `a body whose ${property} is ${how.replace(/^with/, "given with")}`,
          PROPERTY_EXPECTED[property][how],
          (t) =>
            // The Content-Type names the method as it should be, so only the body is at fault.
            sendBody(t, withLine(property, mutate), {
              contentType: "text/calendar; component=VEVENT; method=REQUEST",
            }),
        ),
      );
    }
  }
  return cases;
}
