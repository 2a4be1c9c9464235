/**
 * `countInstances()`: how many recurrence instances a message's master has, for the IS:max-instances
 * capability (draft §9.2.1.10), with hard bounds so a hostile rule cannot hang the server: counting
 * stops at limit + 1 instances (which makes `FREQ=SECONDLY` with no COUNT cheap), and runs within an
 * iteration budget (_budget.ts) against rules ical.js would loop on forever. A rule that exhausts the
 * budget counts as limit + 1: "too many to accept" is the safe answer.
 */
import ICAL from "ical.js";
import { IterationBudgetExhausted, withIterationBudget } from "./_budget.ts";
import { type Component, icalUtc, timeOf, timesOf } from "./_ical.ts";
import { masterOf } from "./_model.ts";
import { clip, ItipError, invalidData } from "./errors.ts";
import { calendarFor } from "./parse.ts";
import type { ItipMessage } from "./types.ts";

/** Candidate dates ical.js may test in one count: about 0.1-0.4 s of CPU in the worst case. */
export const ITERATION_BUDGET = 100_000;

/**
 * Instances of the master: DTSTART, RRULE and RDATE occurrences minus EXDATEs, as ical.js expands
 * them; 1 for a non-recurring component (or one with no DTSTART); for a message that carries only
 * overridden instances (no master), the number of components. Never more than limit + 1.
 */
export function countInstances(message: ItipMessage, limit: number): number {
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError(`limit must be a non-negative integer, not ${limit}`);
  const calendar = calendarFor(message);
  const mains = calendar
    .getAllSubcomponents()
    .filter((c) => c.name !== "vtimezone" && !c.name.startsWith("x-"));
  if (mains.length === 0) return 0;
  const { component: master, isMaster } = masterOf(mains);
  if (!isMaster) return Math.min(mains.length, limit + 1);
  const start = timeOf(master, "dtstart");
  if (!start || !(master.hasProperty("rrule") || master.hasProperty("rdate"))) return 1;
  return expand(master, start, limit);
}

function expand(master: Component, start: ICAL.Time, limit: number): number {
  try {
    return withIterationBudget(ITERATION_BUDGET, () => {
      const expansion = new ICAL.RecurExpansion({ component: master, dtstart: start });
      const seen = new Set<string>();
      // An RDATE that repeats an RRULE instance comes out twice; anything beyond that is not expected.
      let calls = limit + 2 + master.getAllProperties("rdate").reduce((n, p) => n + p.getValues().length, 0);
      for (let time = expansion.next(); time && seen.size <= limit && --calls > 0; time = expansion.next()) {
        seen.add(icalUtc(time));
      }
      // Without an RRULE ical.js expands only the RDATEs; RFC 5545 §3.8.5.2 counts DTSTART as the first
      // instance (unless an EXDATE removes it).
      if (!master.hasProperty("rrule") && !seen.has(icalUtc(start)) && !excluded(master, start))
        seen.add(icalUtc(start));
      return Math.min(seen.size, limit + 1);
    });
  } catch (error) {
    if (error instanceof IterationBudgetExhausted) return limit + 1;
    if (error instanceof ItipError) throw error;
    // e.g. ical.js's "max tries have occurred" after 500 consecutive EXDATEs.
    throw invalidData(
      `The recurrence of the master component cannot be expanded (${error instanceof Error ? clip(error.message) : "unknown error"})`,
    );
  }
}

function excluded(master: Component, start: ICAL.Time): boolean {
  const key = icalUtc(start);
  return master.getAllProperties("exdate").some((p) => timesOf(p).some((t) => icalUtc(t) === key));
}
