/**
 * Value checks on ical.js's jCal output, which parses leniently: `DTSTART:2004XX02` becomes the string
 * "2004-XX-02T::", `SEQUENCE:abc` becomes 0, `DURATION:1 hour` is kept as is. Walks the jCal tree beside
 * the scan tree (same order) so every problem names its line.
 *
 * One repair, for interoperability: a DATE-TIME property whose values are all eight digits
 * (`DTSTART:20040902`, written by some clients without VALUE=DATE) is read as a DATE.
 */

import type { ScanComponent, ScanProperty } from "./_scan.ts";
import { isCalendarAddress } from "./address.ts";
import { clip, invalidData } from "./errors.ts";

/** jCal component: [name, properties, components]. */
export type JCalComponent = [string, JCalProperty[], JCalComponent[]];
/** jCal property: [name, parameters, type, ...values]. */
export type JCalProperty = [string, Record<string, unknown>, string, ...unknown[]];

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z?$/;
const DATE_ONLY_AS_DATE_TIME = /^(\d{4}-\d{2}-\d{2})T::$/;
const DURATION = /^[+-]?P(?:\d+W|(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$/;
const INTEGER = /^[+-]?\d{1,10}$/;
const CAL_ADDRESS_PROPERTIES = new Set(["ORGANIZER", "ATTENDEE"]);

/** Narrows ical.js's untyped parse result. */
export function asJCalComponent(value: unknown): JCalComponent {
  if (
    !Array.isArray(value) ||
    typeof value[0] !== "string" ||
    !Array.isArray(value[1]) ||
    !Array.isArray(value[2])
  ) {
    throw new TypeError("ical.js returned an unexpected jCal shape");
  }
  return value as JCalComponent;
}

/** Throws ItipError("invalid-calendar-data"); may repair DATE values in place (see above). */
export function validateValues(jcal: JCalComponent, scan: ScanComponent): void {
  const [, properties, components] = jcal;
  if (properties.length !== scan.properties.length || components.length !== scan.components.length) {
    throw new TypeError(`ical.js and the scanner disagree about ${scan.name} on line ${scan.line}`);
  }
  for (const [i, property] of properties.entries()) validateProperty(property, scan.properties[i]!);
  for (const [i, component] of components.entries()) validateValues(component, scan.components[i]!);
}

function validateProperty(property: JCalProperty, scan: ScanProperty): void {
  const type = property[2];
  const values = property.slice(3);
  const fail = (what: string) =>
    invalidData(
      `Line ${scan.line}: the ${clip(scan.name, 30)} value "${clip(scan.value, 40)}" is not ${what}`,
    );
  switch (type) {
    case "date-time": {
      if (values.length > 0 && values.every((v) => typeof v === "string" && DATE_ONLY_AS_DATE_TIME.test(v))) {
        property[2] = "date";
        for (let i = 3; i < property.length; i++) property[i] = (property[i] as string).slice(0, 10);
        return;
      }
      if (!values.every(isDateTime)) throw fail("a valid DATE-TIME (RFC 5545 §3.3.5)");
      return;
    }
    case "date":
      if (!values.every(isDate)) throw fail("a valid DATE (RFC 5545 §3.3.4)");
      return;
    case "period":
      if (!values.every(isPeriod)) throw fail("a valid PERIOD (RFC 5545 §3.3.9)");
      return;
    case "integer":
      if (!INTEGER.test(scan.value.trim())) throw fail("an INTEGER (RFC 5545 §3.3.8)");
      return;
    case "duration":
      if (!scan.value.split(",").every(isDuration)) throw fail("a valid DURATION (RFC 5545 §3.3.6)");
      return;
    case "recur": {
      const rule = values[0];
      if (typeof rule !== "object" || rule === null || !("freq" in rule))
        throw fail("a RECUR with FREQ (RFC 5545 §3.3.10)");
      return;
    }
    case "cal-address":
      if (
        CAL_ADDRESS_PROPERTIES.has(scan.name) &&
        !values.every((v) => typeof v === "string" && isCalendarAddress(v))
      ) {
        throw fail("a calendar user address URI (RFC 5545 §3.3.3)");
      }
      return;
    default:
      return;
  }
}

function isDate(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const m = DATE.exec(value);
  return m !== null && validDay(+m[1]!, +m[2]!, +m[3]!);
}

function isDateTime(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const m = DATE_TIME.exec(value);
  // Seconds may be 60 (leap second, RFC 5545 §3.3.12).
  return m !== null && validDay(+m[1]!, +m[2]!, +m[3]!) && +m[4]! <= 23 && +m[5]! <= 59 && +m[6]! <= 60;
}

function isPeriod(value: unknown): boolean {
  if (!Array.isArray(value) || value.length !== 2) return false;
  const [start, end] = value;
  return isDateTime(start) && (isDateTime(end) || (typeof end === "string" && isDuration(end)));
}

function isDuration(value: string): boolean {
  const v = value.trim();
  return DURATION.test(v) && !/[PT]$/.test(v);
}

function validDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}
