/**
 * One mail transaction of the SMTP intake, after DATA: find the iMIP part, check who sends it, ask
 * discovery which remote domains take it by iSchedule, queue those recipients, relay the rest
 * unchanged, and say in one SMTP reply what happened. Independent of the SMTP server library.
 *
 * Order: queue first, then relay. A 250 means both are done (nothing accepted is lost).
 * - The queue commits first because it is the step that fails for reasons of our own (a full disk,
 *   SQLITE_FULL): then nothing has been relayed and the 451 4.3.0 leaves no trace at all.
 * - If the smarthost then fails temporarily, the queued deliveries stay (they are valid, and
 *   iSchedule will deliver them) and the client gets 451 4.4.0 and retries. The retry memory
 *   (retry-memory.ts) knows which recipients the first try handled, so the retry only relays: no
 *   duplicate submission, and no duplicate mail to recipients the smarthost already accepted.
 * - If the smarthost refuses some recipients for good, 554 5.0.0 names them: the client's bounce
 *   tells the organiser who did not get the message. The others did, so the bounce overstates the
 *   failure; an iTIP update received twice is harmless (same UID and SEQUENCE), a silent loss is not.
 * Relaying first would instead risk mail going out for a transaction that then fails to commit.
 *
 * The intake is never worse than a plain relay: an iMIP message that is not valid enough for
 * iSchedule (a part that cannot be decoded, iCalendar that is not valid iTIP, a message iSchedule
 * would refuse) is relayed unchanged to every recipient, and the log and the message log say why it
 * was not upgraded. 5xx answers are for policy only: a sender or Originator outside the hosted
 * domains, a client outside --smtp-allow, a message over the size limit.
 */

import type { SmtpResult, SmtpSendable } from "../imip/smtp-sender.ts";
import type { IntakeService } from "../intake/accept.ts";
import { recordRelayed, type UnparsedItip } from "../intake/relayed.ts";
import { type SubmitResult, submit } from "../intake/submission.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { type ItipMessage, originatorFor, parseItip } from "../itip/index.ts";
import type { Logger } from "../log/logger.ts";
import { authorize, decide, type SmtpEnvelope, schedulingCandidates } from "./decide.ts";
import { extractImip } from "./imip-extract.ts";
import { type RetryMemory, transactionKey } from "./retry-memory.ts";

export interface SmtpReply {
  readonly code: number;
  /** RFC 3463 enhanced status code, written at the start of the reply text. */
  readonly status: string;
  readonly text: string;
}

/** What `canSchedule` gets to decide whether a domain's iSchedule receiver takes the message. */
export interface ScheduleFacts {
  readonly itip: ItipMessage;
  readonly originator: string;
  /** The recipients in this domain, as mailto: addresses. */
  readonly recipients: readonly string[];
  /** Octets of the iCalendar body as it will be sent (CRLF line ends). */
  readonly sizeBytes: number;
}

export interface TransactionContext {
  /** Where the recipients that go by iSchedule are submitted (src/intake); it knows the hosted domains. */
  intake: IntakeService;
  canSchedule: (domain: string, facts: ScheduleFacts) => Promise<boolean>;
  /** An answer that takes longer counts as "no": the recipient is relayed. */
  canScheduleTimeoutMs: number;
  /** Log the relayed recipients of an iMIP mail beside its iSchedule ones. */
  recordRelayed: boolean;
  relay?: { send(msg: SmtpSendable): Promise<SmtpResult>; label?: string };
  memory: RetryMemory;
  log: Logger;
}

export interface Transaction {
  raw: Uint8Array;
  envelope: SmtpEnvelope;
  peerAddress: string;
}

const MAX_TEXT = 400;

