/**
 * Builds the email isched sends when a scheduling message goes by iMIP (RFC 6047): a pure function
 * from the iTIP text and a few header values to the exact bytes handed to SMTP.
 *
 * The structure is the one Google Calendar and Cyrus send, which Outlook, Gmail, Apple Mail and
 * Thunderbird all show as an invitation with buttons:
 *
 *   multipart/mixed
 *     multipart/alternative
 *       text/plain; charset=UTF-8
 *       text/html; charset=UTF-8
 *       text/calendar; method=REQUEST; charset=UTF-8; component=VEVENT   (RFC 6047 §2.4)
 *     application/ics; name="invite.ics"   (attachment: the same iCalendar, for clients that only
 *                                          offer "import", and for people who forward it)
 *
 * The text/calendar part is an alternative, not only an attachment: Nextcloud sent only the attachment
 * and Outlook and iCloud showed no invitation (docs/interop.md). From is isched's own address with the
 * organiser's or attendee's name, Reply-To the person: a From naming the organiser's domain fails DMARC.
 * Every message has Date and Message-ID (their absence sends mail to spam) and Auto-Submitted.
 */

import {
  addressField,
  base64Lines,
  CRLF,
  isDotAtom,
  isHostName,
  isPlainAddress,
  mailbox,
  quotedPrintable,
  rfc5322Date,
  unstructuredField,
  utf8Bytes,
} from "./_mime.ts";

export interface ImipMessageOptions {
  /** The iCalendar object (RFC 5545 §3.1: CRLF line endings). It is sent byte for byte. */
  itipText: string;
  /** The iTIP method, equal (ignoring case) to the METHOD property of `itipText`: "REQUEST". */
  method: string;
  /** The component type of the scheduling message: "VEVENT", "VTODO", "VFREEBUSY". */
  component: string;
  from: {
    /** isched's own address (--imip-from), so SPF, DKIM and DMARC line up with the sending domain. */
    address: string;
    /** The person the message speaks for: "Bernard Desruisseaux via isched". */
    name?: string;
  };
  /** The organiser (or, for a REPLY, the attendee), without "mailto:": where a human answer goes. */
  replyTo?: string;
  /** Header To and envelope recipients. */
  to: readonly string[];
  subject: string;
  textBody: string;
  htmlBody: string;
  /** Right-hand side of the Message-ID: isched's host name. */
  messageIdDomain: string;
  /** Default: now. */
  date?: Date;
  /**
   * Left-hand side of the Message-ID (RFC 5322 §3.6.4 dot-atom-text). Default: a random UUID. A caller
   * that passes the delivery's own id gets the same Message-ID on every retry, so a message that did
   * arrive before a lost "250" can be recognised as a duplicate.
   */
  uid?: string;
}

export interface ImipEnvelope {
  /** MAIL FROM: isched's address, so bounces come back to isched rather than to the organiser. */
  from: string;
  /** RCPT TO. */
  to: string[];
}

export interface ImipMessage {
  /** The whole RFC 5322 message: CRLF line endings, 7-bit, lines of at most 78 octets. */
  raw: Uint8Array;
  /** The Message-ID header value, angle brackets included: "<uuid@host>". */
  messageId: string;
  envelope: ImipEnvelope;
}

/** The attachment's name; Google Calendar uses it too, whatever the method. */
const ATTACHMENT_NAME = "invite.ics";
const TOKEN = /^[A-Za-z0-9-]+$/;

