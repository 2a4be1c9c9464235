/**
 * `scheduledSpan()`: when the instances a scheduling message is about take place, for the
 * IS:min-date-time and IS:max-date-time capabilities (draft §9.2.1.8, §9.2.1.9).
 *
 * Only the dates that schedule something count: DTSTART and the end (DTEND, DUE, or DTSTART +
 * DURATION) of the master's instances, expanded from RRULE and RDATE minus EXDATE, and of each
 * overridden instance (a component with RECURRENCE-ID). CREATED, LAST-MODIFIED, DTSTAMP, EXDATE and
 * the like are bookkeeping: CalendarServer advertises min-date-time as 1 January of last year, and a
 * weekly series created two years ago is still scheduling meetings next week. A receiver that takes
 * any instance after its minimum (or before its maximum) can take the message.
 *
 * Expansion is bounded like countInstances(): at most `limit` instances within the iteration budget
 * (_budget.ts). A rule without COUNT or UNTIL, or one with more instances than that, has no known
 * end: `lastEnd` is then undefined, which no minimum refuses.
 */
import ICAL from "ical.js";
import { IterationBudgetExhausted, withIterationBudget } from "./_budget.ts";
import { type Component, firstValue, icalUtc, type Time, timeOf, timesOf } from "./_ical.ts";
import { ITERATION_BUDGET } from "./instances.ts";
import { calendarFor } from "./parse.ts";
import type { ItipMessage } from "./types.ts";

export interface ScheduledSpan {
  /** Start of the earliest scheduled instance, as `20240108T090000Z` (DATE values at midnight UTC). */
  readonly firstStart: string;
  /** End of the latest one; undefined when the instances go on past what could be expanded. */
  readonly lastEnd?: string;
}

/** Instances expanded at most, by default: isched's own max-instances (src/inbound/limits.ts). */
export const DEFAULT_SPAN_LIMIT = 10_000;

const spans = new WeakMap<ItipMessage, ScheduledSpan | null>();

/** The span of the message's scheduled instances; undefined when no component has a date. */
export function scheduledSpan(message: ItipMessage, limit = DEFAULT_SPAN_LIMIT): ScheduledSpan | undefined {
  if (limit === DEFAULT_SPAN_LIMIT && spans.has(message)) return spans.get(message) ?? undefined;
  const mains = calendarFor(message)
    .getAllSubcomponents()
    .filter((c) => c.name !== "vtimezone" && !c.name.startsWith("x-"));
  let first: string | undefined;
  let last: string | undefined;
  let endless = false;
  const add = (component: Component): void => {
    const span = componentSpan(component, limit);
    if (span !== undefined) {
      if (first === undefined || span.firstStart < first) first = span.firstStart;
      if (span.lastEnd === undefined) endless = true;
      else if (last === undefined || span.lastEnd > last) last = span.lastEnd;
    }
    // A VPOLL schedules through its poll items (VEVENTs inside it); a VALARM schedules nothing.
    for (const child of component.getAllSubcomponents()) if (child.name !== "valarm") add(child);
  };
  for (const component of mains) add(component);
  const result =
    first === undefined
      ? undefined
      : { firstStart: first, ...(!endless && last !== undefined && { lastEnd: last }) };
  if (limit === DEFAULT_SPAN_LIMIT) spans.set(message, result ?? null);
  return result;
}

/** One component: its own dates, or the instances of its recurrence (a master only). */
function componentSpan(component: Component, limit: number): ScheduledSpan | undefined {
  const start =
    timeOf(component, "dtstart") ?? timeOf(component, "due") ?? timeOf(component, "recurrence-id");
  if (!start) return undefined;
  const end = (at: Time): string => icalUtc(endOf(component, start, at));
  const recurring =
    !component.hasProperty("recurrence-id") &&
    (component.hasProperty("rrule") || component.hasProperty("rdate"));
  if (!recurring) return { firstStart: icalUtc(start), lastEnd: end(start) };
  const instances = expand(component, start, limit);
  if (instances.first === undefined) return undefined;
  return {
    firstStart: icalUtc(instances.first),
    ...(instances.last !== undefined && { lastEnd: end(instances.last) }),
  };
}

/**
 * The first and last instance of a master; `last` undefined when the rule never ends, has more than
 * `limit` instances, or cannot be expanded within the budget. DTSTART counts as an instance for
 * RDATE-only masters (RFC 5545 §3.8.5.2), which ical.js does not emit, unless an EXDATE removes it.
 */
function expand(master: Component, start: Time, limit: number): { first?: Time; last?: Time } {
  const openEnded = master.getAllProperties("rrule").some((p) => {
    const rule = p.getFirstValue() as { count?: number | null; until?: unknown } | null;
    return rule !== null && !rule.count && !rule.until;
  });
  let first: Time | undefined;
  let last: Time | undefined;
  const consider = (t: Time) => {
    if (first === undefined || t.compare(first) < 0) first = t;
    if (last === undefined || t.compare(last) > 0) last = t;
  };
  if (!master.hasProperty("rrule") && !excluded(master, start)) consider(start);
  let complete = false;
  try {
    withIterationBudget(ITERATION_BUDGET, () => {
      const expansion = new ICAL.RecurExpansion({ component: master, dtstart: start });
      // An open-ended rule needs only its first instance; a bounded one is walked to its end.
      const wanted = openEnded ? 1 : limit + 1;
      let seen = 0;
      for (let time = expansion.next(); time; time = expansion.next()) {
        consider(time);
        if (++seen >= wanted) return;
      }
      complete = true;
    });
  } catch (error) {
    // Too many candidates for the budget, or a rule ical.js cannot expand: what was seen stands,
    // and the end stays unknown (the receiver, which sees the same rule, answers precisely).
    if (!(error instanceof IterationBudgetExhausted) && !(error instanceof Error)) throw error;
  }
  if (first === undefined) return { first: start };
  return complete && !openEnded ? { first, last } : { first };
}

/** The end of the instance starting at `at`: DTEND or DUE moved along with it, or DTSTART + DURATION. */
function endOf(component: Component, start: Time, at: Time): Time {
  const end = timeOf(component, "dtend") ?? timeOf(component, "due");
  const duration = end ? end.subtractDateTz(start) : firstValue(component, "duration");
  if (!(duration instanceof ICAL.Duration) || duration.toSeconds() <= 0) return at;
  const moved = at.clone();
  moved.addDuration(duration);
  return moved;
}

function excluded(master: Component, start: Time): boolean {
  const key = icalUtc(start);
  return master.getAllProperties("exdate").some((p) => timesOf(p).some((t) => icalUtc(t) === key));
}
