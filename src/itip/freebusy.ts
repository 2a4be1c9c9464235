/**
 * Free/busy bodies: narrowing a VFREEBUSY REQUEST to the attendees one receiver serves (draft §3.1),
 * building the METHOD:REPLY a receiver returns in IS:calendar-data (RFC 5546 §3.3.3, draft A.2), and
 * reading such a reply back.
 */
import ICAL from "ical.js";
import { calAddressOf, isoOf, parameter, parseUtc, serialize } from "./_ical.ts";
import type { JCalComponent, JCalProperty } from "./_validate.ts";
import { addressKey, sameAddress } from "./address.ts";
import { invalidMessage } from "./errors.ts";
import { calendarFor, parseItip } from "./parse.ts";
import type { CalAddress, ItipMessage } from "./types.ts";

export type BusyType = "BUSY" | "BUSY-TENTATIVE" | "BUSY-UNAVAILABLE";

export interface BusyPeriod {
  /** UTC, as `2004-09-02T12:00:00Z` or `20040902T120000Z`. */
  readonly start: string;
  readonly end: string;
  /** FBTYPE; BUSY when absent (RFC 5545 §3.2.9). */
  readonly type?: BusyType;
}

export interface FreeBusyReplyOptions {
  /** The ATTENDEE of the request the reply is for. */
  readonly attendee: string;
  readonly busy: readonly BusyPeriod[];
  readonly prodId: string;
  /** Clock for DTSTAMP, in milliseconds. */
  readonly nowMs: number;
}

export interface FreeBusyReply {
  readonly uid: string;
  readonly organizer?: CalAddress;
  readonly attendee: CalAddress;
  /** The queried range, `2004-09-02T00:00:00Z` form. */
  readonly start?: string;
  readonly end?: string;
  /** Busy periods in UTC (`2004-09-02T12:00:00Z` form), sorted by start then end; FBTYPE=FREE left out. */
  readonly periods: readonly Required<BusyPeriod>[];
}

const BUSY_TYPES: readonly string[] = ["BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"];

/**
 * The VFREEBUSY REQUEST with only the given ATTENDEEs (as CalendarServer's removeAllButTheseAttendees),
 * re-serialised with CRLF and folding. Throws ItipError when the text is not a valid request, and
 * TypeError when `keep` is empty or names someone who is not an ATTENDEE.
 */
export function restrictFreeBusyAttendees(text: string, keep: readonly string[]): string {
  const message = parseItip(text);
  requireFreeBusy(message, "REQUEST");
  if (keep.length === 0)
    throw new TypeError("a free/busy request needs at least one ATTENDEE (RFC 5546 §3.3.2)");
  const present = new Set(message.attendeeAddresses.map(addressKey));
  const stranger = keep.find((k) => !present.has(addressKey(k)));
  if (stranger !== undefined) throw new TypeError(`${stranger} is not an ATTENDEE of the free/busy request`);
  const wanted = new Set(keep.map(addressKey));
  // This parse is private to the call, so changing its tree in place is safe.
  const calendar = calendarFor(message);
  const vfreebusy = calendar.getFirstSubcomponent("vfreebusy")!;
  for (const property of vfreebusy.getAllProperties("attendee")) {
    if (!wanted.has(addressKey(calAddressOf(property).address))) vfreebusy.removeProperty(property);
  }
  return serialize(calendar);
}

/**
 * The METHOD:REPLY VFREEBUSY for one ATTENDEE of a request: same UID, ORGANIZER, DTSTART and DTEND,
 * one ATTENDEE, DTSTAMP from the clock, and one FREEBUSY property per FBTYPE (in the order the types
 * first occur), periods sorted (RFC 5546 §3.3) and clipped to the requested range. Throws TypeError for
 * a request that is not a VFREEBUSY REQUEST, an unknown attendee or a malformed period.
 */
