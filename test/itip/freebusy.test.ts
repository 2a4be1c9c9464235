import { describe, expect, test } from "bun:test";
import {
  freeBusyReplyFor,
  ItipError,
  parseFreeBusyReply,
  parseItip,
  restrictFreeBusyAttendees,
} from "../../src/itip/index.ts";
import { A1_INVITE, A2_FREEBUSY_REPLY, A2_FREEBUSY_REQUEST, replaceLine } from "./_fixtures.ts";

const unfold = (text: string) => text.replace(/\r\n[ \t]/g, "");
const physicalLines = (text: string) => text.split("\r\n").slice(0, -1);
const A2_DTSTAMP_MS = Date.UTC(2004, 8, 1, 20, 2, 0);

/** CRLF everywhere, a final CRLF, and no physical line over 75 octets (RFC 5545 §3.1). */
function expectWellFormed(text: string): void {
  expect(text.endsWith("\r\n")).toBe(true);
  expect(text.replaceAll("\r\n", "")).not.toMatch(/[\r\n]/);
  for (const line of physicalLines(text)) expect(Buffer.byteLength(line, "utf8")).toBeLessThanOrEqual(75);
}

describe("restrictFreeBusyAttendees()", () => {
  test("keeps only the given ATTENDEEs of the draft's A.2 request and everything else as it was", () => {
    const narrowed = restrictFreeBusyAttendees(A2_FREEBUSY_REQUEST, ["mailto:cyrus@example.org"]);
    expect(narrowed).toBe(
      A2_FREEBUSY_REQUEST.replace("ATTENDEE;CN=Mike Douglass:mailto:mike@example.org\r\n", ""),
    );
    expect(parseItip(narrowed).attendeeAddresses).toEqual(["mailto:cyrus@example.org"]);
  });

  test("matches the addresses to keep case-insensitively", () => {
    const narrowed = restrictFreeBusyAttendees(A2_FREEBUSY_REQUEST, ["MAILTO:Mike@Example.ORG"]);
    expect(parseItip(narrowed).attendeeAddresses).toEqual(["mailto:mike@example.org"]);
  });

  test("turns LF-only input into CRLF output", () => {
    const narrowed = restrictFreeBusyAttendees(A2_FREEBUSY_REQUEST.replaceAll("\r\n", "\n"), [
      "mailto:mike@example.org",
    ]);
    expectWellFormed(narrowed);
    expect(narrowed).toContain("ATTENDEE;CN=Mike Douglass:mailto:mike@example.org\r\n");
  });

  test("folds long lines at 75 octets without splitting UTF-8 characters", () => {
    const name = "Zoë Ωmega-Łukasiewicz 日本語 ".repeat(6).trim();
    const text = replaceLine(
      A2_FREEBUSY_REQUEST,
      "ATTENDEE;CN=Mike Douglass:mailto:mike@example.org",
      `ATTENDEE;CN="${name}":mailto:mike@example.org`,
    );
    const narrowed = restrictFreeBusyAttendees(text, ["mailto:mike@example.org", "mailto:cyrus@example.org"]);
    expectWellFormed(narrowed);
    expect(physicalLines(narrowed).some((line) => line.startsWith(" "))).toBe(true);
    expect(Buffer.from(narrowed, "utf8").toString("utf8")).toBe(narrowed);
    expect(parseItip(narrowed).attendees[1]!.name).toBe(name);
  });

  test("throws TypeError for an address that is not an ATTENDEE, an empty list or a non-free/busy body", () => {
    expect(() => restrictFreeBusyAttendees(A2_FREEBUSY_REQUEST, ["mailto:eve@example.org"])).toThrow(
      "mailto:eve@example.org is not an ATTENDEE of the free/busy request",
    );
    expect(() => restrictFreeBusyAttendees(A2_FREEBUSY_REQUEST, [])).toThrow(TypeError);
    expect(() => restrictFreeBusyAttendees(A1_INVITE, ["mailto:cyrus@example.org"])).toThrow(
      "expected a METHOD:REQUEST VFREEBUSY, not METHOD:REQUEST VEVENT",
    );
  });

  test("throws ItipError for a body that is not iCalendar", () => {
    expect(() => restrictFreeBusyAttendees("garbage", ["mailto:cyrus@example.org"])).toThrow(ItipError);
  });
});

