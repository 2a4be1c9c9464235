import { describe, expect, test } from "bun:test";
import { parseItip } from "../../src/itip/index.ts";
import { expectRefused } from "./_expect.ts";
import {
  A1_INVITE,
  A2_FREEBUSY_REQUEST,
  CANCEL,
  crlf,
  eventWith,
  RECURRING,
  REPLY_ACCEPTED,
  replaceLine,
  VTODO_REQUEST,
} from "./_fixtures.ts";

describe("parseItip() refuses invalid calendar data", () => {
  test("refuses an empty string", () => {
    expectRefused("", "invalid-calendar-data", /empty/);
    expectRefused(" \r\n\r\n", "invalid-calendar-data", /./);
  });

  test("refuses garbage text", () => {
    expectRefused("hello world", "invalid-calendar-data", /^The body is not an iCalendar object: line 1/);
    expectRefused("<html><body>Error</body></html>", "invalid-calendar-data", /not an iCalendar object/);
  });

  test("refuses 1 MB of garbage quickly, without quoting it", () => {
    const started = performance.now();
    const error = expectRefused("A".repeat(1024 * 1024), "invalid-calendar-data", /not an iCalendar object/);
    expect(performance.now() - started).toBeLessThan(500);
    expect(error.message).not.toContain("AAAAAAAAAA");
  });

  test("refuses a body with two VCALENDARs, naming the line of the second", () => {
    expectRefused(
      A1_INVITE + CANCEL,
      "invalid-calendar-data",
      /more than one iCalendar object \(another BEGIN:VCALENDAR on line 20\)/,
    );
  });

  test("refuses a vCard", () => {
    const vcard = crlf("BEGIN:VCARD", "VERSION:4.0", "FN:Cyrus", "END:VCARD");
    expectRefused(vcard, "invalid-calendar-data", /starts with BEGIN:VCARD on line 1/);
  });

  test("refuses the draft's A.3 body, whose END:VEVENT closes a BEGIN:VTODO", () => {
    const a3 = replaceLine(VTODO_REQUEST, "END:VTODO", "END:VEVENT");
    expectRefused(a3, "invalid-calendar-data", /^Line 14: END:VEVENT does not close BEGIN:VTODO of line 5$/);
  });

  test("refuses a component that is never closed", () => {
    const text = A1_INVITE.replace("END:VEVENT\r\n", "");
    expectRefused(
      text,
      "invalid-calendar-data",
      /BEGIN:VEVENT on line 5 is never closed|does not close BEGIN:VEVENT/,
    );
  });

  test("refuses a continuation line with nothing before it", () => {
    expectRefused(` ${A1_INVITE}`, "invalid-calendar-data", /Line 1 starts with whitespace/);
  });

  test("refuses a line without a value", () => {
    const text = replaceLine(A1_INVITE, "SUMMARY:Design meeting", "SUMMARY Design meeting");
    expectRefused(text, "invalid-calendar-data", /^Line 10: SUMMARY is not followed by ":"/);
  });

  test("refuses a control character", () => {
    const text = replaceLine(A1_INVITE, "SUMMARY:Design meeting", "SUMMARY:Design\x00meeting");
    expectRefused(text, "invalid-calendar-data", /Line 10 contains the control character U\+0000/);
  });

  test("refuses a malformed DATE-TIME, naming its line", () => {
    const text = replaceLine(A1_INVITE, "DTSTART:20040902T130000Z", "DTSTART:2004XX02T130000Z");
    expectRefused(
      text,
      "invalid-calendar-data",
      /^Line 8: the DTSTART value "2004XX02T130000Z" is not a valid DATE-TIME/,
    );
    const month13 = replaceLine(A1_INVITE, "DTSTART:20040902T130000Z", "DTSTART:20041302T130000Z");
    expectRefused(month13, "invalid-calendar-data", /Line 8: the DTSTART value/);
  });

  test("refuses a SEQUENCE that is not an integer", () => {
    const text = replaceLine(CANCEL, "SEQUENCE:1", "SEQUENCE:abc");
    expectRefused(text, "invalid-calendar-data", /the SEQUENCE value "abc" is not an INTEGER/);
  });

  test("refuses a FREEBUSY value ical.js cannot parse, naming its line", () => {
    const text = replaceLine(
      A2_FREEBUSY_REQUEST,
      "ATTENDEE;CN=Mike Douglass:mailto:mike@example.org",
      "ATTENDEE;CN=Mike Douglass:mailto:mike@example.org",
      "FREEBUSY:garbage",
    );
    expectRefused(text, "invalid-calendar-data", /^Line 13: the FREEBUSY value/);
  });

  test("refuses an ORGANIZER that is not an address", () => {
    const text = replaceLine(A1_INVITE, "ORGANIZER:mailto:bernard@example.com", "ORGANIZER:Bernard");
    expectRefused(text, "invalid-calendar-data", /ORGANIZER value "Bernard" is not a calendar user address/);
  });

  test("refuses two ORGANIZER properties in one component", () => {
    const text = replaceLine(
      A1_INVITE,
      "ORGANIZER:mailto:bernard@example.com",
      "ORGANIZER:mailto:bernard@example.com",
      "ORGANIZER:mailto:mallory@example.net",
    );
    expectRefused(text, "invalid-calendar-data", /has 2 ORGANIZER properties/);
  });

  test("refuses VERSION:1.0", () => {
    expectRefused(
      A1_INVITE.replace("VERSION:2.0", "VERSION:1.0"),
      "invalid-calendar-data",
      /VERSION:1.0 is not supported/,
    );
  });

  test("refuses an RRULE that RFC 5545 forbids, naming its line", () => {
    expectRefused(
      eventWith("RRULE:FREQ=WEEKLY;BYMONTHDAY=3"),
      "invalid-calendar-data",
      /^Line 11: the RRULE is not valid/,
    );
    expectRefused(
      eventWith("RRULE:FREQ=DAILY;BYDAY=XX"),
      "invalid-calendar-data",
      /^Line 11: the RRULE value cannot be parsed/,
    );
  });
});

