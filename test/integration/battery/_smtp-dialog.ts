/**
 * How an SMTP intake case runs: a dialog of steps (a command or a message), each with its expected
 * reply code (and the RFC 3463 enhanced status code where isched sets one): a policy refusal is 5xx,
 * a temporary problem 4xx. After the last step the connection must still answer QUIT with 221,
 * unless the case expects it closed (421). A reply-less close fails the case. Also the messages the
 * cases send, built from the Cyrus-shaped iMIP fixtures of test/smtp-intake.
 *
 * isched serves org.test and requires AUTH (--smtp-auth-file); fake.test has an iSchedule receiver
 * (the fake peer), mail-only.test has none, so its recipients are relayed to the smarthost.
 */
import { crlf, itipRequest } from "../../smtp-intake/_messages.ts";
import type { Case, Verdict } from "./_cases.ts";
import { clip } from "./_cases.ts";
import { authPlain, type SmtpReply, smtpConnect } from "./_smtp-client.ts";
import { SMTP_PASSWORD, SMTP_USER } from "./_world.ts";

export interface SmtpTarget {
  port: number;
}

export interface ReplyPattern {
  code: number | readonly number[];
  /** RFC 3463 enhanced status code at the start of the text. */
  status?: string;
  text?: RegExp;
}

export type Step =
  | { send: string | Uint8Array; raw?: boolean; expect: ReplyPattern }
  | { data: string | Uint8Array; expect: ReplyPattern };

export const R = (code: number | number[], status?: string, text?: RegExp): ReplyPattern => ({
  code,
  ...(status && { status }),
  ...(text && { text }),
});
export const OK = R(250);
const AUTH_OK = R(235);
export const EHLO: Step = { send: "EHLO client.org.test", expect: OK };
export const AUTH: Step = { send: authPlain(SMTP_USER, SMTP_PASSWORD), expect: AUTH_OK };
export const FROM_ALICE: Step = { send: "MAIL FROM:<alice@org.test>", expect: OK };
export const rcpt = (address: string): Step => ({ send: `RCPT TO:<${address}>`, expect: OK });
/** Up to RCPT: EHLO, AUTH, MAIL FROM, RCPT TO each recipient. */
export const envelope = (...to: string[]): Step[] => [EHLO, AUTH, FROM_ALICE, ...to.map(rcpt)];

export const BAD_LOGIN = R(
  [535, 454],
  undefined,
  /Authentication credentials invalid|Too many failed logins/,
);

export interface SmtpSpec {
  name: string;
  steps: Step[];
  /** The server ends the connection after the last step (421). */
  closes?: boolean;
  /** A password guess: from an address of its own. */
  guess?: boolean;
}

let nextAddress = 0;
/** A loopback address of its own for a password guess (the throttle counts per address). */
function guessAddress(): string {
  nextAddress = (nextAddress % 200) + 1;
  return `127.0.2.${nextAddress}`;
}

function matches(r: SmtpReply | undefined, p: ReplyPattern): string | undefined {
  if (r === undefined) return "the connection was closed without a reply";
  const codes = typeof p.code === "number" ? [p.code] : p.code;
  if (!codes.includes(r.code)) return `${r.code} ${clip(r.text, 200)}, expected ${codes.join(" or ")}`;
  // RFC 5321 §4.2: a reply's text is printable US-ASCII (read here one byte per character).
  if (/[^\x20-\x7e]/.test(r.text)) return `${r.code} ${clip(r.text, 200)}: the text is not printable ASCII`;
  if (p.status && !r.text.startsWith(`${p.status} `))
    return `${r.code} ${clip(r.text, 200)}, expected ${p.status}`;
  if (p.text && !p.text.test(r.text)) return `${r.code} ${clip(r.text, 200)} does not match ${p.text}`;
  return undefined;
}

const shown = (s: string | Uint8Array) => clip(typeof s === "string" ? s : `${s.byteLength} bytes`, 40);

async function runSpec(t: SmtpTarget, spec: SmtpSpec, from: string | undefined): Promise<Verdict> {
  const c = smtpConnect({ port: t.port, from });
  const problems: string[] = [];
  let serverError = false;
  try {
    const greeting = await c.greeting;
    const bad = matches(greeting, R(220));
    if (bad) return { problems: [`greeting: ${bad}`] };
    for (const [i, step] of spec.steps.entries()) {
      let reply: SmtpReply | undefined;
      let label: string;
      if ("data" in step) {
        const message = typeof step.data === "string" ? Buffer.from(step.data, "latin1") : step.data;
        const [go, done] = await c.data(message);
        label = `DATA (${message.byteLength} bytes)`;
        reply = go?.code === 354 ? done : go;
      } else {
        reply = await c.command(step.send, { raw: step.raw });
        label = shown(step.send);
      }
      if (reply && reply.code === 451 && /^4\.3\.0 /.test(reply.text)) serverError = true;
      const bad = matches(reply, step.expect);
      if (bad) {
        problems.push(`step ${i + 1} (${label}): ${bad}`);
        return { problems, serverError: serverError || reply === undefined };
      }
    }
    if (spec.closes) {
      await Bun.sleep(20);
      const after = c.closed() ? undefined : await c.command("NOOP");
      if (after !== undefined) problems.push(`the connection is still open (NOOP: ${after.code})`);
    } else {
      const quit = matches(await c.command("QUIT"), R(221));
      if (quit) problems.push(`QUIT: ${quit}`);
    }
    return { problems, serverError };
  } finally {
    c.close();
  }
}

