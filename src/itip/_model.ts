/**
 * Builds the `ItipMessage` model from a calendar that already passed the checks in parse.ts.
 */
import ICAL from "ical.js";
import {
  attendeeOf,
  type Component,
  calAddressOf,
  firstValue,
  icalUtc,
  isoOf,
  type Property,
  type Time,
  textOf,
  timeOf,
} from "./_ical.ts";
import { addressKey } from "./address.ts";
import type { Attendee, ItipMessage, Revision } from "./types.ts";

export interface ModelInput {
  readonly text: string;
  readonly method: string;
  readonly component: string;
  readonly uid: string;
  readonly calendar: Component;
  /** The main components, in order. */
  readonly mains: readonly Component[];
}

/** The component without RECURRENCE-ID, else the first one (a message about single instances). */
export function masterOf(mains: readonly Component[]): { component: Component; isMaster: boolean } {
  const master = mains.find((c) => !c.hasProperty("recurrence-id"));
  return master ? { component: master, isMaster: true } : { component: mains[0]!, isMaster: false };
}

export function buildMessage(input: ModelInput): ItipMessage {
  const { component: master, isMaster } = masterOf(input.mains);
  const attendeeProperties = (c: Component): Property[] =>
    input.component === "VPOLL"
      ? [...c.getAllProperties("attendee"), ...c.getAllProperties("voter")]
      : c.getAllProperties("attendee");

  const attendees: Attendee[] = [];
  const seen = new Set<string>();
  // A REPLY about several instances names its replier in each; list every replying attendee once.
  const sources = input.method === "REPLY" ? [master, ...input.mains.filter((c) => c !== master)] : [master];
  for (const c of sources) {
    for (const p of attendeeProperties(c)) {
      const attendee = attendeeOf(p);
      if (seen.has(addressKey(attendee.address))) continue;
      seen.add(addressKey(attendee.address));
      attendees.push(attendee);
    }
  }
  const allAddresses = new Map<string, string>();
  for (const c of input.mains) {
    for (const p of attendeeProperties(c)) {
      const { address } = calAddressOf(p);
      if (!allAddresses.has(addressKey(address))) allAddresses.set(addressKey(address), address);
    }
  }

  const organizer = master.getFirstProperty("organizer");
  const sequence = firstValue(master, "sequence");
  const summary = textOf(master, "summary");
  const start = timeOf(master, "dtstart");
  const end = endOf(master, start);
  const count = (name: string) =>
    isMaster ? master.getAllProperties(name).reduce((n, p) => n + p.getValues().length, 0) : 0;

  return {
    method: input.method,
    component: input.component,
    uid: input.uid,
    ...(organizer && { organizer: calAddressOf(organizer) }),
    attendees,
    attendeeAddresses: [...allAddresses.values()],
    sequence: typeof sequence === "number" ? sequence : 0,
    revisions: input.mains.map(revisionOf),
    ...(summary !== undefined && { summary }),
    ...(start && { start: isoOf(start) }),
    ...(end && { end: isoOf(end) }),
    recurrence: {
      rrule: isMaster && master.hasProperty("rrule"),
      openEnded:
        isMaster &&
        master.getAllProperties("rrule").some((p) => {
          const rule = p.getFirstValue() as { count?: number | null; until?: unknown } | null;
          return rule !== null && !rule.count && !rule.until;
        }),
      rdates: count("rdate"),
      exdates: count("exdate"),
      overridden: input.mains.filter((c) => c.hasProperty("recurrence-id")).length,
    },
    attachments: attachmentsOf(input.calendar),
    text: input.text,
  };
}

function revisionOf(component: Component): Revision {
  const recurrenceId = timeOf(component, "recurrence-id");
  const dtstamp = timeOf(component, "dtstamp");
  const sequence = firstValue(component, "sequence");
  return {
    ...(recurrenceId && { recurrenceId: icalUtc(recurrenceId) }),
    sequence: typeof sequence === "number" ? sequence : 0,
    ...(dtstamp && { dtstamp: icalUtc(dtstamp) }),
  };
}

/** DTEND, or DUE (VTODO), or DTSTART + DURATION. */
function endOf(component: Component, start: Time | undefined): Time | undefined {
  const end = timeOf(component, "dtend") ?? timeOf(component, "due");
  if (end) return end;
  const duration = firstValue(component, "duration");
  if (!start || !(duration instanceof ICAL.Duration)) return undefined;
  const computed = start.clone();
  computed.addDuration(duration);
  return computed;
}

/** Everything outside VTIMEZONE (its DTSTARTs are local times, often 1601 or 1970 placeholders). */
function* contentComponents(component: Component): Generator<Component> {
  yield component;
  for (const child of component.getAllSubcomponents()) {
    if (child.name !== "vtimezone") yield* contentComponents(child);
  }
}

function attachmentsOf(calendar: Component): ItipMessage["attachments"] {
  let inline = 0;
  let external = 0;
  for (const component of contentComponents(calendar)) {
    for (const property of component.getAllProperties("attach")) {
      const encoding = property.getParameter("encoding");
      if (property.type === "binary" || (typeof encoding === "string" && encoding.toUpperCase() === "BASE64"))
        inline++;
      else external++;
    }
  }
  return { inline, external };
}
