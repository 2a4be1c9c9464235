/**
 * A human view of a scheduling message, for the admin console and the text part of iMIP mail
 * (RFC 6047 §2.4: "SHOULD include a human-readable alternative"). English, times in UTC. The text
 * comes from the peer: titles are made single-line here, escaping is the renderer's job.
 */
import { uniqueReplier } from "./_replier.ts";
import { displayAddress } from "./address.ts";
import type { Attendee, CalAddress, ItipMessage } from "./types.ts";

export interface ItipSummary {
  /** "Invitation: Design meeting", "Reply: Cyrus Daboo accepted \"Design meeting\"", "Cancelled: ..." */
  readonly title: string;
  /** "Thu 2 Sep 2004, 13:00-14:00 UTC" and the like. */
  readonly when: string;
  /** "Bernard Desruisseaux <bernard@example.com>" */
  readonly organizer?: string;
  readonly attendees: readonly {
    readonly name: string;
    readonly address: string;
    readonly partstat: string;
  }[];
}

const PARTSTAT_VERBS: Readonly<Record<string, string>> = {
  ACCEPTED: "accepted",
  DECLINED: "declined",
  TENTATIVE: "tentatively accepted",
  DELEGATED: "delegated",
  "NEEDS-ACTION": "has not decided yet",
  COMPLETED: "completed",
  "IN-PROCESS": "is working on",
};

/** The ATTENDEE a REPLY, REFRESH or COUNTER comes from, when the message shows a single one. */
export function replyingAttendee(message: ItipMessage): Attendee | undefined {
  return ["REPLY", "REFRESH", "COUNTER"].includes(message.method)
    ? uniqueReplier(message.attendees)
    : undefined;
}

export function describeItip(message: ItipMessage): ItipSummary {
  return {
    title: oneLine(titleOf(message)),
    when: whenOf(message),
    ...(message.organizer && { organizer: oneLine(person(message.organizer)) }),
    attendees: message.attendees.map((a) => ({
      name: oneLine(nameOf(a)),
      address: a.address,
      // RFC 5545 §3.2.12: PARTSTAT defaults to NEEDS-ACTION.
      partstat: a.partstat ?? "NEEDS-ACTION",
    })),
  };
}

function titleOf(message: ItipMessage): string {
  const { method, component } = message;
  const subject = message.summary?.trim() || "(no title)";
  const replier = replyingAttendee(message);
  const from = replier ? nameOf(replier) : "an attendee";
  const organizer = message.organizer ? nameOf(message.organizer) : "the organizer";
  if (component === "VFREEBUSY") {
    if (method === "REQUEST") return `Free/busy request from ${organizer}`;
    if (method === "REPLY") return `Free/busy reply from ${from}`;
    if (method === "PUBLISH") return `Free/busy published by ${organizer}`;
  }
  const updated = message.sequence > 0;
  switch (method) {
    case "REQUEST":
      if (component === "VTODO") return `${updated ? "Updated task" : "Task"}: ${subject}`;
      if (component === "VPOLL") return `Poll: ${subject}`;
      return `${updated ? "Updated invitation" : "Invitation"}: ${subject}`;
    case "REPLY": {
      const partstat = replier?.partstat;
      const verb = partstat ? (PARTSTAT_VERBS[partstat] ?? `replied ${partstat.toLowerCase()}`) : "replied";
      return message.summary?.trim() ? `Reply: ${from} ${verb} "${subject}"` : `Reply: ${from} ${verb}`;
    }
    case "CANCEL":
      return `Cancelled: ${subject}`;
    case "PUBLISH":
      return `Published: ${subject}`;
    case "ADD":
      return `New occurrences: ${subject}`;
    case "REFRESH":
      return `Refresh request from ${from}: ${subject}`;
    case "COUNTER":
      return `Counter-proposal from ${from}: ${subject}`;
    case "DECLINECOUNTER":
      return `Counter-proposal declined: ${subject}`;
    case "POLLSTATUS":
      return `Poll status: ${subject}`;
    default:
      return `${method}: ${subject}`;
  }
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function whenOf(message: ItipMessage): string {
  const start = message.start ? instant(message.start) : undefined;
  const end = message.end ? instant(message.end) : undefined;
  const repeating = message.recurrence.rrule || message.recurrence.rdates > 0 ? ", repeating" : "";
  if (!start && !end) return "no date given";
  if (!start)
    return `due ${end!.isDate ? day(end!.date) : `${day(end!.date)} ${clock(end!.date)} UTC`}${repeating}`;
  if (start.isDate) {
    // An all-day DTEND is exclusive: the event's last day is the one before.
    const last = end ? new Date(end.date.getTime() - (end.isDate ? 86_400_000 : 0)) : start.date;
    const range =
      last.getTime() > start.date.getTime() ? `${day(start.date)} - ${day(last)}` : day(start.date);
    return `${range} (all day)${repeating}`;
  }
  if (!end) return `${day(start.date)}, ${clock(start.date)} UTC${repeating}`;
  if (day(start.date) === day(end.date)) {
    return `${day(start.date)}, ${clock(start.date)}-${clock(end.date)} UTC${repeating}`;
  }
  return `${day(start.date)} ${clock(start.date)} - ${day(end.date)} ${clock(end.date)} UTC${repeating}`;
}

function instant(iso: string): { date: Date; isDate: boolean } {
  const isDate = iso.length === 10;
  return { date: new Date(isDate ? `${iso}T00:00:00Z` : iso), isDate };
}

const day = (d: Date) =>
  `${DAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
const clock = (d: Date) =>
  `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;

function nameOf(address: CalAddress): string {
  return address.name?.trim() || displayAddress(address.address);
}

function person(address: CalAddress): string {
  const name = address.name?.trim();
  return name ? `${name} <${displayAddress(address.address)}>` : displayAddress(address.address);
}

function oneLine(text: string): string {
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 197)}...` : flat;
}
