import { describe, expect, test } from "bun:test";
import ICAL from "ical.js";
import { countInstances, parseItip } from "../../src/itip/index.ts";
import { A1_INVITE, crlf, eventWith, RECURRING } from "./_fixtures.ts";

const count = (text: string, limit: number) => countInstances(parseItip(text), limit);

describe("countInstances()", () => {
  test("counts 1 for a non-recurring event", () => {
    expect(count(A1_INVITE, 150)).toBe(1);
  });

  test("counts COUNT=10 minus one EXDATE as 9; overridden instances are not extra", () => {
    expect(count(RECURRING, 150)).toBe(9);
  });

  test("counts DTSTART plus RDATEs", () => {
    expect(count(eventWith("RDATE:20040903T130000Z,20040904T130000Z"), 150)).toBe(3);
  });

  test("counts an RDATE that repeats an RRULE instance once, and an EXDATE on DTSTART", () => {
    expect(count(eventWith("RRULE:FREQ=DAILY;COUNT=3", "RDATE:20040903T130000Z"), 150)).toBe(3);
    expect(count(eventWith("RRULE:FREQ=DAILY;COUNT=3", "RDATE:20040910T130000Z"), 150)).toBe(4);
    expect(count(eventWith("RDATE:20040903T130000Z", "EXDATE:20040902T130000Z"), 150)).toBe(1);
  });

  test("stops at limit + 1", () => {
    expect(count(eventWith("RRULE:FREQ=DAILY;COUNT=500"), 150)).toBe(151);
    expect(count(eventWith("RRULE:FREQ=DAILY;COUNT=151"), 150)).toBe(151);
    expect(count(eventWith("RRULE:FREQ=DAILY;COUNT=150"), 150)).toBe(150);
    expect(count(eventWith("RRULE:FREQ=DAILY"), 0)).toBe(1);
  });

  test("stops quickly on FREQ=SECONDLY without COUNT or UNTIL", () => {
    const started = performance.now();
    expect(count(eventWith("RRULE:FREQ=SECONDLY"), 10_000)).toBe(10_001);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  test("returns limit + 1, within the iteration budget, for a rule ical.js would loop on forever", () => {
    // February 30th never comes: ical.js's DAILY iterator would test candidate days without end.
    const started = performance.now();
    expect(count(eventWith("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"), 150)).toBe(151);
    expect(count(eventWith("RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"), 150)).toBe(151);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  test("restores ical.js's RecurIterator after counting, also after the budget ran out", () => {
    const prototype = ICAL.RecurIterator.prototype as unknown as Record<string, unknown>;
    const before = prototype.check_contracting_rules;
    count(eventWith("RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"), 10);
    count(eventWith("RRULE:FREQ=DAILY;COUNT=3"), 10);
    expect(prototype.check_contracting_rules).toBe(before);
  });

  test("counts the components of a message that carries only overridden instances", () => {
    const instance = (day: string) => [
      "BEGIN:VEVENT",
      "UID:weekly-1@example.com",
      "DTSTAMP:20040901T200200Z",
      `RECURRENCE-ID:200409${day}T080000Z`,
      "ORGANIZER:mailto:bernard@example.com",
      "ATTENDEE:mailto:cyrus@example.org",
      `DTSTART:200409${day}T090000Z`,
      "SUMMARY:Moved",
      "END:VEVENT",
    ];
    const text = crlf(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//x//EN",
      "METHOD:REQUEST",
      ...instance("09"),
      ...instance("23"),
      "END:VCALENDAR",
    );
    expect(count(text, 150)).toBe(2);
    expect(count(text, 1)).toBe(2);
    expect(count(text, 0)).toBe(1);
  });

  test("works on a message object that did not come from parseItip() (parses its text again)", () => {
    const copy = { ...parseItip(RECURRING) };
    expect(countInstances(copy, 150)).toBe(9);
  });

  test("refuses a negative or fractional limit", () => {
    const message = parseItip(A1_INVITE);
    expect(() => countInstances(message, -1)).toThrow(RangeError);
    expect(() => countInstances(message, 1.5)).toThrow(RangeError);
  });
});
