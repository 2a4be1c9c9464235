/**
 * A hard bound on ical.js recurrence iteration. ical.js has no limit of its own: a rule whose BY*
 * parts never match at a fine frequency (`FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`) loops forever inside
 * one `next()` call, and a VTIMEZONE with `RRULE:FREQ=MINUTELY` makes converting a single TZID time
 * expand every minute since the zone's DTSTART (minutes of CPU). Every candidate date ical.js
 * considers passes through RecurIterator's `check_contracting_rules`, so while `withIterationBudget()`
 * runs, that method is wrapped with a counter that throws `IterationBudgetExhausted` once the budget
 * is spent. The wrapper is installed on the prototype only for the duration of the synchronous call
 * (nothing else can run meanwhile), always restored, and a nested call shares the outer budget.
 */
import ICAL from "ical.js";

export class IterationBudgetExhausted extends Error {
  constructor(readonly steps: number) {
    super(`recurrence expansion needed more than ${steps} steps`);
  }
}

interface IteratorPrototype {
  check_contracting_rules: (this: unknown) => boolean;
}

let active = false;

export function withIterationBudget<T>(steps: number, run: () => T): T {
  if (active) return run();
  const prototype = ICAL.RecurIterator.prototype as unknown as IteratorPrototype;
  const original = prototype.check_contracting_rules;
  if (typeof original !== "function") {
    // Refuse rather than risk an endless loop if a new ical.js renamed its internals.
    throw new Error(
      "ical.js RecurIterator.check_contracting_rules is missing: cannot bound recurrence expansion",
    );
  }
  let left = steps;
  prototype.check_contracting_rules = function (this: unknown) {
    if (--left < 0) throw new IterationBudgetExhausted(steps);
    return original.call(this);
  };
  active = true;
  try {
    return run();
  } finally {
    active = false;
    prototype.check_contracting_rules = original;
  }
}
