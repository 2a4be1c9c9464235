/**
 * Outbound intake: a scheduling message from the organisation's side (the submission API,
 * `isched send`, the SMTP intake) becomes one stored message with one delivery per recipient: users
 * of hosted domains go to their local target, everyone else to iSchedule (discovery happens at
 * delivery time), with an iMIP fallback time. isched only sends for its own domains: an Originator
 * elsewhere is refused, so it can never be used as an open relay.
 */
import { createHash } from "node:crypto";
import { addressDomain, isCalendarUserAddress, normalizeAddress } from "../ischedule/address.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { checkOriginator, checkRecipients, ItipError, type ItipMessage, parseItip } from "../itip/index.ts";
import type { DeliveryQueue, NewDelivery } from "../queue/queue.ts";
import type { HeaderList, Intake } from "../store/messages.ts";

export interface Submission {
  intake: Extract<Intake, "api" | "smtp" | "cli" | "local">;
  /** The Originator; when absent, the one the method requires (ORGANIZER, or the replying ATTENDEE). */
  originator?: string;
  /** The recipients; when absent, those the method implies (the ATTENDEEs, or the ORGANIZER for a reply). */
  recipients?: readonly string[];
  /** The iTIP message (iCalendar text). */
  itip: string;
  /** The same message already parsed by the caller (the SMTP intake parses it to decide routes). */
  parsed?: ItipMessage;
  peerAddress?: string;
  headers?: HeaderList;
}

export interface SubmitContext {
  queue: DeliveryQueue;
  hosted: (domain: string) => boolean;
  localTargetLabel: (domain: string) => string;
  /** When iMIP takes over a remote delivery that iSchedule could not complete (undefined: never). */
  fallbackAfterMs?: number;
  nowMs: () => number;
}

export interface SubmittedRecipient {
  readonly recipient: string;
  readonly deliveryId: number;
  readonly route: "local" | "ischedule";
}

export interface SubmitResult {
  readonly messageId: number;
  readonly uuid: string;
  readonly originator: string;
  readonly method: string;
  readonly component: string;
  readonly recipients: readonly SubmittedRecipient[];
  readonly itip: ItipMessage;
}

/** Throws IScheduleError (invalid-calendar-data, invalid-scheduling-message, originator-*, recipient-*). */
export function submitMessage(s: Submission, ctx: SubmitContext): SubmitResult {
  let itip: ItipMessage;
  try {
    itip = s.parsed ?? parseItip(s.itip);
  } catch (e) {
    if (e instanceof ItipError) throw new IScheduleError(e.kind, e.message);
    throw e;
  }
  const originator = s.originator ? normalizeAddress(s.originator) : impliedOriginator(itip);
  if (!isCalendarUserAddress(originator))
    throw new IScheduleError("originator-invalid", `"${originator}" is not a calendar user address.`);
  const originatorDomain = addressDomain(originator) ?? "";
  if (!ctx.hosted(originatorDomain)) {
    throw new IScheduleError(
      "originator-denied",
      `${originatorDomain || originator} is not a domain served here; isched sends only for its own domains.`,
    );
  }
  const problem = checkOriginator(itip, originator);
  if (problem) throw new IScheduleError(problem.element, problem.message);

  const recipients = dedupe(
    (s.recipients ?? impliedRecipients(itip, originator)).map((r) => r.trim()).filter((r) => r !== ""),
  );
  if (recipients.length === 0) throw new IScheduleError("recipient-missing", "The message has no recipient.");
  for (const r of recipients) {
    if (!isCalendarUserAddress(r))
      throw new IScheduleError("recipient-missing", `"${r}" is not a calendar user address.`);
  }
  const recipientProblem = checkRecipients(itip, recipients);
  if (recipientProblem) throw new IScheduleError(recipientProblem.element, recipientProblem.message);

  const now = ctx.nowMs();
  const deliveries: NewDelivery[] = recipients.map((recipient) => {
    const domain = addressDomain(recipient) ?? "";
    if (ctx.hosted(domain))
      return { recipient, domain, route: "local", target: ctx.localTargetLabel(domain) };
    return {
      recipient,
      domain,
      route: "ischedule",
      fallbackAt: ctx.fallbackAfterMs === undefined ? undefined : now + ctx.fallbackAfterMs,
    };
  });
  const body = Buffer.from(itip.text.replace(/\r?\n/g, "\r\n"));
  const accepted = ctx.queue.accept(
    {
      direction: "outbound",
      intake: s.intake,
      peerAddress: s.peerAddress,
      originator,
      method: itip.method,
      component: itip.component,
      uid: itip.uid,
      summary: itip.summary,
      organizer: itip.organizer?.address,
      contentType: `text/calendar; charset=utf-8; method=${itip.method}; component=${itip.component}`,
      body,
      bodyHash: createHash("sha256").update(body).digest("base64"),
      headers: s.headers,
      dkimResult: "trusted",
    },
    deliveries,
  );
  return {
    messageId: accepted.messageId,
    uuid: accepted.uuid,
    originator,
    method: itip.method,
    component: itip.component,
    itip,
    recipients: recipients.map((recipient, i) => ({
      recipient,
      deliveryId: accepted.deliveryIds[i]!,
      route: deliveries[i]!.route as "local" | "ischedule",
    })),
  };
}

