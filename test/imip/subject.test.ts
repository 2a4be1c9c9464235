import { describe, expect, test } from "bun:test";
import { imipSubject } from "../../src/imip/index.ts";

describe("imipSubject()", () => {
  test("a REQUEST is an invitation, and an update when its SEQUENCE is above 0", () => {
    expect(imipSubject({ method: "REQUEST", summary: "Design meeting" })).toBe("Invitation: Design meeting");
    expect(imipSubject({ method: "request", summary: "Design meeting", sequence: 0 })).toBe(
      "Invitation: Design meeting",
    );
    expect(imipSubject({ method: "REQUEST", summary: "Design meeting", sequence: 3 })).toBe(
      "Updated invitation: Design meeting",
    );
    expect(imipSubject({ method: "ADD", summary: "Design meeting" })).toBe(
      "Updated invitation: Design meeting",
    );
  });

  test("a CANCEL is Cancelled:", () => {
    expect(imipSubject({ method: "CANCEL", summary: "Design meeting" })).toBe("Cancelled: Design meeting");
  });

  test("a REPLY is named after the PARTSTAT, with the attendee's name when known", () => {
    const reply = (partstat?: string, replyingName?: string) =>
      imipSubject({
        method: "REPLY",
        summary: "Design meeting",
        ...(partstat && { partstat }),
        ...(replyingName && { replyingName }),
      });
    expect(reply("ACCEPTED")).toBe("Accepted: Design meeting");
    expect(reply("declined", "Cyrus Daboo")).toBe("Declined: Design meeting (Cyrus Daboo)");
    expect(reply("TENTATIVE")).toBe("Tentative: Design meeting");
    expect(reply("DELEGATED")).toBe("Delegated: Design meeting");
    expect(reply("NEEDS-ACTION")).toBe("Reply: Design meeting");
    expect(reply(undefined, "Cyrus Daboo")).toBe("Reply: Design meeting (Cyrus Daboo)");
  });

  test("COUNTER, DECLINECOUNTER, REFRESH, PUBLISH and unknown methods", () => {
    expect(imipSubject({ method: "COUNTER", summary: "Design meeting", replyingName: "Cyrus" })).toBe(
      "Counter proposal: Design meeting (Cyrus)",
    );
    expect(imipSubject({ method: "DECLINECOUNTER", summary: "Design meeting" })).toBe(
      "Counter proposal declined: Design meeting",
    );
    expect(imipSubject({ method: "REFRESH", summary: "Design meeting" })).toBe(
      "Update request: Design meeting",
    );
    expect(imipSubject({ method: "PUBLISH", summary: "Design meeting" })).toBe("Event: Design meeting");
    expect(imipSubject({ method: "X-POLL", summary: "Design meeting" })).toBe("X-POLL: Design meeting");
  });

  test("a VFREEBUSY is a free/busy request or reply, whatever the summary", () => {
    expect(imipSubject({ method: "REQUEST", component: "VFREEBUSY" })).toBe("Free/busy request");
    expect(imipSubject({ method: "REPLY", component: "vfreebusy", replyingName: "Cyrus Daboo" })).toBe(
      "Free/busy reply (Cyrus Daboo)",
    );
  });

  test("a missing, blank or multi-line summary gives one tidy line", () => {
    expect(imipSubject({ method: "REQUEST" })).toBe("Invitation: (no title)");
    expect(imipSubject({ method: "REQUEST", summary: " \r\n " })).toBe("Invitation: (no title)");
    expect(imipSubject({ method: "CANCEL", summary: "Design\r\nmeeting\t now" })).toBe(
      "Cancelled: Design meeting now",
    );
  });

  test("a summary longer than 120 characters is cut with an ellipsis, on a character boundary", () => {
    const subject = imipSubject({ method: "REQUEST", summary: "設".repeat(200) });
    expect(subject).toBe(`Invitation: ${"設".repeat(119)}…`);
  });
});
