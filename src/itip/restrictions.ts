/**
 * The RFC 5546 §3 restriction tables, as data, reduced to the rows the gateway enforces, and the checks
 * that apply them to a scanned message.
 *
 * Enforced: the number of components ("1" or "1+") and the properties every component MUST have
 * (presence "1" / "1+") among UID, DTSTAMP, ORGANIZER, ATTENDEE, DTSTART, DTEND. Deliberately not
 * enforced, because real clients omit them and nothing in the gateway depends on them: SEQUENCE
 * ("MUST be present if non-zero"), SUMMARY ("can be null"), PRIORITY and DTSTART of VTODO (the draft's
 * own A.3 task has only DUE), DESCRIPTION of VJOURNAL, and every presence-"0" row (an ATTENDEE in a
 * PUBLISH does no harm to routing). RFC 5545 cardinality (at most one UID, DTSTART, ...) is checked
 * separately as invalid calendar data.
 */
import type { ScanComponent } from "./_scan.ts";
import { clip, invalidData, invalidMessage } from "./errors.ts";

export type RequiredProperty = "UID" | "DTSTAMP" | "ORGANIZER" | "ATTENDEE" | "DTSTART" | "DTEND";

export interface Restriction {
  /** Where the table is, e.g. "RFC 5546 §3.2.2". */
  readonly source: string;
  /** How many components of the type the message may hold. */
  readonly components: "1" | "1+";
  /** Properties every component of the type must have. */
  readonly required: readonly RequiredProperty[];
}

const BASE: readonly RequiredProperty[] = ["UID", "DTSTAMP", "ORGANIZER"];
const row = (section: string, components: "1" | "1+", ...extra: RequiredProperty[]): Restriction => ({
  source: `RFC 5546 §${section}`,
  components,
  required: [...BASE, ...extra],
});

/** component → METHOD → restriction. */
export const ITIP_RESTRICTIONS: Readonly<Record<string, Readonly<Record<string, Restriction>>>> = {
  VEVENT: {
    PUBLISH: row("3.2.1", "1+", "DTSTART"),
    REQUEST: row("3.2.2", "1+", "ATTENDEE", "DTSTART"),
    REPLY: row("3.2.3", "1+", "ATTENDEE"),
    ADD: row("3.2.4", "1", "DTSTART"),
    CANCEL: row("3.2.5", "1+"),
    REFRESH: row("3.2.6", "1", "ATTENDEE"),
    COUNTER: row("3.2.7", "1", "DTSTART"),
    DECLINECOUNTER: row("3.2.8", "1+", "ATTENDEE"),
  },
  VFREEBUSY: {
    PUBLISH: row("3.3.1", "1+", "DTSTART", "DTEND"),
    REQUEST: row("3.3.2", "1", "ATTENDEE", "DTSTART", "DTEND"),
    REPLY: row("3.3.3", "1", "ATTENDEE", "DTSTART", "DTEND"),
  },
  VTODO: {
    PUBLISH: row("3.4.1", "1+"),
    REQUEST: row("3.4.2", "1+", "ATTENDEE"),
    REPLY: row("3.4.3", "1+", "ATTENDEE"),
    ADD: row("3.4.4", "1"),
    CANCEL: row("3.4.5", "1+"),
    // §3.4.6 lists ORGANIZER with presence 0 for a VTODO REFRESH.
    REFRESH: { source: "RFC 5546 §3.4.6", components: "1", required: ["UID", "DTSTAMP", "ATTENDEE"] },
    COUNTER: row("3.4.7", "1", "ATTENDEE"),
    DECLINECOUNTER: row("3.4.8", "1", "ATTENDEE"),
  },
  VJOURNAL: {
    PUBLISH: row("3.5.1", "1+", "DTSTART"),
    ADD: row("3.5.2", "1", "DTSTART"),
    CANCEL: row("3.5.3", "1+"),
  },
};

/** For a component/method pair with no table (VPOLL, extensions): what every iTIP component needs. */
const FALLBACK: Restriction = {
  source: "RFC 5546 §3",
  components: "1+",
  required: ["UID", "DTSTAMP", "ORGANIZER"],
};

export function restrictionFor(component: string, method: string): Restriction {
  return ITIP_RESTRICTIONS[component]?.[method] ?? FALLBACK;
}

/** Properties RFC 5545 §3.6 allows at most once in a component ("MUST NOT occur more than once"). */
const AT_MOST_ONCE = [
  "UID",
  "DTSTAMP",
  "ORGANIZER",
  "DTSTART",
  "DTEND",
  "DUE",
  "DURATION",
  "SEQUENCE",
  "RECURRENCE-ID",
  "SUMMARY",
];

/** RFC 5545 cardinality of one main component; throws ItipError("invalid-calendar-data"). */
export function checkCardinality(component: ScanComponent): void {
  const where = `The ${clip(component.name, 20)} on line ${component.line}`;
  const count = (name: string) => component.properties.filter((p) => p.name === name).length;
  for (const name of AT_MOST_ONCE) {
    const n = count(name);
    if (n > 1) throw invalidData(`${where} has ${n} ${name} properties; RFC 5545 allows one`);
  }
  if (count("DURATION") > 0 && (count("DTEND") > 0 || count("DUE") > 0)) {
    const other = count("DTEND") > 0 ? "DTEND" : "DUE";
    throw invalidData(`${where} has both DURATION and ${other}; RFC 5545 allows only one of them`);
  }
}

/** The restriction table for the message; throws ItipError("invalid-scheduling-message"). */
export function checkRestriction(method: string, components: readonly ScanComponent[]): void {
  const type = components[0]!.name;
  const restriction = restrictionFor(type, method);
  if (restriction.components === "1" && components.length > 1) {
    throw invalidMessage(
      `METHOD:${method} allows exactly one ${type} (${restriction.source}), but the message has ${components.length}`,
    );
  }
  for (const component of components) {
    for (const name of restriction.required) {
      if (component.properties.some((p) => p.name === name)) continue;
      const what = name === "ATTENDEE" ? "an ATTENDEE" : name;
      throw invalidMessage(
        `METHOD:${method} requires ${what} in every ${type} (${restriction.source}), but the ${type} on line ${component.line} has none`,
      );
    }
  }
}
