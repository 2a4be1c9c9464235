/**
 * SMTP intake cases about the dialog itself: commands out of order, malformed or unknown; AUTH that
 * is wrong in every way (each failure a password guess from an address of its own: guesses are
 * throttled per address and overall, so 454 is a right answer too); envelopes that are not ours or
 * not addresses. Run as _smtp-dialog.ts says.
 */
import type { Case } from "./_cases.ts";
import { authPlain } from "./_smtp-client.ts";
import {
  AUTH,
  BAD_LOGIN,
  EHLO,
  envelope,
  FROM_ALICE,
  NOT_OURS,
  OK,
  R,
  type SmtpTarget,
  type Step,
  smtpCaseList,
  specList,
} from "./_smtp-dialog.ts";
import { SMTP_MAX_SIZE, SMTP_PASSWORD, SMTP_USER } from "./_world.ts";

export function smtpCommandCases(target: () => SmtpTarget): Case[] {
  const { specs, add } = specList();

  // Commands out of order, unknown or malformed.
  add("MAIL before EHLO", [{ send: "MAIL FROM:<alice@org.test>", expect: R(503) }]);
  add("MAIL without AUTH (AUTH is required)", [EHLO, { send: "MAIL FROM:<alice@org.test>", expect: R(530) }]);
  add("RCPT before MAIL", [EHLO, AUTH, { send: "RCPT TO:<bob@fake.test>", expect: R(503) }]);
  add("DATA before RCPT", [EHLO, AUTH, FROM_ALICE, { send: "DATA", expect: R(503) }]);
  add("DATA before MAIL", [EHLO, AUTH, { send: "DATA", expect: R(503) }]);
  add("MAIL twice", [...envelope(), { send: "MAIL FROM:<alice@org.test>", expect: R(503) }]);
  add("an unknown command", [{ send: "FROB the server", expect: R(500) }]);
  add("an empty line", [{ send: "", expect: R(500) }]);
  add("a line of spaces", [{ send: "      ", expect: R(500) }]);
  add("EHLO without a domain", [{ send: "EHLO", expect: R(501) }]);
  add("HELO without a domain", [{ send: "HELO", expect: R(501) }]);
  add("EHLO with 2,000 characters", [
    { send: `EHLO ${"h".repeat(2000)}`, expect: R(501, undefined, /Bad hostname syntax/) },
  ]);
  add("a command line of 10 KB", [EHLO, { send: `NOOP ${"n".repeat(10_240)}`, expect: R(250) }]);
  add(
    "a command line of 1 MB",
    [EHLO, { send: `NOOP ${"n".repeat(1024 * 1024)}`, expect: R(421, undefined, /Command line too long/) }],
    { closes: true },
  );
  add("a NUL byte in a command", [
    { send: "EHLO cli\0ent.org.test", expect: R(501, undefined, /Bad hostname syntax/) },
  ]);
  add("8-bit bytes in a command", [{ send: "EHLO \xe9\xff.test", expect: R(250) }]);
  add("a command ended by a bare LF", [{ send: "NOOP\n", raw: true, expect: R(250) }]);
  add("VRFY", [EHLO, { send: "VRFY alice", expect: R(252) }]);
  add("EXPN", [EHLO, { send: "EXPN staff", expect: R(500, undefined, /command not recognized/) }]);
  add("TURN", [EHLO, { send: "TURN", expect: R(500, undefined, /command not recognized/) }]);
  add("ETRN", [EHLO, { send: "ETRN org.test", expect: R(500, undefined, /command not recognized/) }]);
  add("BDAT (CHUNKING is not offered)", [
    ...envelope("carol@mail-only.test"),
    { send: "BDAT 5 LAST", expect: R(500, undefined, /command not recognized/) },
  ]);
  add("STARTTLS (no certificate, not offered)", [
    EHLO,
    { send: "STARTTLS", expect: R(500, undefined, /command not recognized/) },
  ]);
  add("RSET, then DATA", [
    ...envelope("carol@mail-only.test"),
    { send: "RSET", expect: OK },
    { send: "DATA", expect: R(503) },
  ]);
  // smtp-server's limit: the tenth command without AUTH is answered 421 and the connection closed.
  add(
    "ten commands without AUTH",
    [
      EHLO,
      ...Array.from({ length: 8 }, (): Step => ({ send: "NOOP", expect: R(250) })),
      { send: "NOOP", expect: R(421, undefined, /too many unauthenticated commands/) },
    ],
    { closes: true },
  );

  // AUTH: each failure a password guess from its own address.
  const guess = { guess: true };
  add(
    "AUTH PLAIN with a wrong password",
    [EHLO, { send: authPlain(SMTP_USER, "guess"), expect: BAD_LOGIN }],
    guess,
  );
  add(
    "AUTH PLAIN for an unknown user",
    [EHLO, { send: authPlain("mallory", "guess"), expect: BAD_LOGIN }],
    guess,
  );
  add(
    "AUTH PLAIN with an empty password",
    [EHLO, { send: authPlain(SMTP_USER, ""), expect: BAD_LOGIN }],
    guess,
  );
  add(
    "AUTH PLAIN with a 5 KB password",
    [EHLO, { send: authPlain(SMTP_USER, "p".repeat(5000)), expect: R([500, 501, 535, 454]) }],
    guess,
  );
  add(
    "AUTH LOGIN with a wrong password",
    [
      EHLO,
      { send: "AUTH LOGIN", expect: R(334) },
      { send: Buffer.from(SMTP_USER).toString("base64"), expect: R(334) },
      { send: Buffer.from("guess").toString("base64"), expect: BAD_LOGIN },
    ],
    guess,
  );
  add(
    "AUTH PLAIN whose response is not base64",
    [EHLO, { send: "AUTH PLAIN !!!notbase64!!!", expect: R([501, 535, 454]) }],
    guess,
  );
  add(
    "AUTH PLAIN without the NUL separators",
    [
      EHLO,
      {
        send: `AUTH PLAIN ${Buffer.from("cyruscalendar-secret").toString("base64")}`,
        expect: R([501, 535, 454]),
      },
    ],
    guess,
  );
  add("AUTH PLAIN cancelled with *", [
    EHLO,
    { send: "AUTH PLAIN", expect: R(334) },
    { send: "*", expect: R(501) },
  ]);
  add("AUTH with CRAM-MD5 (not offered)", [EHLO, { send: "AUTH CRAM-MD5", expect: R(504) }]);
  add("AUTH with an unknown mechanism", [EHLO, { send: "AUTH X-BATTERY", expect: R(504) }]);
  add("AUTH without a mechanism", [
    EHLO,
    { send: "AUTH", expect: R(504, undefined, /Unrecognized authentication type/) },
  ]);
  add("AUTH before EHLO", [{ send: authPlain(SMTP_USER, SMTP_PASSWORD), expect: R(503) }]);
  add("AUTH twice", [EHLO, AUTH, { send: authPlain(SMTP_USER, SMTP_PASSWORD), expect: R(503) }]);
  add("AUTH during a transaction", [
    ...envelope("carol@mail-only.test"),
    { send: authPlain(SMTP_USER, SMTP_PASSWORD), expect: R(503) },
  ]);
  add(
    "three wrong passwords on one connection (the third closes it)",
    [
      EHLO,
      { send: authPlain(SMTP_USER, "guess1"), expect: BAD_LOGIN },
      { send: authPlain(SMTP_USER, "guess2"), expect: BAD_LOGIN },
      {
        send: authPlain(SMTP_USER, "guess3"),
        expect: R(421, undefined, /failed authentication attempts; closing/),
      },
    ],
    { closes: true, guess: true },
  );

  // Envelopes.
  add("MAIL FROM outside the hosted domains (no relaying)", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<mallory@evil.test>", expect: NOT_OURS },
  ]);
  add("MAIL FROM a subdomain of a hosted domain", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<x@sub.org.test>", expect: NOT_OURS },
  ]);
  add("MAIL FROM:<> (the null reverse-path)", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<>", expect: R(550, "5.7.1", /null reverse-path/) },
  ]);
  add("MAIL FROM without angle brackets", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:alice@org.test", expect: R(501, undefined, /Bad sender address syntax/) },
  ]);
  add("MAIL FROM without an address", [EHLO, AUTH, { send: "MAIL FROM:", expect: R(501) }]);
  add("MAIL FROM with two @", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<a@b@org.test>", expect: R(501, undefined, /Bad sender address syntax/) },
  ]);
  add("MAIL FROM of 1,000 characters", [
    EHLO,
    AUTH,
    {
      send: `MAIL FROM:<${"a".repeat(990)}@org.test>`,
      expect: R(501, undefined, /Bad sender address syntax/),
    },
  ]);
  add("MAIL FROM with SIZE over the limit", [
    EHLO,
    AUTH,
    { send: `MAIL FROM:<alice@org.test> SIZE=${SMTP_MAX_SIZE + 1}`, expect: R(552) },
  ]);
  add("MAIL FROM with SIZE=abc", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<alice@org.test> SIZE=abc", expect: R(501, undefined, /Bad message size syntax/) },
  ]);
  // RFC 5321 §4.1.1.11 would have 555; smtp-server ignores parameters it does not know.
  add("MAIL FROM with an unknown parameter (ignored)", [
    EHLO,
    AUTH,
    { send: "MAIL FROM:<alice@org.test> X-FOO=1", expect: R(250) },
  ]);
  add("RCPT TO without an address", [...envelope(), { send: "RCPT TO:", expect: R(501) }]);
  add("RCPT TO:<>", [
    ...envelope(),
    { send: "RCPT TO:<>", expect: R(501, undefined, /Bad recipient address syntax/) },
  ]);
  add("RCPT TO with an unknown parameter (ignored)", [
    ...envelope(),
    { send: "RCPT TO:<bob@fake.test> X-FOO=1", expect: R(250) },
  ]);
  add("RCPT TO with NOTIFY=NEVER (DSN not offered)", [
    ...envelope(),
    { send: "RCPT TO:<bob@fake.test> NOTIFY=NEVER", expect: R(250) },
  ]);
  add("1,001 recipients (at most 1,000)", [
    ...envelope(...Array.from({ length: 1000 }, (_, i) => `r${i}@mail-only.test`)),
    { send: "RCPT TO:<r1000@mail-only.test>", expect: R(452, "4.5.3", /at most 1000/) },
  ]);

  return smtpCaseList(target, specs);
}
