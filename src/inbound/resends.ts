/**
 * A peer that sends the same iTIP message again, under a new iSchedule-Message-ID, gets it delivered
 * once and each copy gets the first answer. Replays (replays.ts) cannot catch these: a new message id
 * is a new signature, a new replay key.
 *
 * Why peers do it. Apple CalendarServer (txdav/caldav/datastore/scheduling/work.py) sends each iTIP
 * message from a work item; ScheduleWorkMixin.checkTemporaryFailure() raises JobTemporaryError when
 * every recipient's status is 1.0, so the work item runs again after TemporaryFailureDelay (60 s),
 * up to MaxTemporaryFailures (10) times (twistedcaldav/stdconfig.py). Each run signs a new request,
 * and DKIMRequest.__init__() (ischedule/dkim.py) gives every request a new uuid4 message id. Its
 * sender (ischedule/delivery.py, IScheduleRequest.doRequest) also answers 1.0 itself when it could
 * not connect, so 1.0 there means "try again". isched therefore answers 1.1 for what it holds
 * (answers.ts); this module covers the copies that still come (a peer that timed out before the
 * answer, or an older isched that answered 1.0).
 *
 * What makes a copy (src/intake/copies.ts): the same Originator and recipient, and the same iTIP
 * revision, within the replay window of the first (its signature's life; a day for a trusted local
 * server's unsigned request). The key is per recipient, so a copy sent to one more recipient
 * delivers to that one only. Free/busy queries are not messages and are never held back.
 *
 * Where: every request through the iSchedule endpoint, from remote peers and from trusted local
 * servers alike (a local CalendarServer that posts its outbound messages to isched retries the same
 * way). Not the SMTP intake, which already skips the recipients an SMTP client's retry of one message
 * repeats (src/smtp-intake/retry-memory.ts), nor the submission API (isched's own command line: a
 * person sending again means it).
 */
import { parseScheduleResponse } from "../ischedule/response-reader.ts";
import { type ScheduleResponseItem, scheduleResponseXml } from "../ischedule/xml-writer.ts";
import { addressKey } from "../itip/index.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import { HELD, HELD_STATUS } from "./answers.ts";

/** A stored message's answer: the one recorded when it was answered, or one read from its deliveries. */
export async function answerOfMessage(
  queue: Pick<DeliveryQueue, "messageRow" | "deliveriesOf">,
  messageId: number,
): Promise<{ status: number; xml: string; messageUuid: string } | undefined> {
  const message = await queue.messageRow(messageId);
  if (!message) return undefined;
  if (message.responseStatus !== null && message.responseBody !== null)
    return { status: message.responseStatus, xml: message.responseBody, messageUuid: message.uuid };
  // The process stopped between storing the message and answering it: answer as things stand.
  const items = (await queue.deliveriesOf(message.id)).map(
    (d): ScheduleResponseItem =>
      d.state === "delivered" || d.state === "failed"
        ? {
            recipient: d.recipient,
            requestStatus: d.requestStatus ?? HELD_STATUS,
            description: d.lastError ?? undefined,
          }
        : { recipient: d.recipient, requestStatus: HELD_STATUS, description: HELD },
  );
  return { status: 200, xml: scheduleResponseXml(items), messageUuid: message.uuid };
}

/**
 * The item a first answer gave `recipient` (matched like calendar user addresses), written for the
 * copy's own Recipient value; undefined when the answer has no such item or cannot be read.
 */
export function itemOf(xml: string, recipient: string): ScheduleResponseItem | undefined {
  let answer: ReturnType<typeof parseScheduleResponse>;
  try {
    answer = parseScheduleResponse(xml);
  } catch {
    return undefined;
  }
  if (answer.kind !== "responses") return undefined;
  const item = answer.responses.find((r) => addressKey(r.recipient) === addressKey(recipient));
  return item && { ...item, recipient };
}
