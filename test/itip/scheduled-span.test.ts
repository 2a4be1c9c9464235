import { describe, expect, test } from "bun:test";
import { parseItip, scheduledSpan } from "../../src/itip/index.ts";
import { A2_FREEBUSY_REQUEST, crlf, eventWith, RECURRING } from "./_fixtures.ts";

const span = (text: string, limit?: number) => scheduledSpan(parseItip(text), limit);

/** An update to a weekly series begun in January 2024, as a calendar server sends it in 2026. */
const weeklySince2024 = (...rule: string[]) =>
  crlf(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    "UID:weekly@a.test",
    "DTSTAMP:20261204T100000Z",
    "CREATED:20231215T090000Z",
    "LAST-MODIFIED:20261204T100000Z",
    "DTSTART:20240108T090000Z",
    "DTEND:20240108T100000Z",
    ...rule,
    "EXDATE:20240304T090000Z",
    "ORGANIZER:mailto:alice@a.test",
    "ATTENDEE:mailto:cyrus@example.net",
    "END:VEVENT",
    "END:VCALENDAR",
  );

describe("scheduledSpan()", () => {
  test("an open-ended weekly series starts at DTSTART and has no end; CREATED and EXDATE do not count", () => {
    expect(span(weeklySince2024("RRULE:FREQ=WEEKLY"))).toEqual({ firstStart: "20240108T090000Z" });
  });

  test("a bounded series ends with its last instance's end", () => {
    expect(span(weeklySince2024("RRULE:FREQ=WEEKLY;UNTIL=20260105T090000Z"))).toEqual({
      firstStart: "20240108T090000Z",
      lastEnd: "20260105T100000Z",
    });
    expect(span(weeklySince2024("RRULE:FREQ=WEEKLY;COUNT=3"))).toEqual({
      firstStart: "20240108T090000Z",
      lastEnd: "20240122T100000Z",
    });
  });

  test("an overridden instance moved past the series' end extends it, in UTC (TZID converted)", () => {
    const moved = RECURRING.replace(
      "DTSTART;TZID=Europe/Paris:20040923T110000",
      "DTSTART;TZID=Europe/Paris:20050110T110000",
    );
    expect(span(moved)).toEqual({ firstStart: "20040902T080000Z", lastEnd: "20050110T110000Z" });
  });

  test("a message of overridden instances only spans those instances", () => {
    const onlyOverride = crlf(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//isched tests//EN",
      "METHOD:REQUEST",
      "BEGIN:VEVENT",
      "UID:weekly@a.test",
      "DTSTAMP:20261204T100000Z",
      "RECURRENCE-ID:20261207T090000Z",
      "DTSTART:20261207T140000Z",
      "DURATION:PT30M",
      "ORGANIZER:mailto:alice@a.test",
      "ATTENDEE:mailto:cyrus@example.net",
      "END:VEVENT",
      "END:VCALENDAR",
    );
    expect(span(onlyOverride)).toEqual({ firstStart: "20261207T140000Z", lastEnd: "20261207T143000Z" });
  });

  test("RDATEs with DTSTART as the first instance; an all-day event ends at its DTEND date", () => {
    expect(span(eventWith("DURATION:PT1H", "RDATE:20040910T130000Z,20040903T130000Z"))).toEqual({
      firstStart: "20040902T130000Z",
      lastEnd: "20040910T140000Z",
    });
    expect(
      span(
        eventWith("RRULE:FREQ=YEARLY;COUNT=2").replace(
          "DTSTART:20040902T130000Z",
          "DTSTART;VALUE=DATE:20040902\r\nDTEND;VALUE=DATE:20040903",
        ),
      ),
    ).toEqual({ firstStart: "20040902T000000Z", lastEnd: "20050903T000000Z" });
  });

  test("more instances than the limit, or a rule ical.js would loop on, leave the end unknown", () => {
    expect(span(eventWith("RRULE:FREQ=DAILY;COUNT=500"), 100)).toEqual({ firstStart: "20040902T130000Z" });
    const started = performance.now();
    expect(span(eventWith("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=5"))).toEqual({
      firstStart: "20040902T130000Z",
    });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("a free/busy request spans its DTSTART and DTEND", () => {
    expect(span(A2_FREEBUSY_REQUEST)).toEqual({
      firstStart: "20040902T000000Z",
      lastEnd: "20040903T000000Z",
    });
  });
});
