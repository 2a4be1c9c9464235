/**
 * iCalendar bodies for the iTIP tests. A1_INVITE, A2_FREEBUSY_REQUEST and A2_FREEBUSY_REPLY are the
 * draft's Appendix A.1 / A.2 bodies verbatim (draft-desruisseaux-ischedule, with the draft's folding);
 * the others are written for these tests. All use CRLF unless the name says otherwise.
 */

export const crlf = (...lines: string[]): string => `${lines.join("\r\n")}\r\n`;

export const A1_INVITE = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REQUEST",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DTSTART:20040902T130000Z",
  "DTEND:20040902T140000Z",
  "SUMMARY:Design meeting",
  "UID:34222-232@example.com",
  "ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR;CUTYPE=IND",
  " IVIDUAL;CN=Bernard Desruisseaux:mailto:bernard@",
  " example.com",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=RE",
  " Q-PARTICIPANT;CUTYPE=INDIVIDUAL;CN=Cyrus Daboo:",
  " mailto:cyrus@example.org",
  "END:VEVENT",
  "END:VCALENDAR",
);

export const A2_FREEBUSY_REQUEST = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REQUEST",
  "BEGIN:VFREEBUSY",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DTSTART:20040902T000000Z",
  "DTEND:20040903T000000Z",
  "UID:34222-232@example.com",
  "ATTENDEE;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "ATTENDEE;CN=Mike Douglass:mailto:mike@example.org",
  "END:VFREEBUSY",
  "END:VCALENDAR",
);

/** The calendar-data of the draft's A.2 response for cyrus@example.org. */
export const A2_FREEBUSY_REPLY = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REPLY",
  "BEGIN:VFREEBUSY",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DTSTART:20040902T000000Z",
  "DTEND:20040903T000000Z",
  "UID:34222-232@example.com",
  "ATTENDEE;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20040902T000000Z/",
  " 20040902T090000Z,20040902T170000Z/20040903T000000Z",
  "FREEBUSY;FBTYPE=BUSY:20040902T120000Z/20040902T130000Z",
  "END:VFREEBUSY",
  "END:VCALENDAR",
);

export const REPLY_ACCEPTED = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Org//EN",
  "METHOD:REPLY",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T210000Z",
  "ORGANIZER:mailto:bernard@example.com",
  "ATTENDEE;PARTSTAT=ACCEPTED;CN=Cyrus Daboo:MAILTO:Cyrus@Example.ORG",
  "DTSTART:20040902T130000Z",
  "DTEND:20040902T140000Z",
  "SUMMARY:Design meeting",
  "UID:34222-232@example.com",
  "END:VEVENT",
  "END:VCALENDAR",
);

export const CANCEL = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:CANCEL",
  "BEGIN:VEVENT",
  "DTSTAMP:20040901T220000Z",
  "ORGANIZER;CN=Bernard Desruisseaux:mailto:bernard@example.com",
  "ATTENDEE;CN=Cyrus Daboo:mailto:cyrus@example.org",
  "DTSTART:20040902T130000Z",
  "SUMMARY:Design meeting",
  "UID:34222-232@example.com",
  "SEQUENCE:1",
  "STATUS:CANCELLED",
  "END:VEVENT",
  "END:VCALENDAR",
);

const PARIS = [
  "BEGIN:VTIMEZONE",
  "TZID:Europe/Paris",
  "BEGIN:DAYLIGHT",
  "TZOFFSETFROM:+0100",
  "TZOFFSETTO:+0200",
  "TZNAME:CEST",
  "DTSTART:19700329T020000",
  "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
  "END:DAYLIGHT",
  "BEGIN:STANDARD",
  "TZOFFSETFROM:+0200",
  "TZOFFSETTO:+0100",
  "TZNAME:CET",
  "DTSTART:16011025T030000",
  "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
  "END:STANDARD",
  "END:VTIMEZONE",
];

/** Weekly for 10 weeks from Thu 2 Sep 2004 10:00 Paris (08:00Z), one EXDATE, two overridden instances. */
export const RECURRING = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//EN",
  "METHOD:REQUEST",
  ...PARIS,
  "BEGIN:VEVENT",
  "UID:weekly-1@example.com",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER;CN=Bernard Desruisseaux:mailto:bernard@example.com",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:cyrus@example.org",
  "DTSTART;TZID=Europe/Paris:20040902T100000",
  "DURATION:PT1H",
  "RRULE:FREQ=WEEKLY;COUNT=10",
  "EXDATE;TZID=Europe/Paris:20040916T100000",
  "SUMMARY:Weekly sync",
  "SEQUENCE:2",
  "END:VEVENT",
  "BEGIN:VEVENT",
  "UID:weekly-1@example.com",
  "DTSTAMP:20040901T200200Z",
  "RECURRENCE-ID;TZID=Europe/Paris:20040909T100000",
  "ORGANIZER;CN=Bernard Desruisseaux:mailto:bernard@example.com",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:cyrus@example.org",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:mike@example.org",
  "DTSTART;TZID=Europe/Paris:20040909T140000",
  "DURATION:PT1H",
  "SUMMARY:Weekly sync (afternoon)",
  "SEQUENCE:2",
  "END:VEVENT",
  "BEGIN:VEVENT",
  "UID:weekly-1@example.com",
  "DTSTAMP:20040901T200200Z",
  "RECURRENCE-ID;TZID=Europe/Paris:20040923T100000",
  "ORGANIZER;CN=Bernard Desruisseaux:mailto:bernard@example.com",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:cyrus@example.org",
  "DTSTART;TZID=Europe/Paris:20040923T110000",
  "DURATION:PT1H",
  "SUMMARY:Weekly sync",
  "SEQUENCE:2",
  "ATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY:SGVsbG8=",
  "ATTACH:https://example.com/agenda.pdf",
  "END:VEVENT",
  "END:VCALENDAR",
);

/** The draft's A.3 task with its END:VEVENT typo corrected. */
export const VTODO_REQUEST = crlf(
  "BEGIN:VCALENDAR",
  "VERSION:2.0",
  "PRODID:-//Example Corp.//CalDAV Client//EN",
  "METHOD:REQUEST",
  "BEGIN:VTODO",
  "DTSTAMP:20040901T200200Z",
  "ORGANIZER:mailto:bernard@example.com",
  "DUE;VALUE=DATE:20070505",
  "SUMMARY:Review Internet-Draft",
  "UID:34222-456@example.com",
  "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=RE",
  " Q-PARTICIPANT;CUTYPE=INDIVIDUAL;CN=Cyrus Daboo:",
  " mailto:cyrus@example.org",
  "END:VTODO",
  "END:VCALENDAR",
);

/** A single VEVENT REQUEST with the given RRULE (and other extra lines) after DTSTART. */
export function eventWith(...extra: string[]): string {
  return crlf(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Example Corp.//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    "UID:x-1@example.com",
    "DTSTAMP:20040901T200200Z",
    "ORGANIZER:mailto:bernard@example.com",
    "ATTENDEE:mailto:cyrus@example.org",
    "DTSTART:20040902T130000Z",
    ...extra,
    "SUMMARY:Test",
    "END:VEVENT",
    "END:VCALENDAR",
  );
}

/** Replaces one whole line (without its CRLF) of a CRLF fixture; fails loudly if it is not there. */
export function replaceLine(text: string, line: string, ...replacement: string[]): string {
  const lines = text.split("\r\n");
  const at = lines.indexOf(line);
  if (at === -1) throw new Error(`fixture has no line ${line}`);
  lines.splice(at, 1, ...replacement);
  return lines.join("\r\n");
}
