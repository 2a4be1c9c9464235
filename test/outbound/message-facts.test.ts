/** The facts a sender checks against a receiver's capabilities (message-facts.ts). */
import { describe, expect, test } from "bun:test";
import { parseItip } from "../../src/itip/index.ts";
import { messageFacts, readStoredItip } from "../../src/outbound/message-facts.ts";

const crlf = (...lines: string[]): string => `${lines.join("\r\n")}\r\n`;
const event = (...extra: string[]) =>
  parseItip(
    crlf(
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//isched tests//EN",
      "METHOD:REQUEST",
      "BEGIN:VEVENT",
      "DTSTAMP:20260115T110000Z",
      "UID:facts-1@example.org",
      "ORGANIZER:mailto:alice@example.org",
      "ATTENDEE:mailto:bob@peer.test",
      "DTSTART:20260301T090000Z",
      "DTEND:20260301T100000Z",
      ...extra,
      "END:VEVENT",
      "END:VCALENDAR",
    ),
  );

describe("messageFacts()", () => {
  test("gives component, method, media type, size, scheduled dates and attachment kinds", () => {
    const facts = messageFacts({ itip: event("ATTACH:https://files.example.org/a.pdf"), sizeBytes: 512 });
    expect(facts).toEqual({
      component: "VEVENT",
      method: "REQUEST",
      contentType: "text/calendar",
      sizeBytes: 512,
      // DTSTAMP (15 January) schedules nothing: the instance is on 1 March.
      scheduled: { firstStart: "20260301T090000Z", lastEnd: "20260301T100000Z" },
      hasInlineAttachment: false,
      hasExternalAttachment: true,
    });
  });

  test("counts the instances of a bounded recurrence, up to max-instances + 1", () => {
    const itip = event("RRULE:FREQ=DAILY;COUNT=10");
    expect(messageFacts({ itip, sizeBytes: 1, maxInstances: 50 }).instances).toBe(10);
    expect(messageFacts({ itip, sizeBytes: 1, maxInstances: 5 }).instances).toBe(6);
    expect(messageFacts({ itip, sizeBytes: 1 }).instances).toBeUndefined();
  });

  test("does not count an open-ended RRULE: 'weekly, forever' is not too many instances", () => {
    const facts = messageFacts({ itip: event("RRULE:FREQ=WEEKLY"), sizeBytes: 1, maxInstances: 5 });
    expect(facts.instances).toBeUndefined();
  });
});

describe("readStoredItip()", () => {
  test("names the message when its body is not iTIP", () => {
    const read = readStoredItip(Buffer.from("not a calendar"), "m-1");
    expect("problem" in read && read.problem).toStartWith(
      "the stored message m-1 is not a readable iTIP message",
    );
  });
});
