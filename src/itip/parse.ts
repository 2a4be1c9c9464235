/**
 * `parseItip()`: iCalendar text → `ItipMessage`, or an `ItipError` whose kind is the IS:error element
 * to answer with (draft §6.1.2) and whose message is one sentence for the peer.
 *
 * First "is this iCalendar?" (invalid-calendar-data): exactly one VCALENDAR, well-formed content lines
 * and BEGIN/END nesting (_scan.ts), well-formed values (_validate.ts), RFC 5545 cardinality and RRULE
 * syntax, VERSION:2.0 when VERSION is present. Then "is this iTIP?" (invalid-scheduling-message): one
 * METHOD, one component type apart from VTIMEZONE (RFC 5546 §1.4), the RFC 5546 §3 restriction table
 * (restrictions.ts), one UID, at most one master, one identifiable replier in a REPLY or REFRESH.
 *
 * Lenient on purpose, because real clients do it and nothing depends on it: missing VERSION or PRODID
 * (RFC 5546 §3.1.1 requires both), LF-only line ends and blank lines, METHOD in lower case (values are
 * case-insensitive, RFC 5545 §2), bare `user@domain` addresses, `DTSTART:20040902` without VALUE=DATE,
 * TZIDs with no VTIMEZONE in the message, and non-UTC times in a VFREEBUSY (converted to UTC).
 */
import ICAL from "ical.js";
import { IterationBudgetExhausted, withIterationBudget } from "./_budget.ts";
import { type Component, icalUtc, timeOf } from "./_ical.ts";
import { buildMessage } from "./_model.ts";
import { uniqueReplier } from "./_replier.ts";
import { type Scan, type ScanComponent, scanCalendar } from "./_scan.ts";
import { asJCalComponent, type JCalComponent, validateValues } from "./_validate.ts";
import { displayAddress } from "./address.ts";
import { clip, ItipError, invalidData, invalidMessage } from "./errors.ts";
import { checkCardinality, checkRestriction, restrictionFor } from "./restrictions.ts";
import type { ItipMessage } from "./types.ts";

interface Main {
  readonly scan: ScanComponent;
  readonly component: Component;
}

const calendars = new WeakMap<ItipMessage, Component>();

/**
 * Recurrence steps one parse may take. Converting TZID times expands VTIMEZONE rules from the zone's
 * DTSTART: a real zone's yearly rules since 1601 take about 430 steps each to reach today, 8,400 to
 * reach year 9999; a `FREQ=MINUTELY` zone would take minutes. 50,000 steps cost at most about 0.4 s.
 */
const PARSE_BUDGET = 50_000;

/** Throws ItipError; see the module comment for what each kind covers. */
export function parseItip(text: string): ItipMessage {
  if (typeof text !== "string") throw new TypeError("parseItip() needs the body as a string");
  const scan = scanCalendar(text);
  const jcal = parseJCal(scan);
  try {
    return withIterationBudget(PARSE_BUDGET, () => {
      validateValues(jcal, scan.calendar);
      const calendar = new ICAL.Component(jcal);
      const children = calendar.getAllSubcomponents();
      const mains: Main[] = scan.calendar.components
        .map((s, i) => ({ scan: s, component: children[i]! }))
        .filter((m) => m.scan.name !== "VTIMEZONE" && !m.scan.name.startsWith("X-"));
      const method = methodOf(scan.calendar);
      for (const zone of scan.calendar.components.filter((c) => c.name === "VTIMEZONE")) checkTimezone(zone);
      for (const main of mains) {
        checkCardinality(main.scan);
        checkRules(main);
      }
      const message = checkItip(text, method, mains, calendar);
      calendars.set(message, calendar);
      return message;
    });
  } catch (error) {
    if (error instanceof ItipError) throw error;
    if (error instanceof IterationBudgetExhausted) {
      throw invalidData(
        `A VTIMEZONE or RRULE in the message needs more than ${PARSE_BUDGET} steps to expand`,
      );
    }
    throw invalidData(`The iCalendar data cannot be interpreted${detail(error)}`);
  }
}

/** The ical.js tree of a parsed message (parsed again when the message did not come from parseItip). */
export function calendarFor(message: ItipMessage): Component {
  const cached = calendars.get(message);
  if (cached) return cached;
  const reparsed = parseItip(message.text);
  return calendars.get(reparsed)!;
}

function parseJCal(scan: Scan): JCalComponent {
  try {
    return asJCalComponent(ICAL.parse(scan.unfolded));
  } catch (error) {
    // ical.js says neither where nor, for some values, what: find the first line it refuses on its own.
    for (const { line, text } of scan.lines) {
      if (/^(BEGIN|END)[;:]/i.test(text)) continue;
      try {
        ICAL.parse.property(text);
      } catch (lineError) {
        const name = /^[A-Za-z0-9-]+/.exec(text)?.[0]?.toUpperCase() ?? "property";
        throw invalidData(`Line ${line}: the ${clip(name, 30)} value cannot be parsed${detail(lineError)}`);
      }
    }
    throw invalidData(`The iCalendar data cannot be parsed${detail(error)}`);
  }
}

/** ical.js's own messages are fine to pass on; engine TypeErrors ("undefined is not an object") are not. */
function detail(error: unknown): string {
  return error instanceof Error && !(error instanceof TypeError) ? ` (${clip(error.message)})` : "";
}

