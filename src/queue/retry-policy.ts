/**
 * When to try a delivery again after a temporary failure: one pure function, used by the worker and
 * by anything else that reschedules, so the schedule cannot drift between them.
 *
 * The schedule is an explicit list, one delay per retry: after the first attempt wait scheduleMs[0],
 * after the second scheduleMs[1], and so on; when the list is used up the delivery has failed (or
 * falls back to iMIP). Each delay gets ±10% jitter so that deliveries that failed together (a peer
 * outage) do not all come back in the same second. A peer's Retry-After (RFC 9110 §10.2.3) is a floor:
 * we never come back sooner than it asks, but we cap what it can ask at 24 hours so that a broken or
 * hostile peer cannot park our deliveries for a month.
 */

import { formatDuration, readDuration } from "../time/duration.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** `1m,5m,15m,1h,4h,12h`: seven attempts over about 17.5 hours. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  HOUR,
  4 * HOUR,
  12 * HOUR,
];

/** The jitter: a delay d becomes a value in [0.9 d, 1.1 d). */
export const RETRY_JITTER = 0.1;

/** The most a Retry-After can add. */
export const MAX_RETRY_AFTER_MS = 24 * HOUR;

export interface NextAttemptOptions {
  /** Attempts made so far, including the one that just failed (>= 1). */
  attempts: number;
  scheduleMs: readonly number[];
  nowMs: number;
  /** Uniform in [0, 1), like Math.random. */
  random: () => number;
  /** The peer's Retry-After as a delay from now; a date in the past counts as 0. */
  retryAfterMs?: number;
}

/** The time of the next attempt, or undefined when the schedule is used up. */
export function nextAttemptAt(o: NextAttemptOptions): number | undefined {
  if (!Number.isInteger(o.attempts) || o.attempts < 1) {
    throw new RangeError(`attempts must be a whole number >= 1, not ${o.attempts}`);
  }
  const scheduled = o.scheduleMs[o.attempts - 1];
  if (scheduled === undefined) return undefined;
  const jittered = scheduled * (1 - RETRY_JITTER + 2 * RETRY_JITTER * o.random());
  let delay = Math.round(jittered);
  if (o.retryAfterMs !== undefined) {
    if (!Number.isFinite(o.retryAfterMs))
      throw new RangeError(`retryAfterMs must be finite, not ${o.retryAfterMs}`);
    delay = Math.max(delay, Math.min(Math.max(o.retryAfterMs, 0), MAX_RETRY_AFTER_MS));
  }
  return o.nowMs + delay;
}

/**
 * Parses a schedule such as `1m,5m,15m,1h,4h,12h` (durations like 90s, 1h30m, 2d, 250ms; a bare
 * number is seconds; spaces around commas are ignored). Throws a SyntaxError naming the bad item.
 */
export function parseRetrySchedule(text: string): number[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.length === 1 && items[0] === "") {
    throw new SyntaxError(
      `The retry schedule "${text}" is empty: give at least one delay, e.g. 1m,5m,15m,1h,4h,12h`,
    );
  }
  return items.map((item, i) => {
    const where = `The retry schedule "${text}" has`;
    if (item === "") throw new SyntaxError(`${where} an empty item at position ${i + 1}`);
    const ms = readDuration(item);
    if (ms === undefined) {
      throw new SyntaxError(
        `${where} "${item}" at position ${i + 1}, which is not a duration (e.g. 30s, 5m, 1h30m, 2d)`,
      );
    }
    if (ms <= 0) throw new SyntaxError(`${where} a zero delay at position ${i + 1}`);
    return ms;
  });
}

/** The shortest form of a schedule, for help texts and logs: `1m,5m,15m,1h,4h,12h`. */
export function formatRetrySchedule(scheduleMs: readonly number[]): string {
  return scheduleMs.map(formatDuration).join(",");
}
