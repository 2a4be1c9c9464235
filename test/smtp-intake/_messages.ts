/**
 * Mail messages for the SMTP intake tests, CRLF throughout, shaped like what the calendar servers
 * send (docs/interop.md): Cyrus's multipart/mixed { multipart/alternative { text/plain,
 * text/html, text/calendar (QP, with Cyrus's trailing space after component=VEVENT) },
 * application/ics attachment (base64) }, Nextcloud's `event.ics` attachment only, and plain mail.
 *
 * example.com is the hosted domain; ischedule.example has an iSchedule receiver, mail-only.example
 * has none.
 */

export const crlf = (...lines: string[]): string => `${lines.join("\r\n")}\r\n`;

export interface RequestOptions {
  organizer?: string;
  attendees?: readonly string[];
  method?: string;
  summary?: string;
  uid?: string;
}

export function itipRequest(o: RequestOptions = {}): string {
  const organizer = o.organizer ?? "alice@example.com";
  const attendees = o.attendees ?? ["bob@ischedule.example", "carol@mail-only.example"];
  return crlf(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//CyrusIMAP.org/Cyrus 3.6.1//EN",
    `METHOD:${o.method ?? "REQUEST"}`,
    "BEGIN:VEVENT",
    `UID:${o.uid ?? "c0ffee-1@example.com"}`,
    "DTSTAMP:20260105T090000Z",
    "DTSTART:20260112T130000Z",
    "DTEND:20260112T140000Z",
    "SEQUENCE:0",
    `SUMMARY:${o.summary ?? "Réunion café"}`,
    `ORGANIZER;CN=Alice Martin:mailto:${organizer}`,
    `ATTENDEE;CN=Alice Martin;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:${organizer}`,
    ...attendees.map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT:mailto:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
  );
}

/** RFC 2045 §6.7 quoted-printable of UTF-8 text, lines of at most 76 characters with soft breaks. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split("\r\n")) {
    let encoded = "";
    for (const byte of Buffer.from(line, "utf8")) {
      const ch = String.fromCharCode(byte);
      encoded +=
        byte === 0x3d || byte > 0x7e || byte < 0x20
          ? `=${byte.toString(16).toUpperCase().padStart(2, "0")}`
          : ch;
    }
    while (encoded.length > 75) {
      let cut = 75;
      // Never split an "=XX" escape.
      if (encoded[cut - 1] === "=") cut -= 1;
      else if (encoded[cut - 2] === "=") cut -= 2;
      out.push(`${encoded.slice(0, cut)}=`);
      encoded = encoded.slice(cut);
    }
    out.push(encoded);
  }
  return out.join("\r\n");
}

export function base64Lines(text: string): string {
  return (
    Buffer.from(text, "utf8")
      .toString("base64")
      .match(/.{1,76}/g) ?? []
  ).join("\r\n");
}

export interface MailOptions {
  from?: string;
  to?: readonly string[];
  itip?: string;
  /** The text/calendar Content-Type of the alternative part. */
  calendarType?: string;
}

