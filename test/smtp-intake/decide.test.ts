import { describe, expect, test } from "bun:test";
import { parseItip } from "../../src/itip/index.ts";
import { decide, schedulingCandidates } from "../../src/smtp-intake/decide.ts";
import { crlf, itipRequest } from "./_messages.ts";

const hosted = (d: string) => d === "example.com";
const schedulable = (d: string) => d === "ischedule.example";
const request = parseItip(
  itipRequest({ attendees: ["bob@ischedule.example", "carol@mail-only.example", "dave@example.com"] }),
);

describe("decide()", () => {
  test("sends attendees of iSchedule domains by iSchedule and relays everyone else, hosted users included", () => {
    const d = decide({
      envelope: {
        mailFrom: "alice@example.com",
        rcptTo: ["bob@ischedule.example", "carol@mail-only.example", "dave@example.com"],
      },
      itip: request,
      hosted,
      schedulable,
    });
    expect(d).toEqual({
      kind: "route",
      originator: "mailto:alice@example.com",
      ischedule: ["bob@ischedule.example"],
      relay: ["carol@mail-only.example", "dave@example.com"],
    });
  });

  test("relays every recipient of plain mail, even in an iSchedule domain", () => {
    const d = decide({
      envelope: { mailFrom: "alice@example.com", rcptTo: ["bob@ischedule.example"] },
      hosted,
      schedulable,
    });
    expect(d).toEqual({ kind: "route", ischedule: [], relay: ["bob@ischedule.example"] });
  });

  test("relays a recipient that is not an ATTENDEE (a Bcc) even in an iSchedule domain", () => {
    const d = decide({
      envelope: { mailFrom: "alice@example.com", rcptTo: ["bob@ischedule.example", "eve@ischedule.example"] },
      itip: request,
      hosted,
      schedulable,
    });
    expect(d.kind === "route" && [d.ischedule, d.relay]).toEqual([
      ["bob@ischedule.example"],
      ["eve@ischedule.example"],
    ]);
  });

  test("matches envelope recipients to ATTENDEEs without regard to case", () => {
    const d = decide({
      envelope: { mailFrom: "alice@example.com", rcptTo: ["Bob@ISchedule.Example"] },
      itip: request,
      hosted,
      schedulable,
    });
    expect(d.kind === "route" && d.ischedule).toEqual(["Bob@ISchedule.Example"]);
  });

  test("refuses with 550 5.7.1 when the ORGANIZER is not in a hosted domain", () => {
    const d = decide({
      envelope: { mailFrom: "alice@example.com", rcptTo: ["bob@ischedule.example"] },
      itip: parseItip(itipRequest({ organizer: "mallory@elsewhere.example" })),
      hosted,
      schedulable,
    });
    expect(d.kind === "refuse" && [d.code, d.status]).toEqual([550, "5.7.1"]);
    expect(d.kind === "refuse" && d.reason).toContain("mailto:mallory@elsewhere.example");
  });

  test("refuses an envelope sender outside the hosted domains, and the null reverse-path, even for plain mail", () => {
    for (const mailFrom of ["spammer@elsewhere.example", ""]) {
      const d = decide({ envelope: { mailFrom, rcptTo: ["carol@mail-only.example"] }, hosted, schedulable });
      expect(d.kind).toBe("refuse");
    }
  });

  test("takes the replying ATTENDEE as the Originator of a REPLY and sends it to the ORGANIZER", () => {
    const reply = parseItip(
      crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "METHOD:REPLY",
        "BEGIN:VEVENT",
        "UID:r-1@ischedule.example",
        "DTSTAMP:20260105T090000Z",
        "DTSTART:20260112T130000Z",
        "ORGANIZER:mailto:bob@ischedule.example",
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com",
        "END:VEVENT",
        "END:VCALENDAR",
      ),
    );
    const d = decide({
      envelope: { mailFrom: "alice@example.com", rcptTo: ["bob@ischedule.example"] },
      itip: reply,
      hosted,
      schedulable,
    });
    expect(d).toEqual({
      kind: "route",
      originator: "mailto:alice@example.com",
      ischedule: ["bob@ischedule.example"],
      relay: [],
    });
  });

  test("never sends a free/busy request by iSchedule: its answer could not come back by mail", () => {
    const fb = parseItip(
      crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "METHOD:REQUEST",
        "BEGIN:VFREEBUSY",
        "UID:fb-1@example.com",
        "DTSTAMP:20260105T090000Z",
        "DTSTART:20260112T000000Z",
        "DTEND:20260113T000000Z",
        "ORGANIZER:mailto:alice@example.com",
        "ATTENDEE:mailto:bob@ischedule.example",
        "END:VFREEBUSY",
        "END:VCALENDAR",
      ),
    );
    const envelope = { mailFrom: "alice@example.com", rcptTo: ["bob@ischedule.example"] };
    expect(schedulingCandidates({ envelope, itip: fb, hosted }).size).toBe(0);
    const d = decide({ envelope, itip: fb, hosted, schedulable });
    expect(d.kind === "route" && d.relay).toEqual(["bob@ischedule.example"]);
  });

  test("asks discovery only about remote domains of eligible recipients", () => {
    const c = schedulingCandidates({
      envelope: {
        mailFrom: "alice@example.com",
        rcptTo: ["bob@ischedule.example", "carol@mail-only.example", "dave@example.com", "eve@other.example"],
      },
      itip: request,
      hosted,
    });
    expect([...c]).toEqual([
      ["ischedule.example", ["bob@ischedule.example"]],
      ["mail-only.example", ["carol@mail-only.example"]],
    ]);
  });
});