export async function handleTransaction(t: Transaction, ctx: TransactionContext): Promise<SmtpReply> {
  const { raw, envelope } = t;
  const fields = { client: t.peerAddress, from: envelope.mailFrom, rcpts: envelope.rcptTo.length };
  const read = readImip(raw);
  let { itip } = read;
  let notUpgraded = read.notUpgraded;

  let refusal = authorize({ envelope, itip, hosted: ctx.intake.hosted });
  if (refusal && itip && read.declared === false) {
    // An .ics attachment the sender never declared iMIP (a user passing on someone else's
    // invitation) is mail like any other when its Originator is not ours: relayed, not refused.
    refusal = authorize({ envelope, hosted: ctx.intake.hosted });
    itip = undefined;
  }
  if (refusal?.kind === "refuse") {
    ctx.log.log("warn", "smtp intake refused a relay attempt", { ...fields, reason: refusal.reason });
    return reply(refusal.code, refusal.status, refusal.reason);
  }

  // A retry of a transaction answered 4xx after part of it was done: only the rest is left.
  const key = transactionKey(raw, envelope.mailFrom);
  const done = ctx.memory.handled(key);
  const pending: SmtpEnvelope = {
    mailFrom: envelope.mailFrom,
    rcptTo: envelope.rcptTo.filter((r) => !done.has(r.toLowerCase())),
  };
  const yes = itip ? await schedulableDomains(pending, itip, ctx) : new Set<string>();
  let decision = decide({
    envelope: pending,
    itip,
    hosted: ctx.intake.hosted,
    schedulable: (d) => yes.has(d),
  });
  if (decision.kind === "refuse") return reply(decision.code, decision.status, decision.reason);
  if (decision.relay.length > 0 && !ctx.relay) {
    ctx.log.log("error", "smtp intake has mail to relay but no smarthost (--smtp-relay)", fields);
    return reply(
      451,
      "4.3.5",
      "No smarthost is configured for mail isched cannot send by iSchedule; nothing was queued",
    );
  }

  let submitted: SubmitResult | undefined;
  if (decision.ischedule.length > 0 && itip && decision.originator) {
    try {
      // The dispatcher's loop takes the deliveries: the reply does not wait for iSchedule.
      submitted = await submit(ctx.intake, {
        intake: "smtp",
        originator: decision.originator,
        recipients: decision.ischedule.map((r) => `mailto:${r}`),
        itip: itip.text,
        parsed: itip,
        peerAddress: t.peerAddress,
        ...headersOf(raw),
      });
    } catch (e) {
      if (!(e instanceof IScheduleError)) {
        ctx.log.log("error", "smtp intake cannot commit to the queue", {
          ...fields,
          error: e instanceof Error ? e.message : String(e),
        });
        return reply(
          451,
          "4.3.0",
          "Cannot queue the message now (local storage error); nothing was relayed, try again later",
        );
      }
      // Valid iCalendar that iSchedule would still refuse: as mail it reaches everyone all the same.
      if (!ctx.relay) {
        ctx.log.log("error", "smtp intake has mail to relay but no smarthost (--smtp-relay)", fields);
        return reply(451, "4.3.5", `${e.publicMessage} No smarthost is configured to relay it instead.`);
      }
      notUpgraded = `iSchedule would refuse it: ${e.element}: ${e.publicMessage}`;
      decision = { ...decision, ischedule: [], relay: pending.rcptTo };
    }
    if (submitted)
      ctx.log.log("info", "smtp intake queued for iSchedule", {
        ...fields,
        message: submitted.uuid,
        recipients: decision.ischedule.join(","),
      });
  }
  if (notUpgraded !== undefined) {
    // The message goes on as mail, unchanged, exactly as a plain relay would send it.
    ctx.log.log("info", "smtp intake relayed an iMIP message without upgrading it", {
      ...fields,
      reason: notUpgraded,
    });
  }
  const queuedNote = submitted
    ? `${decision.ischedule.length} queued for iSchedule (message ${submitted.uuid})`
    : "";

  if (decision.relay.length === 0 || !ctx.relay) {
    ctx.memory.forget(key);
    return reply(250, "2.0.0", `Accepted: ${queuedNote || "nothing left to do"}`);
  }
  const result = await ctx.relay.send({
    raw,
    envelope: { from: envelope.mailFrom, to: [...decision.relay] },
  });
  const accepted = result.ok ? result.accepted : [];
  const logged = itip ?? read.unparsed;
  if (logged && ctx.recordRelayed) {
    try {
      await recordRelayed(ctx.intake, {
        messageId: submitted?.messageId,
        itip: logged,
        ...(notUpgraded !== undefined && { notUpgraded }),
        originator: decision.originator ?? `mailto:${envelope.mailFrom}`,
        peerAddress: t.peerAddress,
        relayTarget: ctx.relay.label ?? "smarthost",
        accepted,
        refused: result.rejections
          .filter((x) => !x.temporary && x.address !== "")
          .map((x) => ({ address: x.address, response: x.response })),
        response: result.ok ? result.response : result.response,
        ...headersOf(raw),
      });
    } catch (e) {
      // The mail went; only its line in the log is missing.
      ctx.log.log("warn", "smtp intake could not log the relayed recipients", {
        ...fields,
        error: (e as Error).message,
      });
    }
  }
  if (result.ok && result.rejected.length === 0) {
    ctx.memory.forget(key);
    ctx.log.log("info", "smtp intake relayed", {
      ...fields,
      recipients: decision.relay.join(","),
      response: result.response,
    });
    const relayed = `${decision.relay.length} relayed${notUpgraded === undefined ? "" : `, not upgraded to iSchedule (${notUpgraded})`}`;
    return reply(250, "2.0.0", `Accepted: ${queuedNote ? `${queuedNote}, ${relayed}` : relayed}`);
  }

  const refused = result.rejections.map((r) => r.address).filter((a) => a !== "");
  const temporary = result.ok ? result.rejections.some((r) => r.temporary) : result.temporary;
  // The client hears the smarthost's own replies; where and how isched connects stays in the log.
  const replies = result.rejections
    .map((r) => r.response ?? `${r.address}: ${r.code ?? "refused"}`)
    .join("; ");
  const why = replies || (!result.ok && (result.response ?? `no answer (${result.kind})`)) || "no reply";
  ctx.log.log(temporary ? "warn" : "error", "smtp intake: the smarthost did not take the message", {
    ...fields,
    accepted: accepted.join(","),
    refused: refused.join(","),
    temporary,
    reason: result.ok ? replies : result.message,
  });
  const progress = [...decision.ischedule, ...accepted];
  if (temporary) {
    if (progress.length > 0) ctx.memory.remember(key, progress);
    const kept =
      progress.length > 0 ? `; ${progress.length} recipient(s) already handled will not get it again` : "";
    return reply(451, "4.4.0", `The smarthost did not take the message now (${why})${kept}; try again later`);
  }
  ctx.memory.forget(key);
  const others = progress.length > 0 ? `; the other ${progress.length} recipient(s) got it` : "";
  return reply(
    554,
    "5.0.0",
    `The smarthost refused ${refused.join(", ") || "the message"} (${why})${others}`,
  );
}

