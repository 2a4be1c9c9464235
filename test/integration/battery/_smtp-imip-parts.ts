/**
 * SMTP intake cases: the iMIP part's own header fields, one change at a time (RFC 6047 §2.4,
 * RFC 2045): method= and component= parameters, charsets, media type spelling, transfer encodings.
 * Each is a single-part invitation to bob@fake.test, where a valid one is queued for iSchedule; a
 * part isched cannot decode, or whose method= is not its METHOD, is relayed as it is.
 */
import { base64Lines, crlf, quotedPrintable } from "../../smtp-intake/_messages.ts";
import type { Case } from "./_cases.ts";
import {
  invite,
  mail,
  NOT_UPGRADED,
  QUEUED,
  RELAYED,
  type ReplyPattern,
  type SmtpTarget,
  type Step,
  singlePart,
  smtpCaseList,
  softBroken,
  specList,
} from "./_smtp-dialog.ts";

export function smtpPartCases(target: () => SmtpTarget): Case[] {
  const { specs, add } = specList();
  // The iMIP part's own header fields, one change at a time (RFC 6047 §2.4, RFC 2045): each a
  // single-part invitation to bob@fake.test, where a valid one is queued for iSchedule.
  const BOB = "bob@fake.test";
  const bobInvite = () => invite({ attendees: [BOB] });
  const part = (type: string, o: { encoding?: string; body?: string } = {}) =>
    mail(
      [BOB],
      singlePart({ type, body: o.body ?? bobInvite(), ...(o.encoding && { encoding: o.encoding }) }),
      QUEUED,
    );
  const partCases: [string, Step[], ReplyPattern?][] = [
    // Without method= the part is not declared iMIP, but its METHOD makes it one (RFC 6047 §2.4 Note 2).
    ["no method parameter", part("text/calendar; charset=utf-8")],
    ["method=request in lower case", part("text/calendar; charset=utf-8; method=request")],
    ['method="REQUEST" quoted', part('text/calendar; charset=utf-8; method="REQUEST"')],
    ["an empty method parameter", part("text/calendar; charset=utf-8; method=")],
    [
      "method=PUBLISH over a REQUEST",
      part("text/calendar; charset=utf-8; method=PUBLISH"),
      NOT_UPGRADED(/method parameter PUBLISH is not its METHOD REQUEST/),
    ],
    // The reply quotes it, clipped to 400 characters in all.
    [
      "method= of 2 KB",
      part(`text/calendar; charset=utf-8; method=${"M".repeat(2048)}`),
      NOT_UPGRADED(/its method parameter M+\.\.\.$/),
    ],
    [
      "component=VTODO over a VEVENT (not checked)",
      part("text/calendar; charset=utf-8; method=REQUEST; component=VTODO"),
    ],
    ["TEXT/CALENDAR in upper case", part("TEXT/CALENDAR; CHARSET=UTF-8; METHOD=REQUEST")],
    ["charset=iso-8859-1 on ASCII", part("text/calendar; charset=iso-8859-1; method=REQUEST")],
    [
      "charset=utf-16 on UTF-8 bytes",
      part("text/calendar; charset=utf-16; method=REQUEST"),
      NOT_UPGRADED(/line 1 is not BEGIN:VCALENDAR/),
    ],
    ["an empty charset", part("text/calendar; charset=; method=REQUEST")],
    [
      "a charset of 1 KB",
      part(`text/calendar; charset=${"c".repeat(1024)}; method=REQUEST`),
      NOT_UPGRADED(/charset "c{40}" is unknown/),
    ],
    [
      "1,000 parameters",
      part(`text/calendar${Array.from({ length: 1000 }, (_, i) => `; p${i}=v`).join("")}; method=REQUEST`),
    ],
    [
      "no Content-Type at all (text/plain: mail)",
      mail([BOB], crlf("From: alice@org.test", "Subject: x", "", bobInvite()), RELAYED),
    ],
    [
      "Content-Transfer-Encoding: BASE64 in upper case",
      part("text/calendar; method=REQUEST", { encoding: "BASE64", body: base64Lines(bobInvite()) }),
    ],
    [
      "Content-Transfer-Encoding padded with spaces",
      part("text/calendar; method=REQUEST", { encoding: "  base64  ", body: base64Lines(bobInvite()) }),
    ],
    [
      "base64 declared over quoted-printable text",
      part("text/calendar; method=REQUEST", { encoding: "base64", body: quotedPrintable(bobInvite()) }),
      NOT_UPGRADED(/base64/),
    ],
    [
      "quoted-printable declared over base64 text",
      part("text/calendar; method=REQUEST", { encoding: "quoted-printable", body: base64Lines(bobInvite()) }),
      NOT_UPGRADED(/not a valid iTIP message/),
    ],
    [
      "quoted-printable with soft breaks every 10 characters",
      part("text/calendar; method=REQUEST", { encoding: "quoted-printable", body: softBroken(bobInvite()) }),
    ],
    ["Content-Transfer-Encoding: binary", part("text/calendar; method=REQUEST", { encoding: "binary" })],
    [
      "Content-Transfer-Encoding: x-gzip",
      part("text/calendar; method=REQUEST", { encoding: "x-gzip" }),
      NOT_UPGRADED(/Content-Transfer-Encoding "x-gzip" is unknown/),
    ],
    [
      "base64 with its padding missing",
      part("text/calendar; method=REQUEST", {
        encoding: "base64",
        body: Buffer.from(`${bobInvite()} `).toString("base64").replace(/=+$/, ""),
      }),
    ],
    [
      "base64 with a NUL byte inside",
      part("text/calendar; method=REQUEST", { encoding: "base64", body: `${base64Lines(bobInvite())}\0` }),
      NOT_UPGRADED(/base64/),
    ],
  ];
  for (const [what, steps, expect] of partCases) {
    const last = steps[steps.length - 1]!;
    add(
      `an iMIP part with ${what}`,
      expect && "data" in last ? [...steps.slice(0, -1), { data: last.data, expect }] : steps,
    );
  }

  return smtpCaseList(target, specs);
}