/** RFC 2045 §6.7 with a soft line break every 10 characters, "=" written =3D. */
export function softBroken(text: string): string {
  return text
    .split("\r\n")
    .map((line) => (line.match(/.{1,10}/g) ?? [""]).map((piece) => piece.replace(/=/g, "=3D")).join("=\r\n"))
    .join("\r\n");
}

/** The header fields every message starts with, each with its own Message-ID. */
const mailHead = () => [
  "From: alice@org.test",
  "To: bob@fake.test",
  "Subject: Invitation",
  `Message-ID: <${crypto.randomUUID()}@org.test>`,
  "MIME-Version: 1.0",
];

/** A single-part iMIP message: Content-Type and transfer encoding as given, the body as bytes. */
export function singlePart(o: {
  type?: string;
  encoding?: string;
  body: string;
  extraHeaders?: string[];
}): string {
  return crlf(
    ...mailHead(),
    `Content-Type: ${o.type ?? "text/calendar; charset=utf-8; method=REQUEST; component=VEVENT"}`,
    ...(o.encoding ? [`Content-Transfer-Encoding: ${o.encoding}`] : []),
    ...(o.extraHeaders ?? []),
    "",
    o.body,
  );
}

export const invite = (
  o: { organizer?: string; attendees?: string[]; method?: string; extra?: string } = {},
) => {
  const text = itipRequest({
    organizer: o.organizer ?? "alice@org.test",
    attendees: o.attendees ?? ["bob@fake.test", "carol@mail-only.test"],
    method: o.method,
    uid: `smtp-${crypto.randomUUID()}`,
    summary: "Reunion",
  });
  return o.extra ? text.replace("END:VEVENT", `${o.extra}\r\nEND:VEVENT`) : text;
};

/** multipart/mixed with the given parts (each already with its headers and body). */
export function multipart(parts: string[], o: { boundary?: string; closed?: boolean } = {}): string {
  const b = o.boundary ?? "b1";
  return crlf(
    ...mailHead(),
    `Content-Type: multipart/mixed; boundary="${b}"`,
    "",
    ...parts.flatMap((p) => [`--${b}`, p]),
    ...(o.closed === false ? [] : [`--${b}--`]),
  );
}

export const QUEUED = R(250, "2.0.0", /queued for iSchedule/);
export const RELAYED = R(250, "2.0.0", /relayed/);
/**
 * Imperfect iMIP (a part that cannot be decoded, or is not valid iTIP) is relayed unchanged, and
 * the reply says why it was not upgraded (src/smtp-intake/transaction.ts): never worse than a relay.
 */
export const NOT_UPGRADED = (why: RegExp) =>
  R(250, "2.0.0", new RegExp(`relayed, not upgraded to iSchedule \\(.*${why.source}`));
export const NOT_OURS = R(550, "5.7.1", /not in a domain served here|relays only for its own domains/);

export function nested(depth: number): string {
  let inner = crlf("Content-Type: text/calendar; charset=utf-8; method=REQUEST", "", invite());
  for (let i = depth; i > 0; i--) {
    inner = crlf(`Content-Type: multipart/mixed; boundary="n${i}"`, "", `--n${i}`, inner, `--n${i}--`);
  }
  return crlf("From: alice@org.test", "To: bob@fake.test", "Subject: deep", "MIME-Version: 1.0", inner);
}

/** A whole transaction: the envelope to `to`, then the message with its expected final reply. */
export const mail = (to: string[], data: string | Uint8Array, expect: ReplyPattern): Step[] => [
  ...envelope(...to),
  { data, expect },
];

/** A valid iMIP invitation to fake.test, queued for iSchedule: the intake still works. */
export function smtpControl(target: () => SmtpTarget): Case {
  const spec: SmtpSpec = {
    name: "control: a valid iMIP REQUEST is queued for iSchedule",
    steps: [
      ...envelope("bob@fake.test"),
      { data: singlePart({ body: invite({ attendees: ["bob@fake.test"] }) }), expect: QUEUED },
    ],
  };
  return { area: "SMTP intake", name: spec.name, run: () => runSpec(target(), spec, undefined) };
}

/** The cases of `specs`, a password guess each from an address of its own (the same in both runs). */
export function smtpCaseList(target: () => SmtpTarget, specs: readonly SmtpSpec[]): Case[] {
  return specs.map((spec) => {
    const from = spec.guess ? guessAddress() : undefined;
    return { area: "SMTP intake", name: spec.name, run: () => runSpec(target(), spec, from) } satisfies Case;
  });
}

/** A case list builder: `add(name, steps)`. */
export function specList(): {
  specs: SmtpSpec[];
  add: (name: string, steps: Step[], o?: { closes?: boolean; guess?: boolean }) => void;
} {
  const specs: SmtpSpec[] = [];
  return { specs, add: (name, steps, o = {}) => specs.push({ name, steps, ...o }) };
}
