import { describe, expect, test } from "bun:test";
import { parseItip, revisionOf } from "../../src/itip/index.ts";
import { A1_INVITE, A2_FREEBUSY_REQUEST, RECURRING, REPLY_ACCEPTED, replaceLine } from "./_fixtures.ts";

const revision = (text: string) => revisionOf(parseItip(text));

describe("revisionOf() (RFC 5546 §2.1.5)", () => {
  test("reads each component's RECURRENCE-ID, SEQUENCE and DTSTAMP, in UTC", () => {
    expect(parseItip(RECURRING).revisions).toEqual([
      { sequence: 2, dtstamp: "20040901T200200Z" },
      { recurrenceId: "20040909T080000Z", sequence: 2, dtstamp: "20040901T200200Z" },
      { recurrenceId: "20040923T080000Z", sequence: 2, dtstamp: "20040901T200200Z" },
    ]);
  });

  test("the same revision sent again is the same, whatever else changed in its text", () => {
    const again = replaceLine(A1_INVITE, "SUMMARY:Design meeting", "SUMMARY:Design meeting (again)");
    expect(revision(again)).toBe(revision(A1_INVITE)!);
  });

  test("a new SEQUENCE, a new DTSTAMP, another METHOD or another UID is another revision", () => {
    const base = revision(A1_INVITE);
    const changed = [
      replaceLine(A1_INVITE, "DTSTAMP:20040901T200200Z", "DTSTAMP:20040901T200201Z"),
      replaceLine(A1_INVITE, "DTSTAMP:20040901T200200Z", "DTSTAMP:20040901T200200Z", "SEQUENCE:1"),
      replaceLine(A1_INVITE, "UID:34222-232@example.com", "UID:34222-233@example.com"),
      replaceLine(A1_INVITE, "METHOD:REQUEST", "METHOD:ADD"),
    ];
    for (const text of changed) expect(revision(text)).not.toBe(base!);
    expect(revision(REPLY_ACCEPTED)).not.toBe(base!);
  });

  test("an override's RECURRENCE-ID counts: the same UID for another instance is another revision", () => {
    const other = RECURRING.replace(
      "RECURRENCE-ID;TZID=Europe/Paris:20040923T100000",
      "RECURRENCE-ID;TZID=Europe/Paris:20040930T100000",
    );
    expect(revision(other)).not.toBe(revision(RECURRING)!);
  });

  test("none for a component without DTSTAMP, and none for free/busy queries", () => {
    // parseItip() refuses a REQUEST without DTSTAMP (RFC 5546 §3.2.2); a message model may lack one.
    expect(revisionOf({ ...parseItip(A1_INVITE), revisions: [{ sequence: 0 }] })).toBeUndefined();
    expect(revision(A2_FREEBUSY_REQUEST)).toBeUndefined();
  });
});