/** What the mail's iMIP part is: a valid iTIP message, or one that cannot go by iSchedule and why. */
interface ReadImip {
  readonly itip?: ItipMessage;
  /** False for an .ics attachment the sender never declared iMIP; undefined for plain mail. */
  readonly declared?: boolean;
  /** A declared iMIP part that is not valid enough for iSchedule: it is relayed unchanged. */
  readonly notUpgraded?: string;
  readonly unparsed?: UnparsedItip;
}

/**
 * Real calendar software sends imperfect iMIP (Thunderbird's DTEND with DURATION, Meetup's
 * method=REQUEST on a PUBLISH, Outlook 2010's REPLY without ORGANIZER): a declared part that cannot
 * be decoded or is not valid iTIP is not a reason to refuse the mail, only not to upgrade it.
 */
function readImip(raw: Uint8Array): ReadImip {
  const extraction = extractImip(raw);
  if (extraction.kind === "not-imip") return {};
  if (extraction.kind === "malformed") {
    return {
      declared: true,
      notUpgraded: extraction.reason,
      unparsed: { text: "", method: extraction.method },
    };
  }
  const parsed = parse(extraction.itipText);
  const problem =
    typeof parsed === "string"
      ? parsed
      : parsed.method !== extraction.method
        ? `its method parameter ${extraction.method} is not its METHOD ${parsed.method} (RFC 6047 §2.4)`
        : originatorFor(parsed) === undefined
          ? `the ${parsed.method} does not say who sends it (no ORGANIZER or replying ATTENDEE)`
          : undefined;
  if (problem === undefined) return { itip: parsed as ItipMessage, declared: extraction.declared };
  // An undeclared attachment that is not valid iTIP is just an attachment.
  if (!extraction.declared) return {};
  return {
    declared: true,
    notUpgraded: `the iMIP part ${extraction.partPath} is not a valid iTIP message: ${problem}`,
    unparsed: {
      text: extraction.itipText,
      method: extraction.method,
      ...selfDescription(extraction.itipText),
    },
  };
}