describe("freeBusyReplyFor()", () => {
  const request = parseItip(A2_FREEBUSY_REQUEST);

  test("reproduces the calendar-data of the draft's A.2 response", () => {
    const reply = freeBusyReplyFor(request, {
      attendee: "mailto:cyrus@example.org",
      busy: [
        { start: "2004-09-02T00:00:00Z", end: "2004-09-02T09:00:00Z", type: "BUSY-UNAVAILABLE" },
        { start: "20040902T120000Z", end: "20040902T130000Z" },
        { start: "2004-09-02T17:00:00Z", end: "2004-09-03T00:00:00Z", type: "BUSY-UNAVAILABLE" },
      ],
      prodId: "-//Example Corp.//EN",
      nowMs: A2_DTSTAMP_MS,
    });
    expect(unfold(reply)).toBe(unfold(A2_FREEBUSY_REPLY));
    expectWellFormed(reply);
  });

  test("sorts periods and clips them to the requested range, dropping those outside it", () => {
    const reply = freeBusyReplyFor(request, {
      attendee: "MAILTO:Mike@example.org",
      busy: [
        { start: "2004-09-02T15:00:00Z", end: "2004-09-02T16:00:00Z", type: "BUSY-TENTATIVE" },
        { start: "2004-09-01T22:00:00Z", end: "2004-09-02T01:00:00Z" },
        { start: "2004-09-05T10:00:00Z", end: "2004-09-05T11:00:00Z" },
      ],
      prodId: "-//isched//EN",
      nowMs: Date.UTC(2004, 8, 2, 12, 0, 0, 999),
    });
    const lines = unfold(reply).split("\r\n");
    expect(lines).toContain("DTSTAMP:20040902T120000Z");
    expect(lines).toContain("ATTENDEE;CN=Mike Douglass:mailto:mike@example.org");
    expect(lines.filter((l) => l.startsWith("FREEBUSY"))).toEqual([
      "FREEBUSY;FBTYPE=BUSY:20040902T000000Z/20040902T010000Z",
      "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20040902T150000Z/20040902T160000Z",
    ]);
  });

  test("builds a reply with no FREEBUSY when the attendee is free", () => {
    const reply = freeBusyReplyFor(request, {
      attendee: "mailto:mike@example.org",
      busy: [],
      prodId: "-//isched//EN",
      nowMs: 0,
    });
    expect(reply).not.toMatch(/^FREEBUSY/m);
    expect(parseFreeBusyReply(reply).periods).toEqual([]);
  });

  test("throws TypeError for an unknown attendee, a bad period or a request that is not free/busy", () => {
    const options = { attendee: "mailto:cyrus@example.org", busy: [], prodId: "-//isched//EN", nowMs: 0 };
    expect(() => freeBusyReplyFor(request, { ...options, attendee: "mailto:eve@example.org" })).toThrow(
      TypeError,
    );
    expect(() =>
      freeBusyReplyFor(request, {
        ...options,
        busy: [{ start: "2004-09-02T10:00:00Z", end: "2004-09-02T09:00:00Z" }],
      }),
    ).toThrow("busy period 2004-09-02T10:00:00Z/2004-09-02T09:00:00Z is not a UTC start before a UTC end");
    expect(() =>
      freeBusyReplyFor(request, { ...options, busy: [{ start: "tomorrow", end: "later" }] }),
    ).toThrow(TypeError);
    expect(() => freeBusyReplyFor(request, { ...options, prodId: "a\r\nb" })).toThrow(TypeError);
    expect(() => freeBusyReplyFor(parseItip(A1_INVITE), options)).toThrow(TypeError);
  });
});

describe("parseFreeBusyReply()", () => {
  test("reads the draft's A.2 reply: attendee, range and sorted periods", () => {
    expect(parseFreeBusyReply(A2_FREEBUSY_REPLY)).toEqual({
      uid: "34222-232@example.com",
      organizer: { address: "mailto:bernard@example.com" },
      attendee: { address: "mailto:cyrus@example.org", name: "Cyrus Daboo" },
      start: "2004-09-02T00:00:00Z",
      end: "2004-09-03T00:00:00Z",
      periods: [
        { start: "2004-09-02T00:00:00Z", end: "2004-09-02T09:00:00Z", type: "BUSY-UNAVAILABLE" },
        { start: "2004-09-02T12:00:00Z", end: "2004-09-02T13:00:00Z", type: "BUSY" },
        { start: "2004-09-02T17:00:00Z", end: "2004-09-03T00:00:00Z", type: "BUSY-UNAVAILABLE" },
      ],
    });
  });

  test("reads start/duration periods, leaves FBTYPE=FREE out and treats unknown types as BUSY", () => {
    const text = replaceLine(
      A2_FREEBUSY_REPLY,
      "FREEBUSY;FBTYPE=BUSY:20040902T120000Z/20040902T130000Z",
      "FREEBUSY;FBTYPE=FREE:20040902T130000Z/20040902T170000Z",
      "FREEBUSY;FBTYPE=X-OUT-OF-OFFICE:20040902T100000Z/PT90M",
    );
    expect(parseFreeBusyReply(text).periods).toEqual([
      { start: "2004-09-02T00:00:00Z", end: "2004-09-02T09:00:00Z", type: "BUSY-UNAVAILABLE" },
      { start: "2004-09-02T10:00:00Z", end: "2004-09-02T11:30:00Z", type: "BUSY" },
      { start: "2004-09-02T17:00:00Z", end: "2004-09-03T00:00:00Z", type: "BUSY-UNAVAILABLE" },
    ]);
  });

  test("reads back what freeBusyReplyFor() wrote", () => {
    const busy = [
      { start: "2004-09-02T08:00:00Z", end: "2004-09-02T08:30:00Z", type: "BUSY-TENTATIVE" as const },
    ];
    const reply = freeBusyReplyFor(parseItip(A2_FREEBUSY_REQUEST), {
      attendee: "mailto:mike@example.org",
      busy,
      prodId: "-//isched//EN",
      nowMs: A2_DTSTAMP_MS,
    });
    const parsed = parseFreeBusyReply(reply);
    expect(parsed.attendee).toEqual({ address: "mailto:mike@example.org", name: "Mike Douglass" });
    expect(parsed.periods).toEqual(busy);
  });

  test("refuses a body that is not a free/busy REPLY", () => {
    expect(() => parseFreeBusyReply(A2_FREEBUSY_REQUEST)).toThrow(
      "A free/busy reply is a METHOD:REPLY VFREEBUSY, not METHOD:REQUEST VFREEBUSY",
    );
    let kind: string | undefined;
    try {
      parseFreeBusyReply(A1_INVITE);
    } catch (error) {
      kind = error instanceof ItipError ? error.kind : undefined;
    }
    expect(kind).toBe("invalid-scheduling-message");
  });
});