export function buildImipMessage(o: ImipMessageOptions): ImipMessage {
  const method = o.method.toUpperCase();
  const component = o.component.toUpperCase();
  check(TOKEN.test(method), `method ${JSON.stringify(o.method)} is not an iCalendar name`);
  check(TOKEN.test(component), `component ${JSON.stringify(o.component)} is not an iCalendar name`);
  const calendarMethod = methodProperty(o.itipText);
  check(calendarMethod !== undefined, "the iCalendar text has no METHOD property (RFC 5546 §1.4)");
  // RFC 6047 §2.4: the "method" parameter MUST equal the METHOD property.
  check(
    calendarMethod === method,
    `method "${method}" differs from the iCalendar METHOD "${calendarMethod}" (RFC 6047 §2.4)`,
  );
  checkAddress("From", o.from.address);
  if (o.replyTo !== undefined) checkAddress("Reply-To", o.replyTo);
  check(o.to.length > 0, "there is no recipient");
  for (const to of o.to) checkAddress("To", to);
  check(
    isHostName(o.messageIdDomain),
    `${JSON.stringify(o.messageIdDomain)} is not a host name for the Message-ID`,
  );
  const uid = o.uid ?? crypto.randomUUID();
  check(isDotAtom(uid), `${JSON.stringify(uid)} cannot be the left part of a Message-ID (RFC 5322 §3.6.4)`);

  const messageId = `<${uid}@${o.messageIdDomain}>`;
  // RFC 2046 §5.1.1: a boundary must not occur in the parts. "=_" cannot occur in quoted-printable
  // (every "=" starts a hex pair) nor in base64, which are the only encodings used here.
  const tag = uid.replace(/[^A-Za-z0-9-]/g, "").slice(0, 40) || "x";
  const mixed = `=_isched-mixed-${tag}`;
  const alternative = `=_isched-alt-${tag}`;

  const headers = [
    addressField("From", [mailbox(o.from.address, o.from.name)]),
    ...(o.replyTo === undefined ? [] : [addressField("Reply-To", [mailbox(o.replyTo)])]),
    addressField(
      "To",
      o.to.map((a) => mailbox(a)),
    ),
    unstructuredField("Subject", o.subject),
    `Date: ${rfc5322Date(o.date ?? new Date())}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
    // RFC 3834 §2, §5: vacation responders and other auto-responders do not answer it.
    "Auto-Submitted: auto-generated",
    `Content-Type: multipart/mixed;${CRLF} boundary="${mixed}"`,
  ];

  // RFC 2046 §5.1.4: the last alternative is the preferred one, so calendar clients pick the
  // text/calendar part and the others show text or HTML.
  const alternatives = multipart(alternative, [
    textPart("text/plain; charset=UTF-8", normaliseNewlines(o.textBody)),
    textPart("text/html; charset=UTF-8", normaliseNewlines(o.htmlBody)),
    textPart(`text/calendar; method=${method}; charset=UTF-8; component=${component}`, o.itipText),
  ]);
  const body = multipart(mixed, [
    [`Content-Type: multipart/alternative;${CRLF} boundary="${alternative}"`, "", alternatives].join(CRLF),
    [
      `Content-Type: application/ics; name="${ATTACHMENT_NAME}"`,
      // RFC 6047 §2.6: a filename MAY be given; receivers go by the Content-Type.
      `Content-Disposition: attachment; filename="${ATTACHMENT_NAME}"`,
      "Content-Transfer-Encoding: base64",
      "",
      base64Lines(utf8Bytes(o.itipText)),
    ].join(CRLF),
  ]);

  return {
    raw: utf8Bytes([...headers, "", body, ""].join(CRLF)),
    messageId,
    envelope: { from: o.from.address, to: [...o.to] },
  };
}

/**
 * RFC 6047 §2.5: quoted-printable keeps the iCalendar readable and 7-bit whatever it holds; CRLF line
 * endings survive as hard line breaks (RFC 2045 §6.7 rule 4), so the part decodes to the same octets.
 */
function textPart(contentType: string, text: string): string {
  return [
    `Content-Type: ${contentType}`,
    "Content-Transfer-Encoding: quoted-printable",
    "",
    quotedPrintable(text),
  ].join(CRLF);
}

/** RFC 2046 §5.1.1: the CRLF before each delimiter belongs to the delimiter, not to the part. */
function multipart(boundary: string, parts: readonly string[]): string {
  return `${parts.map((p) => `--${boundary}${CRLF}${p}${CRLF}`).join("")}--${boundary}--`;
}

/** The human-readable parts are text: RFC 2046 §4.1.1 line breaks are CRLF. */
function normaliseNewlines(text: string): string {
  return text.replace(/\r?\n|\r/g, CRLF);
}

/** The VCALENDAR's METHOD value, upper-case, read from the unfolded text (RFC 5545 §3.1, §3.7.2). */
function methodProperty(itipText: string): string | undefined {
  const unfolded = itipText.replace(/\r?\n[ \t]/g, "");
  const m = /^METHOD:([^\r\n]*)$/im.exec(unfolded);
  return m?.[1]?.trim().toUpperCase();
}

function checkAddress(field: string, address: string): void {
  check(
    isPlainAddress(address),
    `${field} address ${JSON.stringify(address)} is not a plain addr-spec (local@domain, ASCII, no "mailto:")`,
  );
}

function check(ok: boolean, why: string): asserts ok {
  if (!ok) throw new RangeError(`Cannot build the iMIP message: ${why}`);
}
