/**
 * iTIP bodies for the iMIP tests, CRLF throughout: the draft's Appendix A.1 invitation verbatim (with
 * its folding), and a reply, a cancellation and a non-ASCII update written for these tests. Also the
 * builder options every test starts from.
 */
import type { ImipMessageOptions } from "../../src/imip/index.ts";
import { A1_INVITE, crlf } from "../itip/_fixtures.ts";

export { crlf };

/** The draft's A.1 invitation, shared with the iTIP tests. */
export const A1_REQUEST = A1_INVITE;

export const A1_REPLY = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REPLY",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T210000Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DTSTART:20040902T130000Z",
  "DTEND:20040902T140000Z",
  "SUMMARY:Design meeting",
  "UID:34222-232@example.com",
  "ATTENDEE;PARTSTAT=ACCEPTED;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "END:VEVENT",
  "END:VCALENDAR",
);

export const A1_CANCEL = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:CANCEL",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T220000Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DTSTART:20040902T130000Z",
  "SUMMARY:Design meeting",
  "UID:34222-232@example.com",
  "SEQUENCE:1",
  "STATUS:CANCELLED",
  "ATTENDEE;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "END:VEVENT",
  "END:VCALENDAR",
);

/** Non-ASCII in SUMMARY and DESCRIPTION, an escaped newline, and a 1200-octet unfolded line. */
export const NON_ASCII_SUMMARY = "Réunion de conception — 設計会議 ✓";
export const NON_ASCII_REQUEST = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REQUEST",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER;CN=Bernard Désruisseaux:mailto:bernard@example.com",
  "DTSTART:20040902T130000Z",
  "DTEND:20040902T140000Z",
  `SUMMARY:${NON_ASCII_SUMMARY}`,
  "DESCRIPTION:Ты как - доволен поездкой?\\nOrdre du jour : ébauche",
  `X-LONG:${"0123456789".repeat(120)}`,
  "UID:34222-233@example.com",
  "SEQUENCE:2",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "END:VEVENT",
  "END:VCALENDAR",
);

export const FIXED_DATE = new Date("2004-09-01T20:02:00Z");
export const FIXED_UID = "798f00bb-5b45-4634-b083-0d0cd3a2bb39";

/** A1_REQUEST from Bernard to Cyrus, as isched sends it: everything fixed. */
export function requestOptions(overrides: Partial<ImipMessageOptions> = {}): ImipMessageOptions {
  return {
    itipText: A1_REQUEST,
    method: "REQUEST",
    component: "VEVENT",
    from: { address: "isched@example.net", name: "Bernard Desruisseaux via isched" },
    replyTo: "bernard@example.com",
    to: ["cyrus@example.org"],
    subject: "Invitation: Design meeting",
    textBody: "Invitation: Design meeting\n\nWhen: Thu 2 Sep 2004, 13:00-14:00 UTC\n",
    htmlBody: "<!DOCTYPE html>\n<p>Invitation: Design meeting</p>\n",
    messageIdDomain: "isched.example.net",
    date: FIXED_DATE,
    uid: FIXED_UID,
    ...overrides,
  };
}
