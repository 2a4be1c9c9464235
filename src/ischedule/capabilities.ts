/**
 * The capabilities of an iSchedule receiver (draft §5, §9.2): the model our receiver advertises and
 * our sender reads from peers, and the checks the sender makes before sending (draft §3.1 step 2, §5:
 * "MUST check the Receiver's capabilities to ensure it can accept the message").
 *
 * The XML writer is xml-writer.ts (capabilitiesXml), the lenient reader capabilities-reader.ts.
 */
import type { IScheduleErrorElement } from "./errors.ts";
import { sameVersion } from "./headers.ts";
import { type CalendarDataType, isAcceptedMediaType } from "./media-type.ts";

export interface ComponentCapability {
  /** "VEVENT". */
  readonly name: string;
  /** Allowed iTIP methods; empty = any method (draft §9.2.1.3.1). */
  readonly methods: readonly string[];
}

export interface Capabilities {
  /** draft §9.2.1.1; 0 when a peer did not say. */
  readonly serialNumber: number;
  readonly versions: readonly string[];
  /** Empty = not advertised: any component is tried (the DTD requires at least one). */
  readonly components: readonly ComponentCapability[];
  readonly calendarDataTypes: readonly CalendarDataType[];
  /** draft §9.2.1.5: which ATTACH value forms are accepted. */
  readonly attachments: { readonly inline: boolean; readonly external: boolean };
  /** draft -06 §9.2.1.6: RSCALE values (RFC 7529). */
  readonly rscales?: readonly string[];
  /** Octets; undefined = no limit. */
  readonly maxContentLength?: number;
  /** iCalendar UTC DATE-TIME, "19910101T000000Z"; undefined = no limit. */
  readonly minDateTime?: string;
  readonly maxDateTime?: string;
  readonly maxInstances?: number;
  readonly maxRecipients?: number;
  /** A URI to contact the administrator. */
  readonly administrator?: string;
  /** Only in the legacy -00/-01 schema (supported-recipient-uri-scheme-set); never written. */
  readonly recipientUriSchemes?: readonly string[];
}

export const DEFAULT_CALENDAR_DATA_TYPE: CalendarDataType = { contentType: "text/calendar", version: "2.0" };

export interface MessageFacts {
  /** "VEVENT". */
  readonly component: string;
  /** "REQUEST". */
  readonly method: string;
  /** The media type to send ("text/calendar"; parameters ignored). */
  readonly contentType: string;
  /** Octets of the body. */
  readonly sizeBytes: number;
  /**
   * When the message's scheduled instances take place (src/itip/scheduled-span.ts), UTC:
   * "20040902T130000Z" or "20070505". `lastEnd` undefined: the instances go on with no known end.
   */
  readonly scheduled?: { readonly firstStart: string; readonly lastEnd?: string };
  /** Recurrence instances in the message. */
  readonly instances?: number;
  readonly hasInlineAttachment?: boolean;
  readonly hasExternalAttachment?: boolean;
}

export type Acceptance =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** What the peer would refuse and why, for logs and the organizer's status description. */
      readonly reason: string;
      /** The error element the peer would answer with (draft §6.1.2). */
      readonly element: IScheduleErrorElement;
    };

/** Whether the peer advertises `version` (draft §5: "Senders SHOULD check version compatibility"). */
export function supportsVersion(caps: Capabilities, version: string): boolean {
  return caps.versions.some((v) => sameVersion(v, version));
}

/**
 * Checks a message against the peer's advertised restrictions (draft §5, §9.2.1.3 to §9.2.1.10).
 * Limits the peer did not advertise do not restrict. Recipient counts are the caller's (split the
 * recipients into groups of maxRecipients, draft §3.1 step 3).
 */