export function freeBusyReplyFor(request: ItipMessage, options: FreeBusyReplyOptions): string {
  requireFreeBusy(request, "REQUEST");
  const attendee = request.attendees.find((a) => sameAddress(a.address, options.attendee));
  if (!attendee) throw new TypeError(`${options.attendee} is not an ATTENDEE of the free/busy request`);
  if (!/^[^\x00-\x1f\x7f]+$/.test(options.prodId))
    throw new TypeError("prodId must be a non-empty single line");
  // parseItip() requires ORGANIZER, DTSTART and DTEND in a VFREEBUSY REQUEST (RFC 5546 §3.3.2).
  const from = parseUtc(request.start!)!;
  const to = parseUtc(request.end!)!;

  const periods = options.busy
    .map((period) => {
      const start = parseUtc(period.start);
      const end = parseUtc(period.end);
      if (start === undefined || end === undefined || end <= start) {
        throw new TypeError(`busy period ${period.start}/${period.end} is not a UTC start before a UTC end`);
      }
      return { start: Math.max(start, from), end: Math.min(end, to), type: period.type ?? "BUSY" };
    })
    .filter((p) => p.start < p.end)
    .sort((a, b) => a.start - b.start || a.end - b.end);
  const byType = new Map<string, [string, string][]>();
  for (const p of periods) {
    const list = byType.get(p.type) ?? [];
    list.push([jcalUtc(p.start), jcalUtc(p.end)]);
    byType.set(p.type, list);
  }

  const organizer = request.organizer!;
  const properties: JCalProperty[] = [
    ["dtstamp", {}, "date-time", jcalUtc(options.nowMs)],
    ["organizer", cn(organizer), "cal-address", organizer.address],
    ["dtstart", {}, "date-time", jcalUtc(from)],
    ["dtend", {}, "date-time", jcalUtc(to)],
    ["uid", {}, "text", request.uid],
    ["attendee", cn(attendee), "cal-address", attendee.address],
    ...[...byType].map(([type, list]): JCalProperty => ["freebusy", { fbtype: type }, "period", ...list]),
  ];
  const jcal: JCalComponent = [
    "vcalendar",
    [
      ["version", {}, "text", "2.0"],
      ["prodid", {}, "text", options.prodId],
      ["method", {}, "text", "REPLY"],
    ],
    [["vfreebusy", properties, []]],
  ];
  return serialize(new ICAL.Component(jcal));
}

/** Reads a METHOD:REPLY VFREEBUSY; throws ItipError for anything else. */
export function parseFreeBusyReply(text: string): FreeBusyReply {
  const message = parseItip(text);
  if (message.component !== "VFREEBUSY" || message.method !== "REPLY") {
    throw invalidMessage(
      `A free/busy reply is a METHOD:REPLY VFREEBUSY, not METHOD:${message.method} ${message.component}`,
    );
  }
  const vfreebusy = calendarFor(message).getFirstSubcomponent("vfreebusy")!;
  const periods: Required<BusyPeriod>[] = [];
  for (const property of vfreebusy.getAllProperties("freebusy")) {
    const fbtype = parameter(property, "fbtype")?.toUpperCase() ?? "BUSY";
    if (fbtype === "FREE") continue;
    // RFC 5545 §3.2.9: unknown FBTYPE values are treated as BUSY.
    const type = (BUSY_TYPES.includes(fbtype) ? fbtype : "BUSY") as BusyType;
    for (const value of property.getValues() as unknown[]) {
      if (value instanceof ICAL.Period)
        periods.push({ start: isoOf(value.start), end: isoOf(value.getEnd()), type });
    }
  }
  periods.sort((a, b) =>
    a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0,
  );
  return {
    uid: message.uid,
    ...(message.organizer && { organizer: message.organizer }),
    attendee: message.attendees[0]!,
    ...(message.start && { start: message.start }),
    ...(message.end && { end: message.end }),
    periods,
  };
}

function requireFreeBusy(message: ItipMessage, method: string): void {
  if (message.component !== "VFREEBUSY" || message.method !== method) {
    throw new TypeError(
      `expected a METHOD:${method} VFREEBUSY, not METHOD:${message.method} ${message.component}`,
    );
  }
}

function cn(address: CalAddress): Record<string, unknown> {
  return address.name === undefined ? {} : { cn: address.name };
}

/** jCal's DATE-TIME form: `2004-09-02T00:00:00Z`, whole seconds. */
function jcalUtc(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