/** As Cyrus's imip_send_sendmail() builds it. */
export function cyrusMail(o: MailOptions = {}): string {
  const itip = o.itip ?? itipRequest();
  return crlf(
    `From: "Alice Martin" <${o.from ?? "alice@example.com"}>`,
    `To: ${(o.to ?? ["bob@ischedule.example", "carol@mail-only.example"]).join(", ")}`,
    "Subject: =?UTF-8?B?SW52aXRhdGlvbjogUsOpdW5pb24gY2Fmw6k=?=",
    "Date: Mon, 05 Jan 2026 09:00:00 +0000",
    "Message-ID: <cmu-httpd-4242-1767603600-1@mail.example.com>",
    "Content-Type: multipart/mixed;",
    '\tboundary="4242-1767603600-mixed=:1"',
    "iMIP-Content-ID: <c0ffee-1@example.com>",
    "Auto-Submitted: auto-generated",
    "MIME-Version: 1.0",
    "",
    "This is a MIME-encapsulated message.",
    "",
    "--4242-1767603600-mixed=:1",
    'Content-Type: multipart/alternative; boundary="4242-1767603600-alt=:2"',
    "",
    "--4242-1767603600-alt=:2",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    quotedPrintable("You have been invited to Réunion café.\r\nWhen: Monday 12 January 2026, 13:00 UTC"),
    "",
    "--4242-1767603600-alt=:2",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    quotedPrintable("<html><body><p>You have been invited to <b>Réunion café</b>.</p></body></html>"),
    "",
    "--4242-1767603600-alt=:2",
    o.calendarType ?? "Content-Type: text/calendar; charset=utf-8; method=REQUEST; component=VEVENT ",
    "Content-Transfer-Encoding: quoted-printable",
    "Content-ID: <c0ffee-1@example.com>",
    "",
    quotedPrintable(itip),
    "--4242-1767603600-alt=:2--",
    "",
    "--4242-1767603600-mixed=:1",
    'Content-Type: application/ics; charset=utf-8; name="Invitation.ics"',
    'Content-Disposition: attachment; filename="Invitation.ics"',
    "Content-Transfer-Encoding: base64",
    "",
    base64Lines(itip),
    "",
    "--4242-1767603600-mixed=:1--",
  );
}

/** As Nextcloud's IMipPlugin sends it: an HTML mail with `event.ics` attached, nothing inline. */
export function nextcloudMail(o: MailOptions = {}): string {
  const itip = o.itip ?? itipRequest();
  return crlf(
    'From: "Alice Martin via Nextcloud" <invitations-noreply@example.com>',
    "Reply-To: alice@example.com",
    `To: ${(o.to ?? ["bob@ischedule.example"]).join(", ")}`,
    "Subject: Invitation: Reunion cafe",
    "Message-ID: <9b1c2f0e@cloud.example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="_=_swift_1767603600_nc_=_"',
    "",
    "--_=_swift_1767603600_nc_=_",
    'Content-Type: multipart/alternative; boundary="_=_swift_alt_=_"',
    "",
    "--_=_swift_alt_=_",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Alice Martin invited you to Reunion cafe.",
    "--_=_swift_alt_=_",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>Alice Martin invited you to Reunion cafe.</p>",
    "--_=_swift_alt_=_--",
    "",
    "--_=_swift_1767603600_nc_=_",
    "Content-Type: text/calendar; method=REQUEST; name=event.ics",
    "Content-Transfer-Encoding: base64",
    "Content-Disposition: attachment; filename=event.ics",
    "",
    base64Lines(itip),
    "",
    "--_=_swift_1767603600_nc_=_--",
  );
}

export function plainMail(o: { from?: string; to?: string } = {}): string {
  return crlf(
    `From: ${o.from ?? "alice@example.com"}`,
    `To: ${o.to ?? "carol@mail-only.example"}`,
    "Subject: Lunch?",
    "Message-ID: <lunch-1@example.com>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Shall we have lunch on Monday?",
    ".leading dot, to check dot-stuffing both ways",
    "Trailing blanks stay as they are   ",
  );
}

/** A single-part iMIP message (sabre/dav style) whose text/calendar body is not iCalendar. */
export function brokenCalendarMail(): string {
  return crlf(
    "From: alice@example.com",
    "To: bob@ischedule.example",
    "Subject: Invitation: broken",
    "MIME-Version: 1.0",
    "Content-Type: text/calendar; charset=utf-8; method=REQUEST",
    "",
    "BEGIN:VCALENDAR",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    "this line is not a content line",
    "END:VCALENDAR",
  );
}

export const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "utf8"));

/** Mail with a calendar attached as `application/ics` and no "method" parameter anywhere. */
export function attachedIcsMail(itip: string): string {
  return crlf(
    "From: alice@example.com",
    "To: bob@ischedule.example",
    "Subject: the meeting",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b"',
    "",
    "--b",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "See the attached invitation.",
    "--b",
    'Content-Type: application/ics; name="invite.ics"',
    'Content-Disposition: attachment; filename="invite.ics"',
    "Content-Transfer-Encoding: base64",
    "",
    base64Lines(itip),
    "--b--",
  );
}
