import { describe, expect, test } from "bun:test";
import { parseItip, scheduledSpan } from "../../src/itip/index.ts";
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

describe("parseItip() reads valid messages", () => {
  test("reads the draft's A.1 invitation into the model", () => {
    const message = parseItip(A1_INVITE);
    expect(message).toEqual({
      method: "REQUEST",
      component: "VEVENT",
      uid: "34222-232@example.com",
      organizer: { address: "mailto:bernard@example.com" },
      attendees: [
        {
          address: "mailto:bernard@example.com",
          name: "Bernard Desruisseaux",
          partstat: "ACCEPTED",
          role: "CHAIR",
          cutype: "INDIVIDUAL",
        },
        {
          address: "mailto:cyrus@example.org",
          name: "Cyrus Daboo",
          partstat: "NEEDS-ACTION",
          role: "REQ-PARTICIPANT",
          rsvp: true,
          cutype: "INDIVIDUAL",
        },
      ],
      attendeeAddresses: ["mailto:bernard@example.com", "mailto:cyrus@example.org"],
      sequence: 0,
      revisions: [{ sequence: 0, dtstamp: "20040901T200200Z" }],
      summary: "Design meeting",
      start: "2004-09-02T13:00:00Z",
      end: "2004-09-02T14:00:00Z",
      recurrence: { rrule: false, openEnded: false, rdates: 0, exdates: 0, overridden: 0 },
      attachments: { inline: 0, external: 0 },
      text: A1_INVITE,
    });
  });

  test("unfolds lines folded with a space or a tab, even inside a parameter name", () => {
    const tabbed = A1_INVITE.replace("\r\n IVIDUAL", "\r\n\tIVIDUAL");
    const attendee = parseItip(tabbed).attendees[0]!;
    expect(attendee.cutype).toBe("INDIVIDUAL");
    expect(attendee.name).toBe("Bernard Desruisseaux");
    expect(attendee.address).toBe("mailto:bernard@example.com");
  });

  test("accepts LF-only line ends and gives the same model as CRLF", () => {
    const lf = A1_INVITE.replaceAll("\r\n", "\n");
    const { text: _a, ...fromLf } = parseItip(lf);
    const { text: _b, ...fromCrlf } = parseItip(A1_INVITE);
    expect(fromLf).toEqual(fromCrlf);
  });

  test("upper-cases a lower-case METHOD", () => {
    expect(parseItip(A1_INVITE.replace("METHOD:REQUEST", "METHOD:request")).method).toBe("REQUEST");
  });

  test("accepts a message without VERSION and PRODID", () => {
    const bare = A1_INVITE.replace("VERSION:2.0\r\n", "").replace("PRODID:-//Example Corp.//EN\r\n", "");
    expect(parseItip(bare).uid).toBe("34222-232@example.com");
  });

  test("reads a REPLY: the replying attendee with a normalised address, its PARTSTAT", () => {
    const message = parseItip(REPLY_ACCEPTED);
    expect(message.method).toBe("REPLY");
    expect(message.attendees).toEqual([
      { address: "mailto:Cyrus@example.org", name: "Cyrus Daboo", partstat: "ACCEPTED" },
    ]);
  });

  test("reads a CANCEL with its SEQUENCE and no end", () => {
    const message = parseItip(CANCEL);
    expect(message.method).toBe("CANCEL");
    expect(message.sequence).toBe(1);
    expect(message.organizer).toEqual({
      address: "mailto:bernard@example.com",
      name: "Bernard Desruisseaux",
    });
    expect(message.start).toBe("2004-09-02T13:00:00Z");
    expect(message.end).toBeUndefined();
  });

  test("reads a VTODO with only DUE as a DATE end and no start", () => {
    const message = parseItip(VTODO_REQUEST);
    expect(message.component).toBe("VTODO");
    expect(message.start).toBeUndefined();
    expect(message.end).toBe("2007-05-05");
    // DUE schedules a to-do with no DTSTART; DTSTAMP (2004) is not a date the message schedules.
    expect(scheduledSpan(message)).toEqual({ firstStart: "20070505T000000Z", lastEnd: "20070505T000000Z" });
  });

  test("an RRULE without COUNT or UNTIL is open-ended, with either it is not", () => {
    const open = parseItip(RECURRING.replace("RRULE:FREQ=WEEKLY;COUNT=10", "RRULE:FREQ=WEEKLY"));
    expect(open.recurrence.openEnded).toBe(true);
    const until = parseItip(
      RECURRING.replace("RRULE:FREQ=WEEKLY;COUNT=10", "RRULE:FREQ=WEEKLY;UNTIL=20050101T000000Z"),
    );
    expect(until.recurrence.openEnded).toBe(false);
  });

  test("reads a recurring event: TZID converted to UTC, RRULE/EXDATE/overrides counted, VTIMEZONE dates ignored", () => {
    const message = parseItip(RECURRING);
    expect(message.start).toBe("2004-09-02T08:00:00Z");
    expect(message.end).toBe("2004-09-02T09:00:00Z");
    expect(message.sequence).toBe(2);
    expect(message.recurrence).toEqual({
      rrule: true,
      openEnded: false,
      rdates: 0,
      exdates: 1,
      overridden: 2,
    });
    // The STANDARD DTSTART of 1601 in the VTIMEZONE, DTSTAMP and EXDATE schedule nothing.
    // Ten weekly instances from 2 September 10:00 Paris; the last, on 4 November, ends 10:00 UTC.
    expect(scheduledSpan(message)).toEqual({ firstStart: "20040902T080000Z", lastEnd: "20041104T100000Z" });
    expect(message.attachments).toEqual({ inline: 1, external: 1 });
    // mike is invited to one instance only: not in the master's list, but a valid Recipient.
    expect(message.attendees.map((a) => a.address)).toEqual(["mailto:cyrus@example.org"]);
    expect(message.attendeeAddresses).toEqual(["mailto:cyrus@example.org", "mailto:mike@example.org"]);
  });

  test("reads the draft's A.2 free/busy request", () => {
    const message = parseItip(A2_FREEBUSY_REQUEST);
    expect(message.component).toBe("VFREEBUSY");
    expect(message.attendeeAddresses).toEqual(["mailto:cyrus@example.org", "mailto:mike@example.org"]);
    expect([message.start, message.end]).toEqual(["2004-09-02T00:00:00Z", "2004-09-03T00:00:00Z"]);
  });

  test("reads DTSTART:20040902 without VALUE=DATE as a DATE", () => {
    const text = replaceLine(eventWith(), "DTSTART:20040902T130000Z", "DTSTART:20040902");
    expect(parseItip(text).start).toBe("2004-09-02");
  });

  test("accepts a bare e-mail address as ATTENDEE and writes it as mailto:", () => {
    const text = replaceLine(eventWith(), "ATTENDEE:mailto:cyrus@example.org", "ATTENDEE:Cyrus@Example.org");
    expect(parseItip(text).attendeeAddresses).toEqual(["mailto:Cyrus@example.org"]);
  });

  test("accepts a delegator's REPLY that also names the delegate (RFC 5546 §3.2.2.3)", () => {
    const text = replaceLine(
      REPLY_ACCEPTED,
      "ATTENDEE;PARTSTAT=ACCEPTED;CN=Cyrus Daboo:MAILTO:Cyrus@Example.ORG",
      'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:mike@example.org":mailto:cyrus@example.org',
      'ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:cyrus@example.org":mailto:mike@example.org',
    );
    const message = parseItip(text);
    expect(message.attendees.map((a) => a.address)).toEqual([
      "mailto:cyrus@example.org",
      "mailto:mike@example.org",
    ]);
    expect(message.attendees[1]!.delegatedFrom).toEqual(["mailto:cyrus@example.org"]);
  });

  test("reads a VPOLL, its VOTERs as attendees, its VEVENT poll items not counted as components", () => {
    const text = crlf(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//x//EN",
      "METHOD:REQUEST",
      "BEGIN:VPOLL",
      "UID:poll-1@example.com",
      "DTSTAMP:20040901T200200Z",
      "ORGANIZER:mailto:bernard@example.com",
      "SUMMARY:When shall we meet?",
      "VOTER;CN=Cyrus Daboo:mailto:cyrus@example.org",
      "BEGIN:VEVENT",
      "UID:item-1@example.com",
      "DTSTAMP:20040901T200200Z",
      "DTSTART:20040902T130000Z",
      "POLL-ITEM-ID:1",
      "END:VEVENT",
      "END:VPOLL",
      "END:VCALENDAR",
    );
    const message = parseItip(text);
    expect(message.component).toBe("VPOLL");
    expect(message.uid).toBe("poll-1@example.com");
    expect(message.attendees).toEqual([{ address: "mailto:cyrus@example.org", name: "Cyrus Daboo" }]);
    expect(scheduledSpan(message)?.firstStart).toBe("20040902T130000Z");
  });

  test("parses a 1 MB message (a long folded DESCRIPTION) in well under a second", () => {
    const description = "x".repeat(1024 * 1024);
    const folded = description.match(/.{1,74}/g)!.join("\r\n ");
    const text = replaceLine(eventWith(), "SUMMARY:Test", "SUMMARY:Test", `DESCRIPTION:${folded}`);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const started = performance.now();
    const message = parseItip(text);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(message.summary).toBe("Test");
  });
});
