import { describe, expect, test } from "bun:test";
import { describeItip, parseItip, replyingAttendee } from "../../src/itip/index.ts";
import {
  A1_INVITE,
  A2_FREEBUSY_REPLY,
  A2_FREEBUSY_REQUEST,
  CANCEL,
  eventWith,
  RECURRING,
  REPLY_ACCEPTED,
  replaceLine,
  VTODO_REQUEST,
} from "./_fixtures.ts";

const describeText = (text: string) => describeItip(parseItip(text));

describe("describeItip()", () => {
  test("describes the draft's A.1 invitation", () => {
    expect(describeText(A1_INVITE)).toEqual({
      title: "Invitation: Design meeting",
      when: "Thu 2 Sep 2004, 13:00-14:00 UTC",
      organizer: "bernard@example.com",
      attendees: [
        { name: "Bernard Desruisseaux", address: "mailto:bernard@example.com", partstat: "ACCEPTED" },
        { name: "Cyrus Daboo", address: "mailto:cyrus@example.org", partstat: "NEEDS-ACTION" },
      ],
    });
  });

  test("names the replier and the answer of a REPLY", () => {
    expect(describeText(REPLY_ACCEPTED).title).toBe('Reply: Cyrus Daboo accepted "Design meeting"');
    const declined = REPLY_ACCEPTED.replace("PARTSTAT=ACCEPTED", "PARTSTAT=DECLINED").replace(
      "SUMMARY:Design meeting\r\n",
      "",
    );
    expect(describeText(declined).title).toBe("Reply: Cyrus Daboo declined");
  });

  test("describes a CANCEL with the organizer's name and address", () => {
    const summary = describeText(CANCEL);
    expect(summary.title).toBe("Cancelled: Design meeting");
    expect(summary.organizer).toBe("Bernard Desruisseaux <bernard@example.com>");
    expect(summary.when).toBe("Thu 2 Sep 2004, 13:00 UTC");
  });

  test("describes a task by its due date", () => {
    const summary = describeText(VTODO_REQUEST);
    expect(summary.title).toBe("Task: Review Internet-Draft");
    expect(summary.when).toBe("due Sat 5 May 2007");
  });

  test("marks an updated, repeating invitation", () => {
    const summary = describeText(RECURRING);
    expect(summary.title).toBe("Updated invitation: Weekly sync");
    expect(summary.when).toBe("Thu 2 Sep 2004, 08:00-09:00 UTC, repeating");
  });

  test("describes free/busy requests and replies", () => {
    expect(describeText(A2_FREEBUSY_REQUEST)).toMatchObject({
      title: "Free/busy request from bernard@example.com",
      when: "Thu 2 Sep 2004 00:00 - Fri 3 Sep 2004 00:00 UTC",
    });
    expect(describeText(A2_FREEBUSY_REPLY).title).toBe("Free/busy reply from Cyrus Daboo");
  });

  test("describes all-day events, with the exclusive DTEND taken off", () => {
    const oneDay = replaceLine(
      eventWith("DTEND;VALUE=DATE:20040903"),
      "DTSTART:20040902T130000Z",
      "DTSTART;VALUE=DATE:20040902",
    );
    expect(describeText(oneDay).when).toBe("Thu 2 Sep 2004 (all day)");
    const threeDays = oneDay.replace("DTEND;VALUE=DATE:20040903", "DTEND;VALUE=DATE:20040905");
    expect(describeText(threeDays).when).toBe("Thu 2 Sep 2004 - Sat 4 Sep 2004 (all day)");
  });

  test("keeps a title on one line when SUMMARY holds line breaks", () => {
    const text = replaceLine(A1_INVITE, "SUMMARY:Design meeting", "SUMMARY:Design\\nmeeting");
    expect(parseItip(text).summary).toBe("Design\nmeeting");
    expect(describeText(text).title).toBe("Invitation: Design meeting");
  });

  test("falls back to the address when there is no CN, and to (no title)", () => {
    const text = replaceLine(eventWith(), "SUMMARY:Test");
    expect(describeText(text).title).toBe("Invitation: (no title)");
    expect(describeText(text).attendees).toEqual([
      { name: "cyrus@example.org", address: "mailto:cyrus@example.org", partstat: "NEEDS-ACTION" },
    ]);
  });
});

describe("replyingAttendee()", () => {
  test("is the ATTENDEE of a REPLY, and undefined for a REQUEST", () => {
    expect(replyingAttendee(parseItip(REPLY_ACCEPTED))?.name).toBe("Cyrus Daboo");
    expect(replyingAttendee(parseItip(A1_INVITE))).toBeUndefined();
  });
});
