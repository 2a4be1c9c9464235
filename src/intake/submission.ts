/**
 * A scheduling message from the organisation's side, through the submission API (`POST
 * /api/v1/messages`, `isched send`) or the SMTP intake: its checks (a valid iTIP message, an
 * Originator in a hosted domain, at least one calendar user address to send to), then the intake
 * (accept.ts), which routes users of hosted domains to their local target and everyone else to
 * iSchedule with an iMIP fallback time. isched only sends for its own domains: an Originator
 * elsewhere is refused, so it can never be used as an open relay.
 */

import { createHash } from "node:crypto";
import { addressDomain, isCalendarUserAddress, normalizeAddress } from "../ischedule/address.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { ItipError, type ItipMessage, parseItip } from "../itip/index.ts";
import type { HeaderList, Intake } from "../store/store.ts";
import type { IntakeService } from "./accept.ts";

export interface Submission {
  intake: Extract<Intake, "api" | "smtp" | "cli">;
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

/**
 * Checks and accepts a submission; with `deadlineMs`, attempts its deliveries at once and waits that
 * long. Throws IScheduleError (invalid-calendar-data, invalid-scheduling-message, originator-*,
 * recipient-*).
 */
export async function submit(
  intake: IntakeService,
  s: Submission,
  o: { deadlineMs?: number } = {},
): Promise<SubmitResult> {
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
  if (!intake.hosted(originatorDomain)) {
    throw new IScheduleError(
      "originator-denied",
      `${originatorDomain || originator} is not a domain served here; isched sends only for its own domains.`,
    );
  }
  const recipients = dedupe(
    (s.recipients ?? impliedRecipients(itip, originator)).map((r) => r.trim()).filter((r) => r !== ""),
  );
  if (recipients.length === 0) throw new IScheduleError("recipient-missing", "The message has no recipient.");
  for (const r of recipients) {
    if (!isCalendarUserAddress(r))
      throw new IScheduleError("recipient-missing", `"${r}" is not a calendar user address.`);
  }

  const body = Buffer.from(itip.text.replace(/\r?\n/g, "\r\n"));
  const result = await intake.accept(
    {
      source: s.intake,
      itip,
      originator,
      recipients,
      stored: {
        peerAddress: s.peerAddress,
        contentType: `text/calendar; charset=utf-8; method=${itip.method}; component=${itip.component}`,
        body,
        bodyHash: createHash("sha256").update(body).digest("base64"),
        headers: s.headers,
        dkimResult: "trusted",
      },
    },
    { deadlineMs: o.deadlineMs },
  );
  // No replay key and no copy keys are claimed for a submission: it is always stored.
  if (result.kind !== "accepted") throw new Error(`a submission was not stored (${result.kind})`);
  return {
    messageId: result.accepted.messageId,
    uuid: result.accepted.uuid,
    originator,
    method: itip.method,
    component: itip.component,
    itip,
    recipients: recipients.map((recipient, i) => ({
      recipient,
      deliveryId: result.deliveryIds.get(i)!,
      route: result.deliveries[i]!.route as "local" | "ischedule",
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
