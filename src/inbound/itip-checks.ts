/**
 * The body checks of a scheduling POST (draft §6.1, §9.2): a valid iTIP message, consistent with its
 * Content-Type and within the advertised capabilities. Pure: each failure is an IScheduleError. The
 * Originator and Recipients the method allows are checked by the intake, for every source
 * (src/intake/accept.ts).
 */
import { type Capabilities, outsideDateRange } from "../ischedule/capabilities.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import type { ContentType } from "../ischedule/media-type.ts";
import type { ItipMessage, ItipProblem } from "../itip/index.ts";
import { checkMethodAllowed, countInstances, ItipError, parseItip, scheduledSpan } from "../itip/index.ts";

export interface ItipCheckInput {
  body: Uint8Array;
  contentType: ContentType;
  capabilities: Capabilities;
}

const problem = (p: ItipProblem): IScheduleError => new IScheduleError(p.element, p.message);

export function checkItip(i: ItipCheckInput): ItipMessage {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(i.body);
  } catch {
    throw new IScheduleError("invalid-calendar-data", "The body is not UTF-8 text.");
  }
  let msg: ItipMessage;
  try {
    msg = parseItip(text);
  } catch (e) {
    if (e instanceof ItipError) throw new IScheduleError(e.kind, e.message);
    throw e;
  }
  const ct = i.contentType;
  if (ct.method && ct.method.toUpperCase() !== msg.method) {
    throw new IScheduleError(
      "invalid-scheduling-message",
      `Content-Type says method=${clip(ct.method)} but the body's METHOD is ${clip(msg.method)}.`,
    );
  }
  if (ct.component && ct.component.toUpperCase() !== msg.component) {
    throw new IScheduleError(
      "invalid-scheduling-message",
      `Content-Type says component=${clip(ct.component)} but the body holds a ${clip(msg.component)}.`,
    );
  }
  const caps = i.capabilities;
  const notAllowed = checkMethodAllowed(msg, caps.components);
  if (notAllowed) throw problem(notAllowed);
  if (msg.attachments.inline > 0 && !caps.attachments.inline) {
    throw new IScheduleError(
      "attachment-type-not-supported",
      "Inline (binary) attachments are not accepted here; send attachments as URLs.",
    );
  }
  if (msg.attachments.external > 0 && !caps.attachments.external) {
    throw new IScheduleError("attachment-type-not-supported", "URL attachments are not accepted here.");
  }
  // The same rule isched's sender applies to peers (outbound/message-facts.ts): scheduled instances only.
  const outside = outsideDateRange(scheduledSpan(msg), caps);
  if (outside) throw new IScheduleError(outside.element, `${capitalize(outside.reason)}.`);
  // An open-ended RRULE (no COUNT or UNTIL) never ends; max-instances cannot mean to refuse "weekly, forever".
  const finite = (msg.recurrence.rrule && !msg.recurrence.openEnded) || msg.recurrence.rdates > 0;
  if (
    caps.maxInstances !== undefined &&
    finite &&
    countInstances(msg, caps.maxInstances) > caps.maxInstances
  ) {
    throw new IScheduleError("max-instances", `The recurrence has more than ${caps.maxInstances} instances.`);
  }
  return msg;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** What the sender wrote, quoted without echoing kilobytes back at it. */
function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
