/**
 * The facts a sender checks against a receiver's capabilities before sending (draft §5: Senders
 * SHOULD check the message against the advertised restrictions), taken from a
 * parsed iTIP message. Pure.
 *
 * Instances are counted only for a bounded recurrence, exactly as isched's own receiver decides
 * (src/inbound/itip-checks.ts): an RRULE without COUNT or UNTIL never ends, and max-instances cannot
 * mean to refuse "weekly, forever", so a sender must not refuse it on the receiver's behalf either.
 */
import type { MessageFacts } from "../ischedule/capabilities.ts";
import { countInstances, type ItipMessage, parseItip, scheduledSpan } from "../itip/index.ts";

export interface MessageFactsInput {
  itip: ItipMessage;
  /** Octets of the body as it will be sent. */
  sizeBytes: number;
  /** The media type sent; default "text/calendar" (what isched stores and sends, draft §6.1). */
  contentType?: string;
  /** The receiver's max-instances (draft §9.2.1.10); instances are counted only when it is set. */
  maxInstances?: number;
}

export function messageFacts(i: MessageFactsInput): MessageFacts {
  const { itip } = i;
  const facts: { -readonly [K in keyof MessageFacts]: MessageFacts[K] } = {
    component: itip.component,
    method: itip.method,
    contentType: i.contentType ?? "text/calendar",
    sizeBytes: i.sizeBytes,
    hasInlineAttachment: itip.attachments.inline > 0,
    hasExternalAttachment: itip.attachments.external > 0,
  };
  const span = scheduledSpan(itip);
  if (span !== undefined) facts.scheduled = span;
  const bounded = (itip.recurrence.rrule && !itip.recurrence.openEnded) || itip.recurrence.rdates > 0;
  if (i.maxInstances !== undefined && Number.isInteger(i.maxInstances) && i.maxInstances >= 0 && bounded) {
    try {
      facts.instances = countInstances(itip, i.maxInstances);
    } catch {
      // A recurrence ical.js cannot expand: leave the count to the receiver, which answers precisely.
    }
  }
  return facts;
}

/** A stored message body read back as iTIP, or why it cannot be. */
export type StoredItip = { readonly itip: ItipMessage; readonly text: string } | { readonly problem: string };

/** The stored body as an iTIP message; it was checked on intake, so a problem here is isched's own. */
export function readStoredItip(body: Uint8Array, messageUuid: string): StoredItip {
  const text = new TextDecoder().decode(body);
  try {
    return { itip: parseItip(text), text };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { problem: `the stored message ${messageUuid} is not a readable iTIP message: ${why}` };
  }
}