/** RFC 6047 §2: the organiser sends requests, the replying attendee sends responses. */
function impliedOriginator(itip: ItipMessage): string {
  if (["REPLY", "REFRESH", "COUNTER"].includes(itip.method)) {
    if (itip.attendees.length !== 1) {
      throw new IScheduleError(
        "originator-missing",
        `A ${itip.method} with ${itip.attendees.length} ATTENDEEs needs an explicit originator.`,
      );
    }
    return itip.attendees[0]!.address;
  }
  if (!itip.organizer)
    throw new IScheduleError("originator-missing", "The message has no ORGANIZER to send it for.");
  return itip.organizer.address;
}

function impliedRecipients(itip: ItipMessage, originator: string): string[] {
  if (["REPLY", "REFRESH", "COUNTER"].includes(itip.method))
    return itip.organizer ? [itip.organizer.address] : [];
  const me = originator.toLowerCase();
  return itip.attendees.map((a) => a.address).filter((a) => a.toLowerCase() !== me);
}

function dedupe(list: readonly string[]): string[] {
  const seen = new Set<string>();
  return list.filter((a) => {
    const k = a.toLowerCase();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export interface RelayRecord {
  /** The message already stored for this mail's iSchedule recipients, if there was one. */
  messageId?: number;
  /** What the mail's iMIP part holds: parsed, or as far as it could be read. */
  itip: ItipMessage | UnparsedItip;
  /** Why the mail was relayed rather than upgraded to iSchedule, when it was an iMIP message. */
  notUpgraded?: string;
  /** Message-ID and Subject of the mail. */
  headers?: HeaderList;
  originator: string;
  peerAddress?: string;
  /** The smarthost, without credentials. */
  relayTarget: string;
  /** Recipients (bare addresses) the smarthost took. */
  accepted: readonly string[];
  /** Recipients it refused for good, with its answer. */
  refused: readonly { address: string; response?: string }[];
  response?: string;
}

/** An iMIP part that is not valid iTIP: its text (empty when it could not be decoded) and what it says of itself. */
export interface UnparsedItip {
  readonly text: string;
  /** The part's "method" parameter or METHOD property. */
  readonly method: string;
  readonly component?: string;
  readonly uid?: string;
  readonly summary?: string;
}

/**
 * Records the recipients of an iMIP mail that the SMTP intake relayed to the smarthost (route
 * `relay`), so the log shows every recipient of the message and how it went: on the message stored
 * for the iSchedule recipients, or on a new one when none went by iSchedule. A message relayed
 * because it could not be upgraded says why on each recipient's attempt.
 */
export function recordRelayed(r: RelayRecord, ctx: SubmitContext): void {
  const now = ctx.nowMs();
  const why =
    r.notUpgraded === undefined
      ? undefined
      : `relayed unchanged, not upgraded to iSchedule: ${r.notUpgraded}`;
  const deliveries: NewDelivery[] = [
    ...r.accepted.map(
      (address): NewDelivery => ({
        recipient: `mailto:${address}`,
        domain: addressDomain(`mailto:${address}`) ?? "",
        route: "relay",
        target: r.relayTarget,
        state: "delivered",
        requestStatus: "1.1;Sent",
        attempt: {
          startedAt: now,
          durationMs: 0,
          route: "relay",
          target: r.relayTarget,
          requestStatus: "1.1;Sent",
          outcome: "delivered",
          error: why,
          response: r.response,
        },
      }),
    ),
    ...r.refused.map(
      (x): NewDelivery => ({
        recipient: `mailto:${x.address}`,
        domain: addressDomain(`mailto:${x.address}`) ?? "",
        route: "relay",
        target: r.relayTarget,
        state: "failed",
        requestStatus: "3.7;Invalid calendar user",
        lastError: `the mail relay refused it: ${x.response ?? "no reason given"}`,
        attempt: {
          startedAt: now,
          durationMs: 0,
          route: "relay",
          target: r.relayTarget,
          outcome: "permanent",
          error: x.response,
          response: x.response,
        },
      }),
    ),
  ];
  if (deliveries.length === 0) return;
  if (r.messageId !== undefined) {
    ctx.queue.addDeliveries(r.messageId, deliveries);
    return;
  }
  const itip = r.itip;
  const component = itip.component ?? "VCALENDAR";
  const body = Buffer.from(itip.text.replace(/\r?\n/g, "\r\n"));
  ctx.queue.accept(
    {
      direction: "outbound",
      intake: "smtp",
      peerAddress: r.peerAddress,
      originator: r.originator,
      method: itip.method,
      component,
      uid: itip.uid,
      summary: itip.summary,
      organizer: "organizer" in itip ? itip.organizer?.address : undefined,
      contentType: `text/calendar; charset=utf-8; method=${itip.method}; component=${component}`,
      body,
      bodyHash: createHash("sha256").update(body).digest("base64"),
      headers: r.headers,
      dkimResult: "trusted",
    },
    deliveries,
  );
}
