/**
 * The facts a sender checks against a receiver's capabilities before sending (draft §5: Senders
 * SHOULD check the message against the advertised restrictions), taken from a
 * parsed iTIP message. Pure.
 *
 * Instances are counted only for a bounded recurrence, exactly as isched's own receiver decides
 * (src/inbound/itip-checks.ts): an RRULE without COUNT or UNTIL never ends, and max-instances cannot
 * mean to refuse "weekly, forever", so a sender must not refuse it on the receiver's behalf either.
 *
 * The facts no receiver changes (attachments, scheduled span, whether the recurrence is bounded) are
 * taken once at intake and kept with the message (ItipSendFacts): each send then checks them without
 * parsing the stored body again. Only a bounded recurrence sent to a receiver that advertises
 * max-instances still needs the parsed message, to count its instances up to that receiver's limit.
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
  const send = sendFactsOf(itip);
  const facts = withSendFacts(
    { component: itip.component, method: itip.method, contentType: i.contentType, sizeBytes: i.sizeBytes },
    send,
  );
  if (send.bounded && countsInstances(i.maxInstances)) {
    try {
      facts.instances = countInstances(itip, i.maxInstances!);
    } catch {
      // A recurrence ical.js cannot expand: leave the count to the receiver, which answers precisely.
    }
  }
  return facts;
}

/** The facts of an iTIP message that no receiver changes, kept with the message at intake. */
export interface ItipSendFacts {
  readonly inlineAttachment: boolean;
  readonly externalAttachment: boolean;
  readonly scheduled?: MessageFacts["scheduled"];
  /** A recurrence with a known end (RRULE with COUNT or UNTIL, or RDATEs): its instances count. */
  readonly bounded: boolean;
}

export function sendFactsOf(itip: ItipMessage): ItipSendFacts {
  const span = scheduledSpan(itip);
  return {
    inlineAttachment: itip.attachments.inline > 0,
    externalAttachment: itip.attachments.external > 0,
    ...(span !== undefined ? { scheduled: span } : {}),
    bounded: (itip.recurrence.rrule && !itip.recurrence.openEnded) || itip.recurrence.rdates > 0,
  };
}

/** Whether a receiver's max-instances makes a sender count instances (a non-negative integer). */
export function countsInstances(maxInstances: number | undefined): boolean {
  return maxInstances !== undefined && Number.isInteger(maxInstances) && maxInstances >= 0;
}

/**
 * The facts to check against a receiver from the stored columns and the kept send facts, without
 * the body's iTIP; undefined when they do not suffice (a bounded recurrence and a receiver that
 * advertises max-instances: only the parsed message can count the instances).
 */
export function storedMessageFacts(i: {
  component: string;
  method: string;
  sizeBytes: number;
  contentType?: string;
  sendFacts: ItipSendFacts;
  maxInstances?: number;
}): MessageFacts | undefined {
  if (i.sendFacts.bounded && countsInstances(i.maxInstances)) return undefined;
  return withSendFacts(i, i.sendFacts);
}

function withSendFacts(
  m: { component: string; method: string; sizeBytes: number; contentType?: string },
  s: ItipSendFacts,
): { -readonly [K in keyof MessageFacts]: MessageFacts[K] } {
  return {
    component: m.component,
    method: m.method,
    contentType: m.contentType ?? "text/calendar",
    sizeBytes: m.sizeBytes,
    hasInlineAttachment: s.inlineAttachment,
    hasExternalAttachment: s.externalAttachment,
    ...(s.scheduled !== undefined ? { scheduled: s.scheduled } : {}),
  };
}

/** The send facts as stored with the message (a JSON object). */
export function storableSendFacts(facts: ItipSendFacts): string {
  return JSON.stringify(facts);
}

/**
 * Stored send facts read back; undefined when there are none (a message stored before they were
 * kept, or by a path that does not keep them) or they are not of this shape: then the body is parsed.
 */
export function readSendFacts(stored: string | null | undefined): ItipSendFacts | undefined {
  if (!stored) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(stored);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const f = v as Record<string, unknown>;
  if (typeof f.inlineAttachment !== "boolean" || typeof f.externalAttachment !== "boolean") return undefined;
  if (typeof f.bounded !== "boolean") return undefined;
  const span = f.scheduled as Record<string, unknown> | undefined;
  if (span !== undefined) {
    if (typeof span !== "object" || span === null || typeof span.firstStart !== "string") return undefined;
    if (span.lastEnd !== undefined && typeof span.lastEnd !== "string") return undefined;
  }
  return {
    inlineAttachment: f.inlineAttachment,
    externalAttachment: f.externalAttachment,
    bounded: f.bounded,
    ...(span !== undefined
      ? {
          scheduled: {
            firstStart: span.firstStart as string,
            ...(span.lastEnd !== undefined ? { lastEnd: span.lastEnd as string } : {}),
          },
        }
      : {}),
  };
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