/** Component, UID and SUMMARY as the text says them, for the log of a message that did not parse. */
function selfDescription(text: string): Omit<UnparsedItip, "text" | "method"> {
  const unfolded = text.replace(/\r?\n[ \t]/g, "");
  const value = (name: string) =>
    new RegExp(`^${name}(?:;[^:\\r\\n]*)?:([^\\r\\n]{1,250})`, "im").exec(unfolded)?.[1]?.trim();
  const component = /^BEGIN:(VEVENT|VTODO|VJOURNAL|VFREEBUSY|VPOLL)\s*$/im.exec(unfolded)?.[1]?.toUpperCase();
  const uid = value("UID");
  const summary = value("SUMMARY");
  return {
    ...(component !== undefined && { component }),
    ...(uid !== undefined && { uid }),
    ...(summary !== undefined && { summary }),
  };
}

/** Asks discovery about every candidate domain at once; a failure or a slow answer is a "no". */
async function schedulableDomains(
  envelope: SmtpEnvelope,
  itip: ItipMessage,
  ctx: TransactionContext,
): Promise<Set<string>> {
  const candidates = schedulingCandidates({ envelope, itip, hosted: ctx.intake.hosted });
  const originator = originatorFor(itip)?.address ?? "";
  const sizeBytes = Buffer.byteLength(itip.text.replace(/\r?\n/g, "\r\n"));
  const answers = await Promise.all(
    [...candidates].map(async ([domain, recipients]) => {
      const facts: ScheduleFacts = {
        itip,
        originator,
        recipients: recipients.map((r) => `mailto:${r}`),
        sizeBytes,
      };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), ctx.canScheduleTimeoutMs);
      });
      try {
        return [domain, await Promise.race([ctx.canSchedule(domain, facts), timeout])] as const;
      } catch (e) {
        ctx.log.log("warn", "smtp intake: discovery failed, relaying instead", {
          domain,
          error: e instanceof Error ? e.message : String(e),
        });
        return [domain, false] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return new Set(answers.filter(([, yes]) => yes).map(([d]) => d));
}

function parse(text: string): ItipMessage | string {
  try {
    return parseItip(text);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Message-ID and Subject, kept with the stored message so the console can tie it to the mail. */
function headersOf(raw: Uint8Array): { headers?: [string, string][] } {
  const text = Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, 65536)).toString("latin1");
  const end = /\r?\n\r?\n/.exec(text);
  const head = (end ? text.slice(0, end.index) : text).replace(/\r?\n(?=[ \t])/g, "");
  const headers: [string, string][] = [];
  for (const name of ["Message-ID", "Subject"]) {
    const m = new RegExp(`^${name}:[ \\t]*(.*)$`, "im").exec(head);
    if (m) headers.push([name, m[1]!.trim().slice(0, 998)]);
  }
  return headers.length > 0 ? { headers } : {};
}

function reply(code: number, status: string, text: string): SmtpReply {
  return { code, status, text: replyText(text) };
}

/**
 * Text fit for an SMTP reply line: RFC 5321 §4.2 allows printable US-ASCII only, so "§" (the
 * reasons cite RFC sections) is spelt out and any other character (a UTF-8 address quoted back)
 * becomes "?"; one line, at most MAX_TEXT characters.
 */
export function replyText(text: string): string {
  const oneLine = text
    .replace(/[\r\n\t]+/g, " ")
    .replace(/§ ?/g, "section ")
    .replace(/[^\x20-\x7e]/g, "?");
  return oneLine.length > MAX_TEXT ? `${oneLine.slice(0, MAX_TEXT - 3)}...` : oneLine;
}
