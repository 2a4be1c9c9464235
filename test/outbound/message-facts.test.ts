/** The facts a sender checks against a receiver's capabilities (message-facts.ts). */
import { describe, expect, test } from "bun:test";
import { parseItip } from "../../src/itip/index.ts";
import {
  messageFacts,
  readSendFacts,
  readStoredItip,
  sendFactsOf,
  storableSendFacts,
  storedMessageFacts,
} from "../../src/outbound/message-facts.ts";

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

describe("the send facts kept at intake", () => {
  const stored = (itip: ReturnType<typeof event>) => readSendFacts(storableSendFacts(sendFactsOf(itip)))!;

  test("give the same facts as the parsed message wherever no instances are counted", () => {
    for (const extra of [[], ["ATTACH:https://files.example.org/a.pdf"], ["RRULE:FREQ=WEEKLY"]]) {
      const itip = event(...extra);
      for (const maxInstances of [undefined, 5]) {
        const fromStored = storedMessageFacts({
          component: "VEVENT",
          method: "REQUEST",
          sizeBytes: 512,
          sendFacts: stored(itip),
          maxInstances,
        });
        expect(fromStored).toEqual(messageFacts({ itip, sizeBytes: 512, maxInstances }));
      }
    }
  });

  test("leave a bounded recurrence to the parsed message when the receiver has max-instances", () => {
    const sendFacts = stored(event("RRULE:FREQ=DAILY;COUNT=10"));
    const m = { component: "VEVENT", method: "REQUEST", sizeBytes: 1, sendFacts };
    expect(storedMessageFacts({ ...m, maxInstances: 5 })).toBeUndefined();
    expect(storedMessageFacts(m)?.instances).toBeUndefined();
  });

  test("are not used when missing or not of their shape (the body is parsed instead)", () => {
    for (const bad of [
      null,
      "",
      "not json",
      "[]",
      '{"inlineAttachment":true}',
      '{"inlineAttachment":false,"externalAttachment":false,"bounded":false,"scheduled":{}}',
    ])
      expect(readSendFacts(bad)).toBeUndefined();
  });
});
