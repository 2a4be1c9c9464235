/**
 * Narrow, typed wrappers around the parts of ical.js this folder uses (its declarations return unions
 * and `any`), the UTC/ISO formatting of times, and RFC 5545 §3.1 line folding.
 */
import ICAL from "ical.js";
import { normalizeAddress } from "./address.ts";
import type { Attendee, CalAddress } from "./types.ts";

export type Component = ICAL.Component;
export type Property = ICAL.Property;
export type Time = ICAL.Time;

export function firstValue(component: Component, name: string): unknown {
  return component.getFirstProperty(name)?.getFirstValue() ?? undefined;
}

export function textOf(component: Component, name: string): string | undefined {
  const value = firstValue(component, name);
  return typeof value === "string" ? value : undefined;
}

export function timeOf(component: Component, name: string): Time | undefined {
  const value = firstValue(component, name);
  return value instanceof ICAL.Time ? value : undefined;
}

/** A parameter as a list (ical.js returns a string or an array depending on how many there are). */
function parameterList(property: Property, name: string): string[] {
  const value: unknown = property.getParameter(name);
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export function parameter(property: Property, name: string): string | undefined {
  return parameterList(property, name)[0];
}

export function calAddressOf(property: Property): CalAddress {
  const value = property.getFirstValue();
  const name = parameter(property, "cn");
  return {
    address: normalizeAddress(typeof value === "string" ? value : ""),
    ...(name !== undefined && { name }),
  };
}

export function attendeeOf(property: Property): Attendee {
  const attendee: Mutable<Attendee> = calAddressOf(property);
  const upper = (n: string) => parameter(property, n)?.toUpperCase();
  const partstat = upper("partstat");
  const role = upper("role");
  const rsvp = upper("rsvp");
  const scheduleAgent = upper("schedule-agent");
  const cutype = upper("cutype");
  const delegatedFrom = parameterList(property, "delegated-from").map(normalizeAddress);
  const delegatedTo = parameterList(property, "delegated-to").map(normalizeAddress);
  if (partstat) attendee.partstat = partstat;
  if (role) attendee.role = role;
  if (rsvp) attendee.rsvp = rsvp === "TRUE" || rsvp === "YES";
  if (scheduleAgent) attendee.scheduleAgent = scheduleAgent;
  if (cutype) attendee.cutype = cutype;
  if (delegatedFrom.length > 0) attendee.delegatedFrom = delegatedFrom;
  if (delegatedTo.length > 0) attendee.delegatedTo = delegatedTo;
  return attendee;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Every DATE/DATE-TIME value of a property, PERIOD values as their start and end. */
export function timesOf(property: Property): Time[] {
  const times: Time[] = [];
  for (const value of property.getValues() as unknown[]) {
    if (value instanceof ICAL.Time) times.push(value);
    else if (value instanceof ICAL.Period) times.push(value.start, value.getEnd());
  }
  return times;
}

/**
 * UTC fields of a time. Floating times, and TZIDs with no VTIMEZONE in the message (ical.js makes them
 * floating), are read as UTC: the error is at most 14 hours, and there is no better reference.
 */
function utcFields(time: Time): [number, number, number, number, number, number] {
  const t =
    time.isDate || time.zone?.tzid === "floating" ? time : time.convertToZone(ICAL.Timezone.utcTimezone);
  return t.isDate ? [t.year, t.month, t.day, 0, 0, 0] : [t.year, t.month, t.day, t.hour, t.minute, t.second];
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** `20040902T130000Z`: the form of IS:min-date-time / IS:max-date-time (draft §9.2.1.8). */
export function icalUtc(time: Time): string {
  const [y, mo, d, h, mi, s] = utcFields(time);
  return `${pad(y, 4)}${pad(mo)}${pad(d)}T${pad(h)}${pad(mi)}${pad(s)}Z`;
}

/** `2004-09-02` for a DATE, `2004-09-02T13:00:00Z` for a DATE-TIME (in UTC). */
export function isoOf(time: Time): string {
  const [y, mo, d, h, mi, s] = utcFields(time);
  const date = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
  return time.isDate ? date : `${date}T${pad(h)}:${pad(mi)}:${pad(s)}Z`;
}

/** Parses `2004-09-02T13:00:00Z`, `2004-09-02`, `20040902T130000Z` or `20040902` as UTC milliseconds. */
export function parseUtc(text: string): number | undefined {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})(?:T(\d{2}):?(\d{2}):?(\d{2})(?:\.\d+)?Z?)?$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0));
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Serialises a component with CRLF line ends and RFC 5545 §3.1 folding: no physical line longer than
 * 75 octets including the leading space of a continuation, never splitting a UTF-8 sequence. (ical.js
 * folds at 75 octets of content, making continuation lines 76 octets long.)
 */
export function serialize(component: Component): string {
  const unfolded = component.toString().replace(/\r?\n[ \t]/g, "");
  return `${unfolded
    .split(/\r?\n/)
    .filter((line) => line !== "")
    .map(fold)
    .join("\r\n")}\r\n`;
}

function fold(line: string): string {
  if (Buffer.byteLength(line, "utf8") <= 75) return line;
  const parts: string[] = [];
  let current = "";
  let octets = 0;
  for (const char of line) {
    const size = Buffer.byteLength(char, "utf8");
    const limit = parts.length === 0 ? 75 : 74;
    if (octets + size > limit) {
      parts.push(current);
      current = "";
      octets = 0;
    }
    current += char;
    octets += size;
  }
  parts.push(current);
  return parts.join("\r\n ");
}