export function acceptsMessage(caps: Capabilities, message: MessageFacts): Acceptance {
  const refuse = (element: IScheduleErrorElement, reason: string): Acceptance => ({
    ok: false,
    reason,
    element,
  });
  const types = caps.calendarDataTypes.length > 0 ? caps.calendarDataTypes : [DEFAULT_CALENDAR_DATA_TYPE];
  if (!isAcceptedMediaType(message.contentType, types)) {
    return refuse(
      "invalid-calendar-data-type",
      `the peer does not accept ${message.contentType} (accepts ${types.map((t) => t.contentType).join(", ")})`,
    );
  }
  if (caps.components.length > 0) {
    const component = message.component.toUpperCase();
    const method = message.method.toUpperCase();
    const entry = caps.components.find((c) => c.name.toUpperCase() === component);
    if (entry === undefined) {
      const names = caps.components.map((c) => c.name).join(", ");
      return refuse(
        "invalid-scheduling-message",
        `the peer does not accept ${component} messages (accepts ${names})`,
      );
    }
    if (entry.methods.length > 0 && !entry.methods.some((m) => m.toUpperCase() === method)) {
      return refuse(
        "invalid-scheduling-message",
        `the peer does not accept ${component} ${method} (accepts ${entry.methods.join(", ")})`,
      );
    }
  }
  if (caps.maxContentLength !== undefined && message.sizeBytes > caps.maxContentLength) {
    return refuse(
      "max-content-length",
      `the message has ${message.sizeBytes} octets; the peer accepts at most ${caps.maxContentLength}`,
    );
  }
  if (message.hasInlineAttachment && !caps.attachments.inline) {
    return refuse("attachment-type-not-supported", "the peer does not accept inline (binary) attachments");
  }
  if (message.hasExternalAttachment && !caps.attachments.external) {
    return refuse("attachment-type-not-supported", "the peer does not accept external (URI) attachments");
  }
  const outside = outsideDateRange(message.scheduled, caps);
  if (outside) return refuse(outside.element, outside.reason);
  if (
    caps.maxInstances !== undefined &&
    message.instances !== undefined &&
    message.instances > caps.maxInstances
  ) {
    return refuse(
      "max-instances",
      `the message has ${message.instances} instances; the peer accepts at most ${caps.maxInstances}`,
    );
  }
  return { ok: true };
}

/**
 * Whether the scheduled instances miss the receiver's date range (draft §9.2.1.8, §9.2.1.9): every
 * instance is over before min-date-time, or the first one starts after max-date-time. A message
 * with any instance inside the range fits: a series that began before the minimum still has
 * meetings to schedule (CalendarServer's minimum is 1 January of last year).
 */
export function outsideDateRange(
  span: MessageFacts["scheduled"],
  range: { readonly minDateTime?: string; readonly maxDateTime?: string },
): { element: "min-date-time" | "max-date-time"; reason: string } | undefined {
  if (span === undefined) return undefined;
  const last = span.lastEnd === undefined ? undefined : toICalendarUtc(span.lastEnd);
  if (range.minDateTime !== undefined && last !== undefined && last < range.minDateTime) {
    return {
      element: "min-date-time",
      reason: `every instance of the message is over by ${last}, before the minimum ${range.minDateTime}`,
    };
  }
  const first = toICalendarUtc(span.firstStart);
  if (range.maxDateTime !== undefined && first !== undefined && first > range.maxDateTime) {
    return {
      element: "max-date-time",
      reason: `the first instance of the message starts at ${first}, after the maximum ${range.maxDateTime}`,
    };
  }
  return undefined;
}

const UTC_DATE_TIME = /^\d{8}T\d{6}Z$/;
const DATE = /^\d{8}$/;

/**
 * An iCalendar UTC DATE-TIME ("19910101T000000Z") from a DATE-TIME, a DATE (midnight) or a Date;
 * undefined when it is none of those. Values of this form compare correctly as strings.
 */
export function toICalendarUtc(value: string | Date): string | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    const iso = value
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z")
      .replace(/[-:]/g, "");
    // Years outside 0000-9999 have no iCalendar form.
    return UTC_DATE_TIME.test(iso) ? iso : undefined;
  }
  const v = value.trim();
  if (UTC_DATE_TIME.test(v)) return v;
  if (DATE.test(v)) return `${v}T000000Z`;
  return undefined;
}
