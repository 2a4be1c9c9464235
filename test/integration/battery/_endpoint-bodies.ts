/**
 * Endpoint cases: whole bodies that real software gets wrong, each correctly signed, so that only
 * the iCalendar is at fault: line ends, encodings, documents that are not iCalendar, dates out of
 * range, recurrence rules that never end or never match, time zones that take forever to expand,
 * every METHOD with the wrong parties, components mixed or nested too deep, sizes.
 */
import type { Case } from "./_cases.ts";
import {
  ANN,
  BERNARD,
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

const BODY_CASES: [string, Expected, () => string | Uint8Array][] = [
  [
    "LF-only line ends (accepted, as real clients send them)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid()), { eol: "\n" }),
  ],
  ["CR-only line ends", CAL(), () => calendar(veventLines(uid()), { eol: "\r" })],
  [
    "mixed CRLF and LF line ends",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid())).replace(/\r\n(?=SUMMARY)/, "\n"),
  ],
  ["an empty body", CAL(), () => ""],
  ["only CRLFs", CAL(), () => "\r\n".repeat(100)],
  // A byte-order mark is skipped, as most readers do.
  [
    "a UTF-8 byte-order mark in front (skipped)",
    BOTH_DELIVERED,
    () => `\ufeff${calendar(veventLines(uid()))}`,
  ],
  [
    "bytes that are not UTF-8",
    CAL(/not UTF-8/),
    () => Buffer.from(calendar(veventLines(uid(), ["COMMENT:caf\xe9"])), "latin1"),
  ],
  [
    "an overlong UTF-8 encoding of /",
    CAL(/not UTF-8/),
    () =>
      Buffer.concat([
        Buffer.from(calendar(veventLines(uid(), ["COMMENT:x"])).replace("COMMENT:x", "COMMENT:")),
        Buffer.from([0xc0, 0xaf]),
      ]),
  ],
  ["UTF-16 text", CAL(), () => Buffer.from(calendar(veventLines(uid())), "utf16le")],
  [
    "a NUL byte in a value",
    CAL(/control character U\+0000/),
    () => calendar(veventLines(uid(), ["COMMENT:a\x00b"])),
  ],
  ["plain text", CAL(), () => "Hi Ann, see you on Tuesday at ten. Bernard\r\n"],
  ["an HTML page", CAL(), () => "<!doctype html><html><body>502 Bad Gateway</body></html>\r\n"],
  [
    "an xCal document (RFC 6321)",
    CAL(),
    () =>
      `<?xml version="1.0"?><icalendar xmlns="urn:ietf:params:xml:ns:icalendar-2.0"><vcalendar/></icalendar>`,
  ],
  ["a jCal document (RFC 7265)", CAL(), () => `["vcalendar",[["version",{},"text","2.0"]],[]]`],
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
  [
    "a DTSTART on 30 February",
    CAL(/DTSTART/),
    () => calendar(veventLines(uid())).replace("DTSTART:20261202T100000Z", "DTSTART:20270230T100000Z"),
  ],
  [
    "a DTSTART at 25:00",
    CAL(/DTSTART/),
    () => calendar(veventLines(uid())).replace("DTSTART:20261202T100000Z", "DTSTART:20261202T250000Z"),
  ],
  // min-date-time and max-date-time are compared with the scheduled instances (draft §9.2.1.7).
  [
    "an event in the year 1200 (before --min-date-time)",
    refused(
      400,
      "min-date-time",
      /Every instance of the message is over by 12001202T110000Z, before the minimum/,
    ),
    () =>
      calendar(veventLines(uid()))
        .replace("DTSTART:20261202T100000Z", "DTSTART:12001202T100000Z")
        .replace("DTEND:20261202T110000Z", "DTEND:12001202T110000Z"),
  ],
  [
    "an event in the year 9999 (after --max-date-time)",
    refused(
      400,
      "max-date-time",
      /The first instance of the message starts at 99991202T100000Z, after the maximum/,
    ),
    () =>
      calendar(veventLines(uid()))
        .replace("DTSTART:20261202T100000Z", "DTSTART:99991202T100000Z")
        .replace("DTEND:20261202T110000Z", "DTEND:99991202T110000Z"),
  ],
  [
    "an event from 1200 to 2026 (its instance reaches into the range)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid())).replace("DTSTART:20261202T100000Z", "DTSTART:12001202T100000Z"),
  ],
  // RFC 5545 §3.8.2.2 wants DTEND after DTSTART; isched does not check the order (left to the
  // calendar server, which knows the event).
  [
    "a DTEND before DTSTART (not checked)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid())).replace("DTEND:20261202T110000Z", "DTEND:20261202T090000Z"),
  ],
  // RFC 5545 §3.2.19 wants a VTIMEZONE for each TZID; clients that rely on IANA names omit it.
  [
    "a TZID that no VTIMEZONE defines (accepted)",
    BOTH_DELIVERED,
    () =>
      calendar(veventLines(uid())).replace(
        "DTSTART:20261202T100000Z",
        "DTSTART;TZID=Mars/Olympus:20261202T100000",
      ),
  ],
  // ical.js reads the value as a DATE-TIME whatever VALUE= says; not refused.
  [
    "VALUE=DATE on a date-time (read as a date-time)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid())).replace("DTSTART:", "DTSTART;VALUE=DATE:"),
  ],
  ["SEQUENCE:abc", CAL(/SEQUENCE/), () => calendar(veventLines(uid(), ["SEQUENCE:abc"]))],
  [
    "SEQUENCE:-1 (an INTEGER may be negative)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), ["SEQUENCE:-1"])),
  ],
  [
    "SEQUENCE of 30 digits",
    CAL(/SEQUENCE value "9+" is not an INTEGER/),
    () => calendar(veventLines(uid(), [`SEQUENCE:${"9".repeat(30)}`])),
  ],
  [
    "DURATION:1 hour",
    CAL(/DURATION/),
    () => calendar(veventLines(uid(), ["DURATION:1 hour"])).replace("DTEND:20261202T110000Z\r\n", ""),
  ],
  [
    "both DTEND and DURATION",
    CAL(/both DURATION and DTEND/),
    () => calendar(veventLines(uid(), ["DURATION:PT1H"])),
  ],
  [
    "RRULE:FREQ=SOMETIMES",
    CAL(/RRULE/),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=SOMETIMES;COUNT=3"])),
  ],
  ["an RRULE without FREQ", CAL(/RRULE|RECUR/), () => calendar(veventLines(uid(), ["RRULE:COUNT=3"]))],
  // RFC 5545 §3.3.10 forbids COUNT with UNTIL; the rule is bounded either way, and not refused.
  [
    "an RRULE with COUNT and UNTIL (not refused)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), ["RRULE:FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"])),
  ],
  [
    "an RRULE with BYMONTH=13",
    CAL(/RRULE value cannot be parsed \(BYMONTH/),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=YEARLY;BYMONTH=13;COUNT=3"])),
  ],
  // Not a positive INTERVAL (RFC 5545 §3.3.10): read as 1 by ical.js, and not refused.
  [
    "an RRULE with INTERVAL=0 (read as 1)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), ["RRULE:FREQ=DAILY;INTERVAL=0;COUNT=3"])),
  ],
  [
    "an RRULE with COUNT=-1 (not refused)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), ["RRULE:FREQ=DAILY;COUNT=-1"])),
  ],
  [
    "an EXDATE that is not a date",
    CAL(/EXDATE/),
    () => calendar(veventLines(uid(), ["RRULE:FREQ=DAILY;COUNT=3", "EXDATE:yesterday"])),
  ],
  [
    "an ATTENDEE that is not an address",
    CAL(/ATTENDEE/),
    () => calendar(veventLines(uid(), ["ATTENDEE:Dave from accounting"])),
  ],
  ["a line with no colon", CAL(), () => calendar(veventLines(uid(), ["THIS LINE HAS NO COLON"]))],
  ["a line that is only a colon", CAL(), () => calendar(veventLines(uid(), [":"]))],
  [
    "a nested BEGIN:VEVENT without END",
    CAL(),
    () => calendar([...veventLines(uid()).slice(0, -1), "BEGIN:VEVENT", `UID:${uid()}`, "END:VEVENT"]),
  ],
  ["END:VTODO closing a VEVENT", CAL(), () => calendar([...veventLines(uid()).slice(0, -1), "END:VTODO"])],
  ["no END:VCALENDAR", CAL(), () => calendar(veventLines(uid())).replace("END:VCALENDAR\r\n", "")],
  [
    "text after END:VCALENDAR",
    CAL(/TRAILING is not followed by ":"/),
    () => `${calendar(veventLines(uid()))}trailing garbage\r\n`,
  ],
  [
    "BEGIN:VCALENDAR nested 200 deep",
    CAL(),
    () => `${"BEGIN:VCALENDAR\r\n".repeat(200)}${"END:VCALENDAR\r\n".repeat(200)}`,
  ],
  [
    "a VALARM nested 100 deep",
    CAL(),
    () =>
      calendar([
        ...veventLines(uid()).slice(0, -1),
        ..."BEGIN:VALARM\r\n".repeat(100).trim().split("\r\n"),
        ..."END:VALARM\r\n".repeat(100).trim().split("\r\n"),
        "END:VEVENT",
      ]),
  ],
  ["two VCALENDARs", CAL(), () => calendar(veventLines(uid())) + calendar(veventLines(uid()))],
  ["VERSION:3.0", CAL(/VERSION/), () => calendar(veventLines(uid())).replace("VERSION:2.0", "VERSION:3.0")],
  ["no METHOD", ISM(/no METHOD/), () => calendar(veventLines(uid())).replace("METHOD:REQUEST\r\n", "")],
  [
    "two METHODs",
    ISM(/METHOD/),
    () => calendar(veventLines(uid())).replace("METHOD:REQUEST", "METHOD:REQUEST\r\nMETHOD:CANCEL"),
  ],
  [
    "METHOD:PUBLISH (not in this server's scheduling-messages)",
    ISM(/does not accept METHOD:PUBLISH/),
    () => calendar(veventLines(uid()), { method: "PUBLISH" }),
  ],
  [
    "METHOD:REPLY from the organizer",
    ISM(/may carry only the ATTENDEE who sends it/),
    () => calendar(veventLines(uid()), { method: "REPLY" }),
  ],
  [
    "METHOD:COUNTER from the organizer",
    refused(403, "originator-denied", /not an ATTENDEE of this COUNTER/),
    () => calendar(veventLines(uid()), { method: "COUNTER" }),
  ],
  [
    "METHOD:REFRESH from the organizer",
    ISM(/may carry only the ATTENDEE who sends it/),
    () => calendar(veventLines(uid()), { method: "REFRESH" }),
  ],
  [
    "METHOD:X-UNKNOWN",
    ISM(/METHOD:X-UNKNOWN is not defined for VEVENT/),
    () => calendar(veventLines(uid()), { method: "X-UNKNOWN" }),
  ],
  // Enumerated values are case-insensitive (RFC 5545 §2).
  ["METHOD:request in lower case", BOTH_DELIVERED, () => calendar(veventLines(uid()), { method: "request" })],
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
    "only a VTIMEZONE",
    ISM(/no scheduling component/),
    () =>
      calendar([
        "BEGIN:VTIMEZONE",
        "TZID:X",
        "BEGIN:STANDARD",
        "DTSTART:19700101T000000",
        "TZOFFSETFROM:+0000",
        "TZOFFSETTO:+0000",
        "END:STANDARD",
        "END:VTIMEZONE",
      ]),
  ],
  [
    "a VJOURNAL REQUEST",
    ISM(/METHOD:REQUEST is not defined for VJOURNAL/),
    () => calendar(veventLines(uid()).map((l) => l.replace("VEVENT", "VJOURNAL"))),
  ],
  [
    "a VFREEBUSY REQUEST (the store target takes no free/busy)",
    ISM(/does not accept VFREEBUSY/),
    () =>
      calendar([
        "BEGIN:VFREEBUSY",
        `UID:${uid()}`,
        "DTSTAMP:20261125T120000Z",
        "DTSTART:20261202T000000Z",
        "DTEND:20261203T000000Z",
        `ORGANIZER:${BERNARD}`,
        `ATTENDEE:${ANN}`,
        "END:VFREEBUSY",
      ]),
  ],
  // RFC 5545 §3.6: x-comp is allowed, and ignored.
  [
    "an X- component beside the VEVENT",
    BOTH_DELIVERED,
    () => calendar(["BEGIN:X-THING", "X-A:1", "END:X-THING", ...veventLines(uid())]),
  ],
  [
    "two masters with one UID",
    ISM(/without RECURRENCE-ID/),
    () => {
      const u = uid();
      return calendar([...veventLines(u), ...veventLines(u)]);
    },
  ],
  [
    "two VEVENTs with different UIDs",
    ISM(/different UIDs/),
    () => calendar([...veventLines(uid()), ...veventLines(uid())]),
  ],
  [
    "a RECURRENCE-ID that is not a date",
    CAL(/RECURRENCE-ID/),
    () => calendar(veventLines(uid(), ["RECURRENCE-ID:soon"])),
  ],
  [
    "an ATTACH of 100 KB inline base64",
    refused(400, "attachment-type-not-supported"),
    () =>
      calendar(
        veventLines(uid(), [
          `ATTACH;ENCODING=BASE64;VALUE=BINARY:${Buffer.alloc(75_000, 7).toString("base64")}`,
        ]),
      ),
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
    "an ATTENDEE with 2,000 parameters",
    BOTH_DELIVERED,
    () =>
      calendar(
        veventLines(uid(), [
          `ATTENDEE${Array.from({ length: 2000 }, (_, i) => `;X-P${i}=v`).join("")}:mailto:guest@peer.test`,
        ]),
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
    "1,000 RDATEs",
    BOTH_DELIVERED,
    () =>
      calendar(
        veventLines(
          uid(),
          Array.from(
            { length: 1000 },
            (_, i) =>
              `RDATE:2027${String((i % 12) + 1).padStart(2, "0")}${String((i % 28) + 1).padStart(2, "0")}T10${String(i % 60).padStart(2, "0")}00Z`,
          ),
        ),
      ),
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
    "a 100 KB COMMENT line (accepted: under the size cap)",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), [`COMMENT:${"x".repeat(100 * 1024)}`])),
  ],
  [
    "a 900 KB body of X- properties (under the 1 MB cap)",
    BOTH_DELIVERED,
    () =>
      calendar(
        veventLines(
          uid(),
          Array.from({ length: 9000 }, (_, i) => `X-FILL-${i}:${"y".repeat(90)}`),
        ),
      ),
  ],
  [
    "a property name of 10 KB",
    BOTH_DELIVERED,
    () => calendar(veventLines(uid(), [`X-${"N".repeat(10 * 1024)}:1`])),
  ],
  [
    "a parameter value with a bare double quote",
    CAL(),
    () => calendar(veventLines(uid(), ['ATTENDEE;CN=Da"ve:mailto:dave@peer.test'])),
  ],
];

export function bodyCases(target: () => EndpointTarget): Case[] {
  return BODY_CASES.map(([what, expected, body]) =>
    endpointCase(target, `a body with ${what}`, expected, (t) => sendBody(t, body())),
  );
}
