/**
 * What a scheduling POST answers: an iSchedule error for a refused request (draft §6.1.2), else one
 * item per recipient (draft §6.1.1): a local target's own answer when it gave one by the deadline,
 * 3.7 for a recipient isched does not serve, the first answer for a copy of a message already
 * accepted (resends.ts), and otherwise "held".
 */

import type { RecipientOutcome } from "../delivery/target.ts";
import type { IScheduleError, IScheduleErrorElement } from "../ischedule/errors.ts";
import type { Recipient } from "../ischedule/headers.ts";
import { classifyStatus, STATUS } from "../ischedule/status.ts";
import { errorXml, type ScheduleResponseItem } from "../ischedule/xml-writer.ts";
import type { NewDelivery } from "../queue/queue.ts";

/** The endpoint's answer to a scheduling POST. */
export interface EndpointAnswer {
  status: number;
  xml: string;
  headers?: Record<string, string>;
  /** The stored message (or the refused request's log entry), when there is one. */
  messageUuid?: string;
  /** A refusal's error element (draft §6.1.2), for the metrics. */
  element?: IScheduleErrorElement;
}

/** A refused request's answer: its iSchedule error element and description (draft §6.1.2). */
export function refusal(e: IScheduleError, retryAfterSeconds?: number): EndpointAnswer {
  return {
    status: e.httpStatus,
    xml: errorXml(e.element, e.publicMessage),
    element: e.element,
    headers: retryAfterSeconds ? { "Retry-After": String(retryAfterSeconds) } : undefined,
  };
}

/**
 * What a recipient whose message isched holds, but has not delivered by the deadline, is answered:
 * 1.1 "Sent" (RFC 6638 §3.2.9.2, in the REQUEST-STATUS registry of RFC 5546 §7.3 that the draft's
 * request-status carries, §9.1.1.2): sent, delivery not yet known, as with "store and forward"
 * protocols. isched has committed the message to its queue and will deliver it, so the sender's part
 * is done. How peers read the candidates:
 * - 1.0 "Pending" (what isched answered before): CalendarServer treats a response whose recipients
 *   are all 1.0 as "could not connect" and sends the message again every 60 s, up to 10 times, each
 *   time with a new message id (work.py, ScheduleWorkMixin.checkTemporaryFailure; see resends.ts).
 * - 1.1: CalendarServer ends the work item and records SCHEDULE-STATUS=1.1 on the recipient
 *   (work.py, extractSchedulingResponse and handleSchedulingResponse keep any code but 1.2), as it
 *   does for its own iMIP; Cyrus (imap/http_caldav_sched.c, sched_deliver_remote) keeps the code as
 *   the SCHEDULE-STATUS and never retries; isched's own sender counts 1.1 as delivered
 *   (classifyStatus).
 * - 1.2 "Delivered" or 2.0 "Success" would also stop the resends, but say more than isched knows:
 *   the calendar has not taken the message yet (Cyrus turns 2.0 into 1.2, delivered).
 * A free/busy request is a question, not a message to deliver later: 5.1 when it is not answered.
 */
export const HELD_STATUS = STATUS.sent;

/** Its description, for a recipient whose message is still being delivered. */
export const HELD = "Accepted: isched holds the message and is delivering it.";

/** Outcomes of the deliveries finished by the deadline, by the index of their recipient. */
export type Finished = ReadonlyMap<number, RecipientOutcome>;

/** One item per Recipient header, in order (draft §6.1.1). */
export function responseItems(o: {
  recipients: readonly Recipient[];
  deliveries: readonly NewDelivery[];
  decided: ReadonlyMap<number, RecipientOutcome>;
  finished: Finished;
  /** The items an earlier message's answer gave the recipients it holds (resends.ts). */
  copies: ReadonlyMap<number, ScheduleResponseItem>;
  freeBusy: boolean;
}): ScheduleResponseItem[] {
  return o.recipients.map((r, i) => {
    const d = o.deliveries[i]!;
    const copy = o.copies.get(i);
    if (copy) return copy;
    const early = o.decided.get(i);
    if (early)
      return {
        recipient: r.address,
        requestStatus: early.requestStatus,
        calendarData: early.calendarData,
        description: early.description,
      };
    if (d.state === "failed")
      return { recipient: r.address, requestStatus: d.requestStatus!, description: d.lastError };
    const outcome = o.finished.get(i);
    if (!outcome) {
      return o.freeBusy
        ? {
            recipient: r.address,
            requestStatus: STATUS.serviceUnavailable,
            description: "The calendar did not answer in time.",
          }
        : { recipient: r.address, requestStatus: HELD_STATUS, description: HELD };
    }
    const kind = classifyStatus(outcome.requestStatus);
    if (!o.freeBusy && (kind === "temporary" || kind === "pending")) {
      return {
        recipient: r.address,
        requestStatus: HELD_STATUS,
        description: "Accepted: the calendar cannot take it now; isched holds the message and retries.",
      };
    }
    return {
      recipient: r.address,
      requestStatus: outcome.requestStatus,
      calendarData: outcome.calendarData,
      description: outcome.description,
    };
  });
}