describe("parseItip() resists hostile input", () => {
  const evilZone = (rule: string) =>
    crlf(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//x//EN",
      "METHOD:REQUEST",
      "BEGIN:VTIMEZONE",
      "TZID:Evil",
      "BEGIN:DAYLIGHT",
      "TZOFFSETFROM:+0100",
      "TZOFFSETTO:+0200",
      "DTSTART:19700101T000000",
      `RRULE:${rule}`,
      "END:DAYLIGHT",
      "END:VTIMEZONE",
      "BEGIN:VEVENT",
      "UID:evil-1@example.com",
      "DTSTAMP:20040901T200200Z",
      "ORGANIZER:mailto:bernard@example.com",
      "ATTENDEE:mailto:cyrus@example.org",
      "DTSTART;TZID=Evil:20040902T100000",
      "SUMMARY:x",
      "END:VEVENT",
      "END:VCALENDAR",
    );

  test("refuses, within a second, a VTIMEZONE whose rule would take minutes to expand", () => {
    for (const rule of ["FREQ=MINUTELY", "FREQ=SECONDLY", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"]) {
      const started = performance.now();
      expectRefused(
        evilZone(rule),
        "invalid-calendar-data",
        /^A VTIMEZONE or RRULE in the message needs more than 50000 steps to expand$/,
      );
      expect(performance.now() - started).toBeLessThan(1000);
    }
  });

  test("still converts times with an ordinary yearly VTIMEZONE rule, even in year 9999", () => {
    expect(parseItip(evilZone("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")).start).toBe("2004-09-02T08:00:00Z");
    const farFuture = evilZone("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
      .replace("DTSTART:19700101T000000", "DTSTART:16010101T000000")
      .replace("DTSTART;TZID=Evil:20040902T100000", "DTSTART;TZID=Evil:99990902T100000");
    expect(parseItip(farFuture).start).toBe("9999-09-02T08:00:00Z");
  });

  test("refuses components nested absurdly deep", () => {
    const deep = A1_INVITE.replace(
      "END:VEVENT",
      `${"BEGIN:X-A\r\n".repeat(20)}${"END:X-A\r\n".repeat(20)}END:VEVENT`,
    );
    expectRefused(deep, "invalid-calendar-data", /^Line 28: components are nested more than 12 deep$/);
  });

  test("refuses a VTIMEZONE without TZID", () => {
    expectRefused(
      RECURRING.replace("TZID:Europe/Paris\r\n", ""),
      "invalid-calendar-data",
      /^The VTIMEZONE on line 5 has no TZID properties/,
    );
  });
});

describe("parseItip() refuses invalid scheduling messages", () => {
  test("refuses a message without METHOD", () => {
    expectRefused(
      A1_INVITE.replace("METHOD:REQUEST\r\n", ""),
      "invalid-scheduling-message",
      /no METHOD property/,
    );
  });

  test("refuses a message mixing VEVENT and VTODO (RFC 5546 §1.4)", () => {
    const todo = VTODO_REQUEST.slice(
      VTODO_REQUEST.indexOf("BEGIN:VTODO"),
      VTODO_REQUEST.indexOf("END:VCALENDAR"),
    );
    const mixed = A1_INVITE.replace("END:VCALENDAR", `${todo}END:VCALENDAR`);
    expectRefused(
      mixed,
      "invalid-scheduling-message",
      /mixes VEVENT and VTODO components \(line 19\).*RFC 5546 §1\.4/,
    );
  });

  test("refuses a component without UID", () => {
    const text = A1_INVITE.replace("UID:34222-232@example.com\r\n", "");
    expectRefused(
      text,
      "invalid-scheduling-message",
      /requires UID in every VEVENT \(RFC 5546 §3\.2\.2\).*line 5/,
    );
  });

  test("refuses a REQUEST without ORGANIZER, DTSTAMP or ATTENDEE", () => {
    expectRefused(
      A1_INVITE.replace("ORGANIZER:mailto:bernard@example.com\r\n", ""),
      "invalid-scheduling-message",
      /METHOD:REQUEST requires ORGANIZER/,
    );
    expectRefused(
      A1_INVITE.replace("DTSTAMP:20040901T200200Z\r\n", ""),
      "invalid-scheduling-message",
      /requires DTSTAMP/,
    );
    const noAttendee = replaceLine(eventWith(), "ATTENDEE:mailto:cyrus@example.org");
    expectRefused(noAttendee, "invalid-scheduling-message", /requires an ATTENDEE in every VEVENT/);
  });

  test("refuses components with different UIDs", () => {
    const second = RECURRING.replace(
      "UID:weekly-1@example.com\r\nDTSTAMP:20040901T200200Z\r\nRECURRENCE-ID;TZID=Europe/Paris:20040909",
      "UID:other@example.com\r\nDTSTAMP:20040901T200200Z\r\nRECURRENCE-ID;TZID=Europe/Paris:20040909",
    );
    expectRefused(
      second,
      "invalid-scheduling-message",
      /different UIDs \("weekly-1@example.com" on line 22, "other@example.com"/,
    );
  });

  test("refuses two master components", () => {
    const twoMasters = RECURRING.replace("RECURRENCE-ID;TZID=Europe/Paris:20040909T100000\r\n", "");
    expectRefused(twoMasters, "invalid-scheduling-message", /2 VEVENT components without RECURRENCE-ID/);
  });

  test("refuses a REPLY naming two attendees who are not delegates", () => {
    const text = replaceLine(
      REPLY_ACCEPTED,
      "ATTENDEE;PARTSTAT=ACCEPTED;CN=Cyrus Daboo:MAILTO:Cyrus@Example.ORG",
      "ATTENDEE;PARTSTAT=ACCEPTED:mailto:cyrus@example.org",
      "ATTENDEE;PARTSTAT=DECLINED:mailto:mike@example.org",
    );
    expectRefused(
      text,
      "invalid-scheduling-message",
      /METHOD:REPLY names 2 attendees \(cyrus@example.org, mike@example.org\)/,
    );
  });

  test("refuses a VFREEBUSY REQUEST without DTEND", () => {
    const text = A2_FREEBUSY_REQUEST.replace("DTEND:20040903T000000Z\r\n", "");
    expectRefused(
      text,
      "invalid-scheduling-message",
      /requires DTEND in every VFREEBUSY \(RFC 5546 §3\.3\.2\)/,
    );
  });

  test("refuses a calendar with only a VTIMEZONE", () => {
    const text = `${RECURRING.slice(0, RECURRING.indexOf("BEGIN:VEVENT"))}END:VCALENDAR\r\n`;
    expectRefused(text, "invalid-scheduling-message", /holds no scheduling component/);
  });
});
