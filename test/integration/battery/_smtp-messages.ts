/**
 * SMTP intake cases about messages: sizes and shapes, bad MIME, iMIP parts broken in every way the
 * intake reads them (transfer encodings, charsets, method= and METHOD), organizers that are not
 * ours, and envelope spellings (the iMIP part's own header fields are in _smtp-imip-parts.ts). Each
 * message's final reply says what happened: queued for iSchedule, relayed (with why it was not
 * upgraded, for iMIP isched cannot use), or refused for policy (5.7.1 for a relay attempt, 5.3.4 for
 * the size). Run as _smtp-dialog.ts says.
 */
import { base64Lines, crlf, quotedPrintable } from "../../smtp-intake/_messages.ts";
import type { Case } from "./_cases.ts";
import {
  AUTH,
  EHLO,
  envelope,
  invite,
  mail,
  multipart,
  NOT_OURS,
  NOT_UPGRADED,
  nested,
  OK,
  QUEUED,
  R,
  RELAYED,
  type ReplyPattern,
  rcpt,
  type SmtpTarget,
  singlePart,
  smtpCaseList,
  specList,
} from "./_smtp-dialog.ts";
import { SMTP_MAX_SIZE } from "./_world.ts";

export function smtpMessageCases(target: () => SmtpTarget): Case[] {
  const { specs, add } = specList();
  // Messages: sizes and shapes.
  const CAROL = "carol@mail-only.test";
  add(
    `a message over --smtp-max-size (${SMTP_MAX_SIZE} bytes)`,
    mail(
      [CAROL],
      `Subject: big\r\n\r\n${"x".repeat(SMTP_MAX_SIZE + 100).replace(/(.{998})/g, "$1\r\n")}`,
      R(552, "5.3.4", /exceeds the limit/),
    ),
  );
  add("an empty message", mail([CAROL], "", RELAYED));
  add("a message of headers only", mail([CAROL], "Subject: nothing\r\n", RELAYED));
  add("a message without headers", mail([CAROL], "just a body\r\n", RELAYED));
  add("a NUL byte in the body", mail([CAROL], "Subject: nul\r\n\r\na\0b\r\n", RELAYED));
  add("bare LF line ends", mail([CAROL], "Subject: lf\nFrom: alice@org.test\n\nbody\n", RELAYED));
  add(
    "a header line of 100 KB",
    mail([CAROL], `Subject: ${"s".repeat(100 * 1024)}\r\n\r\nbody\r\n`, RELAYED),
  );
  add(
    "5,000 header lines",
    mail(
      [CAROL],
      `${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\nbody\r\n`,
      RELAYED,
    ),
  );
  add(
    "a line of 10,000 characters in the body",
    mail([CAROL], `Subject: long\r\n\r\n${"l".repeat(10_000)}\r\n`, RELAYED),
  );
  add("8-bit bytes in the Subject", mail([CAROL], "Subject: caf\xe9 \xff\r\n\r\nbody\r\n", RELAYED));
  add("a body of only dots", mail([CAROL], "Subject: dots\r\n\r\n.\r\n..\r\n...\r\n", RELAYED));

  // iMIP: well-formed (the controls) and broken in every way the intake reads.
  add(
    "a valid iMIP REQUEST to fake.test (queued) and mail-only.test (relayed)",
    mail(
      ["bob@fake.test", CAROL],
      singlePart({ body: invite() }),
      R(250, "2.0.0", /queued for iSchedule.*relayed/),
    ),
  );
  add(
    "a valid iMIP REQUEST to fake.test only",
    mail(["bob@fake.test"], singlePart({ body: invite({ attendees: ["bob@fake.test"] }) }), QUEUED),
  );
  add(
    "iMIP whose base64 is not base64",
    mail(
      ["bob@fake.test"],
      singlePart({ encoding: "base64", body: "!!!! not base64 ****" }),
      NOT_UPGRADED(/base64/),
    ),
  );
  add(
    "iMIP with an unknown transfer encoding",
    mail(
      ["bob@fake.test"],
      singlePart({ encoding: "x-uuencode", body: invite() }),
      NOT_UPGRADED(/Content-Transfer-Encoding "x-uuencode" is unknown/),
    ),
  );
  add(
    "iMIP with an unknown charset",
    mail(
      ["bob@fake.test"],
      singlePart({ type: "text/calendar; charset=x-klingon; method=REQUEST", body: invite() }),
      NOT_UPGRADED(/charset "x-klingon" is unknown/),
    ),
  );
  add(
    "iMIP whose bytes are not UTF-8",
    mail(
      ["bob@fake.test"],
      singlePart({ body: invite().replace("Reunion", "R\xe9union") }),
      NOT_UPGRADED(/not valid utf-8/),
    ),
  );
  add(
    "iMIP whose method= is not its METHOD",
    mail(
      ["bob@fake.test"],
      singlePart({ type: "text/calendar; charset=utf-8; method=CANCEL", body: invite() }),
      NOT_UPGRADED(/method parameter CANCEL is not its METHOD REQUEST/),
    ),
  );
  add(
    "declared iMIP that is not iCalendar",
    mail(
      ["bob@fake.test"],
      singlePart({ body: "this is not a calendar\r\n" }),
      NOT_UPGRADED(/not a valid iTIP message/),
    ),
  );
  add(
    "declared iMIP cut in the middle",
    mail(
      ["bob@fake.test"],
      singlePart({ body: invite().slice(0, 200) }),
      NOT_UPGRADED(/not a valid iTIP message/),
    ),
  );
  add(
    "declared iMIP without METHOD",
    mail(
      ["bob@fake.test"],
      singlePart({ body: invite().replace("METHOD:REQUEST\r\n", "") }),
      NOT_UPGRADED(/not a valid iTIP message/),
    ),
  );
  add(
    "declared iMIP without ORGANIZER",
    mail(
      ["bob@fake.test"],
      singlePart({ body: invite().replace(/ORGANIZER[^\r\n]*\r\n/, "") }),
      NOT_UPGRADED(/ORGANIZER/),
    ),
  );
  add(
    "declared iMIP with an RRULE of a million instances",
    mail(
      ["bob@fake.test"],
      singlePart({ body: invite({ extra: "RRULE:FREQ=SECONDLY;COUNT=1000000" }) }),
      // What a receiver takes is its capabilities' say (max-instances, attachments), not the intake's.
      QUEUED,
    ),
  );
  add(
    "declared iMIP with an ATTACH of 100 KB inline",
    mail(
      ["bob@fake.test"],
      singlePart({
        body: invite({
          extra: `ATTACH;ENCODING=BASE64;VALUE=BINARY:${Buffer.alloc(75_000, 1).toString("base64")}`,
        }),
      }),
      QUEUED,
    ),
  );
  add(
    "declared iMIP from an organizer outside the hosted domains",
    mail(["bob@fake.test"], singlePart({ body: invite({ organizer: "mallory@evil.test" }) }), NOT_OURS),
  );
  add(
    "declared iMIP REPLY from an attendee outside the hosted domains",
    mail(
      ["bob@fake.test"],
      singlePart({
        type: "text/calendar; method=REPLY",
        body: invite({ method: "REPLY", organizer: "bob@fake.test", attendees: ["mallory@evil.test"] }),
      }),
      NOT_UPGRADED(/may carry only the ATTENDEE who sends it/),
    ),
  );
  add(
    "an undeclared .ics attachment from a foreign organizer (relayed as mail)",
    mail(
      [CAROL],
      multipart([
        crlf(
          'Content-Type: application/ics; name="x.ics"',
          'Content-Disposition: attachment; filename="x.ics"',
          "",
          invite({ organizer: "mallory@evil.test" }),
        ),
      ]),
      RELAYED,
    ),
  );
  add(
    "two iMIP parts that differ (mail, not iMIP)",
    mail(
      [CAROL],
      multipart([
        crlf("Content-Type: text/calendar; method=REQUEST", "", invite()),
        crlf("Content-Type: text/calendar; method=REQUEST", "", invite()),
      ]),
      RELAYED,
    ),
  );
  add(
    "multipart without a boundary parameter",
    mail(
      [CAROL],
      crlf(
        "Subject: x",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed",
        "",
        "--b1",
        "Content-Type: text/plain",
        "",
        "hi",
        "--b1--",
      ),
      RELAYED,
    ),
  );
  add(
    "a multipart whose boundary is never closed",
    mail(
      ["bob@fake.test"],
      multipart(
        [
          crlf(
            "Content-Type: text/calendar; method=REQUEST; charset=utf-8",
            "",
            invite({ attendees: ["bob@fake.test"] }),
          ),
        ],
        { closed: false },
      ),
      QUEUED,
    ),
  );
  add(
    "multipart with a boundary of 70 characters",
    mail(
      ["bob@fake.test"],
      multipart(
        [crlf("Content-Type: text/calendar; method=REQUEST", "", invite({ attendees: ["bob@fake.test"] }))],
        { boundary: "B".repeat(70) },
      ),
      QUEUED,
    ),
  );
  add("MIME nested 20 deep (read to 16)", mail([CAROL], nested(20), RELAYED));
  add(
    "MIME nested 10 deep",
    mail(["bob@fake.test", CAROL], nested(10), R(250, "2.0.0", /queued for iSchedule/)),
  );
  add(
    "1,000 empty parts",
    mail(
      [CAROL],
      multipart(Array.from({ length: 1000 }, () => crlf("Content-Type: text/plain", "", "."))),
      RELAYED,
    ),
  );
  add(
    "a part with 2,000 Content-Type parameters",
    mail(
      [CAROL],
      multipart([
        crlf(
          `Content-Type: text/plain${Array.from({ length: 2000 }, (_, i) => `; p${i}=v`).join("")}`,
          "",
          "x",
        ),
      ]),
      RELAYED,
    ),
  );
  add(
    "quoted-printable with broken escapes in the iMIP part",
    mail(
      ["bob@fake.test"],
      singlePart({
        encoding: "quoted-printable",
        // RFC 2045 §6.7: an "=" without two hex digits is kept as it is.
        body: quotedPrintable(invite({ attendees: ["bob@fake.test"] })).replace("Reunion", "Re=ZZunion=4"),
      }),
      QUEUED,
    ),
  );
  add(
    "base64 iMIP split into 1-character lines",
    mail(
      ["bob@fake.test"],
      singlePart({
        encoding: "base64",
        body: Buffer.from(invite({ attendees: ["bob@fake.test"] }))
          .toString("base64")
          .split("")
          .join("\r\n"),
      }),
      QUEUED,
    ),
  );
  add(
    "base64 iMIP with 76-character lines",
    mail(
      ["bob@fake.test"],
      singlePart({ encoding: "base64", body: base64Lines(invite({ attendees: ["bob@fake.test"] })) }),
      QUEUED,
    ),
  );
  add(
    "a Content-Type header given twice",
    mail(
      [CAROL],
      crlf(
        "Subject: x",
        "Content-Type: text/plain",
        "Content-Type: text/calendar; method=REQUEST",
        "",
        "hello",
      ),
      RELAYED,
    ),
  );
  add(
    "a Content-Type with an unterminated quote",
    mail(
      [CAROL],
      crlf("Subject: x", 'Content-Type: multipart/mixed; boundary="abc', "", "--abc", "", "x"),
      RELAYED,
    ),
  );
  add(
    "a VFREEBUSY REQUEST (relayed: its answer cannot go back by mail)",
    mail(
      ["bob@fake.test"],
      singlePart({
        body: crlf(
          "BEGIN:VCALENDAR",
          "VERSION:2.0",
          "PRODID:-//b//EN",
          "METHOD:REQUEST",
          "BEGIN:VFREEBUSY",
          `UID:${crypto.randomUUID()}`,
          "DTSTAMP:20260105T090000Z",
          "DTSTART:20260112T000000Z",
          "DTEND:20260113T000000Z",
          "ORGANIZER:mailto:alice@org.test",
          "ATTENDEE:mailto:bob@fake.test",
          "END:VFREEBUSY",
          "END:VCALENDAR",
        ),
      }),
      RELAYED,
    ),
  );
  add(
    "iMIP to a recipient who is not an ATTENDEE (relayed as mail)",
    mail(["zed@fake.test"], singlePart({ body: invite() }), RELAYED),
  );

  // Envelope spellings that are still ours, and some that are not.
  const BOB = "bob@fake.test";
  const bobInvite = () => invite({ attendees: [BOB] });
  const envelopes: [string, string, string, ReplyPattern][] = [
    ["MAIL FROM in upper case", "MAIL FROM:<ALICE@ORG.TEST>", BOB, QUEUED],

    ["MAIL FROM with BODY=8BITMIME", "MAIL FROM:<alice@org.test> BODY=8BITMIME", BOB, QUEUED],
    ["MAIL FROM with SMTPUTF8", "MAIL FROM:<alice@org.test> SMTPUTF8", BOB, QUEUED],

    ["RCPT TO in upper case", "MAIL FROM:<alice@org.test>", "BOB@FAKE.TEST", QUEUED],

    ["RCPT TO postmaster@ a hosted domain", "MAIL FROM:<alice@org.test>", "postmaster@org.test", RELAYED],
  ];
  for (const [what, from, to, expect] of envelopes) {
    add(`${what}`, [
      EHLO,
      AUTH,
      { send: from, expect: OK },
      rcpt(to),
      { data: singlePart({ body: bobInvite() }), expect },
    ]);
  }
  add("MAIL FROM with a trailing dot (smtp-server's syntax)", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<alice@org.test.>", expect: R(501, undefined, /Bad sender address syntax/) },
  ]);
  add("MAIL FROM with a quoted local part (smtp-server's syntax)", [
    EHLO,
    AUTH,
    { send: 'MAIL FROM:<"alice smith"@org.test>', expect: R(501, undefined, /Bad sender address syntax/) },
  ]);
  add("RCPT TO with a trailing dot (smtp-server's syntax)", [
    ...envelope(),
    { send: "RCPT TO:<bob@fake.test.>", expect: R(501, undefined, /Bad recipient address syntax/) },
  ]);
  add("MAIL FROM an IP literal", [EHLO, AUTH, { send: "MAIL FROM:<alice@[127.0.0.1]>", expect: NOT_OURS }]);
  add("MAIL FROM with a source route", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<@relay.test:alice@org.test>", expect: R(250) },
  ]);
  add("RCPT TO the same address twice", [
    ...envelope(BOB),
    { send: `RCPT TO:<${BOB}>`, expect: R(250) },
    { data: singlePart({ body: bobInvite() }), expect: QUEUED },
  ]);
  add("RCPT TO without a domain", [
    ...envelope(),
    { send: "RCPT TO:<bob>", expect: R(501, undefined, /Bad recipient address syntax/) },
  ]);

  return smtpCaseList(target, specs);
}
