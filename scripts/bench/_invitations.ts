/**
 * The invitation the inbound benchmarks send (inbound.ts, soak.ts): a 1.2 KB iTIP REQUEST from
 * mailto:bernard@peer.test to one attendee, each with its own UID, and the raw HTTP/1.1 POST that
 * carries it (pre-built bytes: the load generators write them on raw sockets).
 */

export const ORIGINATOR = "mailto:bernard@peer.test";

export function invitationBody(uid: string, attendee: string): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//peer.test//bench//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SEQUENCE:0",
    "SUMMARY:Quarterly planning",
    "LOCATION:Room 4\\, second floor",
    "DESCRIPTION:Agenda: budget review\\, hiring plan\\, the office move. Please bring the",
    "  figures for your department and the list of open positions.",
    `ORGANIZER;CN=Bernard Desruisseaux:${ORIGINATOR}`,
    `ATTENDEE;CN=Bernard Desruisseaux;PARTSTAT=ACCEPTED;ROLE=CHAIR:${ORIGINATOR}`,
    `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:${attendee}`,
    "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Carol:mailto:carol@peer.test",
    "BEGIN:VALARM",
    "ACTION:DISPLAY",
    "DESCRIPTION:Quarterly planning starts in 15 minutes",
    "TRIGGER:-PT15M",
    "END:VALARM",
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

export function httpRequest(path: string, fields: [string, string][], body: Buffer): Buffer {
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}