function methodOf(calendar: ScanComponent): string | undefined {
  const all = (name: string) => calendar.properties.filter((p) => p.name === name);
  for (const name of ["VERSION", "PRODID", "CALSCALE"]) {
    const n = all(name).length;
    if (n > 1) throw invalidData(`The VCALENDAR has ${n} ${name} properties; RFC 5545 allows one`);
  }
  const version = all("VERSION")[0];
  if (version && version.value.trim() !== "2.0") {
    throw invalidData(
      `Line ${version.line}: VERSION:${clip(version.value, 20)} is not supported; iCalendar (RFC 5545) is VERSION:2.0`,
    );
  }
  const methods = all("METHOD");
  if (methods.length > 1) {
    throw invalidMessage(
      `The VCALENDAR has ${methods.length} METHOD properties; iTIP allows exactly one (RFC 5546 §3)`,
    );
  }
  const method = methods[0];
  if (!method) return undefined;
  const value = method.value.trim();
  if (!/^[A-Za-z0-9-]+$/.test(value)) {
    throw invalidMessage(`Line ${method.line}: METHOD:${clip(value, 30)} is not a method name`);
  }
  return value.toUpperCase();
}

/** RFC 5546 §3.1.2: a VTIMEZONE has one TZID (ical.js fails obscurely without it). */
function checkTimezone(zone: ScanComponent): void {
  const n = zone.properties.filter((p) => p.name === "TZID").length;
  if (n !== 1)
    throw invalidData(
      `The VTIMEZONE on line ${zone.line} has ${n === 0 ? "no" : n} TZID properties; it needs one`,
    );
}

/** RRULE parts ical.js would only refuse (or loop on) while expanding. */
function checkRules({ scan, component }: Main): void {
  const lines = scan.properties.filter((p) => p.name === "RRULE");
  const start = timeOf(component, "dtstart") ?? timeOf(component, "due") ?? ICAL.Time.epochTime;
  component.getAllProperties("rrule").forEach((property, i) => {
    const rule = property.getFirstValue();
    const line = lines[i]?.line ?? scan.line;
    if (!(rule instanceof ICAL.Recur))
      throw invalidData(`Line ${line}: the RRULE value is not a recurrence rule`);
    if (rule.interval < 1)
      throw invalidData(`Line ${line}: the RRULE INTERVAL must be at least 1 (RFC 5545 §3.3.10)`);
    try {
      rule.iterator(start);
    } catch (error) {
      throw invalidData(`Line ${line}: the RRULE is not valid${detail(error)}`);
    }
  });
}

function checkItip(
  text: string,
  method: string | undefined,
  mains: Main[],
  calendar: Component,
): ItipMessage {
  if (!method) {
    throw invalidMessage(
      "The iCalendar object has no METHOD property, so it is not an iTIP scheduling message (RFC 5546 §3)",
    );
  }
  const first = mains[0];
  if (!first) {
    throw invalidMessage(
      "The iCalendar object holds no scheduling component (VEVENT, VTODO, VJOURNAL, VFREEBUSY, VPOLL)",
    );
  }
  const type = first.scan.name;
  const other = mains.find((m) => m.scan.name !== type);
  if (other) {
    throw invalidMessage(
      `The message mixes ${type} and ${clip(other.scan.name, 20)} components (line ${other.scan.line}); apart from VTIMEZONE an iTIP message carries one component type (RFC 5546 §1.4)`,
    );
  }
  checkRestriction(
    method,
    mains.map((m) => m.scan),
  );

  const uidOf = (m: Main) => String(m.component.getFirstPropertyValue("uid") ?? "");
  const uid = uidOf(first);
  if (uid.trim() === "") throw invalidMessage(`The ${type} on line ${first.scan.line} has an empty UID`);
  const stranger = mains.find((m) => uidOf(m) !== uid);
  if (stranger) {
    throw invalidMessage(
      `The ${type} components have different UIDs ("${clip(uid, 40)}" on line ${first.scan.line}, "${clip(uidOf(stranger), 40)}" on line ${stranger.scan.line}); an iTIP message is about one calendar object (RFC 5546 §3.2.2)`,
    );
  }
  if (type !== "VFREEBUSY") checkInstances(type, mains);

  const message = buildMessage({
    text,
    method,
    component: type,
    uid,
    calendar,
    mains: mains.map((m) => m.component),
  });
  if (method === "REPLY" || method === "REFRESH") {
    if (!uniqueReplier(message.attendees)) {
      const names = message.attendees.map((a) => clip(displayAddress(a.address), 40)).join(", ");
      throw invalidMessage(
        `METHOD:${method} names ${message.attendees.length} attendees (${names}) but may carry only the ATTENDEE who sends it (${restrictionFor(type, method).source})`,
      );
    }
  }
  return message;
}

/** At most one master and one component per RECURRENCE-ID (RFC 5545 §3.8.4.4). */
function checkInstances(type: string, mains: Main[]): void {
  const masters = mains.filter((m) => !m.component.hasProperty("recurrence-id"));
  if (masters.length > 1) {
    throw invalidMessage(
      `The message has ${masters.length} ${type} components without RECURRENCE-ID (lines ${masters[0]!.scan.line} and ${masters[1]!.scan.line}); only one can be the master (RFC 5545 §3.8.4.4)`,
    );
  }
  const seen = new Map<string, number>();
  for (const m of mains) {
    const id = timeOf(m.component, "recurrence-id");
    if (!id) continue;
    const key = icalUtc(id);
    const before = seen.get(key);
    if (before !== undefined) {
      throw invalidMessage(
        `The ${type} components on lines ${before} and ${m.scan.line} have the same RECURRENCE-ID ${key}; each instance may appear once`,
      );
    }
    seen.set(key, m.scan.line);
  }
}
