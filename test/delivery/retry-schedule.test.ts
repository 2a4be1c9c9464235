import { describe, expect, test } from "bun:test";
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  formatRetrySchedule,
  nextAttemptAt,
  parseRetrySchedule,
} from "../../src/delivery/policy.ts";

const NOW = 1_000_000_000;
const M = 60_000;
const H = 60 * M;
const middle = () => 0.5;

describe("nextAttemptAt()", () => {
  test.each([
    [1, NOW + 1 * M],
    [2, NOW + 5 * M],
    [3, NOW + 15 * M],
    [4, NOW + 1 * H],
    [5, NOW + 4 * H],
    [6, NOW + 12 * H],
    [7, undefined],
    [50, undefined],
  ])(
    "follows the default schedule without jitter at random 0.5: after attempt %d → %p",
    (attempts, expected) => {
      expect(
        nextAttemptAt({ attempts, scheduleMs: DEFAULT_RETRY_SCHEDULE_MS, nowMs: NOW, random: middle }),
      ).toBe(expected);
    },
  );

  test.each([
    [0, NOW + 54 * M],
    [0.25, NOW + 57 * M],
    [0.75, NOW + 63 * M],
    [0.999_999, NOW + 66 * M - 1],
  ])("jitters by ±10%%: random %p turns 1h into %p", (r, expected) => {
    const at = nextAttemptAt({
      attempts: 4,
      scheduleMs: DEFAULT_RETRY_SCHEDULE_MS,
      nowMs: NOW,
      random: () => r,
    });
    expect(at).toBe(expected);
  });

  test.each([
    ["a shorter Retry-After than the schedule", 30_000, NOW + 5 * M],
    ["a longer Retry-After than the schedule", 2 * H, NOW + 2 * H],
    ["a Retry-After beyond 24 hours, capped", 7 * 24 * H, NOW + 24 * H],
    ["a Retry-After date in the past", -5_000, NOW + 5 * M],
  ])("takes the later of the schedule and %s", (_label, retryAfterMs, expected) => {
    const at = nextAttemptAt({
      attempts: 2,
      scheduleMs: DEFAULT_RETRY_SCHEDULE_MS,
      nowMs: NOW,
      random: middle,
      retryAfterMs,
    });
    expect(at).toBe(expected);
  });

  test("an exhausted schedule stays exhausted whatever Retry-After says", () => {
    const at = nextAttemptAt({
      attempts: 3,
      scheduleMs: [M, M],
      nowMs: NOW,
      random: middle,
      retryAfterMs: M,
    });
    expect(at).toBeUndefined();
  });

  test("an empty schedule means no retry at all", () => {
    expect(nextAttemptAt({ attempts: 1, scheduleMs: [], nowMs: NOW, random: middle })).toBeUndefined();
  });

  test("refuses attempts below 1 and a Retry-After that is not a number", () => {
    const base = { scheduleMs: DEFAULT_RETRY_SCHEDULE_MS, nowMs: NOW, random: middle };
    expect(() => nextAttemptAt({ ...base, attempts: 0 })).toThrow(
      "attempts must be a whole number >= 1, not 0",
    );
    expect(() => nextAttemptAt({ ...base, attempts: 1.5 })).toThrow(RangeError);
    expect(() => nextAttemptAt({ ...base, attempts: 1, retryAfterMs: Number.NaN })).toThrow(
      "retryAfterMs must be finite",
    );
  });
});

describe("parseRetrySchedule()", () => {
  test("parses the default schedule text into the default schedule", () => {
    expect(parseRetrySchedule("1m,5m,15m,1h,4h,12h")).toEqual([...DEFAULT_RETRY_SCHEDULE_MS]);
  });

  test("accepts compound durations, bare seconds, milliseconds, days and spaces around commas", () => {
    expect(parseRetrySchedule(" 90s , 1h30m,2d, 250ms,45 ")).toEqual([90_000, 90 * M, 48 * H, 250, 45_000]);
  });

  test.each([
    ["", 'The retry schedule "" is empty: give at least one delay, e.g. 1m,5m,15m,1h,4h,12h'],
    ["1m,,5m", 'The retry schedule "1m,,5m" has an empty item at position 2'],
    [
      "1m,5x",
      'The retry schedule "1m,5x" has "5x" at position 2, which is not a duration (e.g. 30s, 5m, 1h30m, 2d)',
    ],
    [
      "1m,5 m",
      'The retry schedule "1m,5 m" has "5 m" at position 2, which is not a duration (e.g. 30s, 5m, 1h30m, 2d)',
    ],
    [
      "-1m",
      'The retry schedule "-1m" has "-1m" at position 1, which is not a duration (e.g. 30s, 5m, 1h30m, 2d)',
    ],
    ["1m,0s", 'The retry schedule "1m,0s" has a zero delay at position 2'],
  ])("refuses %p precisely", (text, message) => {
    expect(() => parseRetrySchedule(text)).toThrow(new SyntaxError(message));
  });

  test("formatRetrySchedule() writes a schedule back in its shortest form", () => {
    expect(formatRetrySchedule(DEFAULT_RETRY_SCHEDULE_MS)).toBe("1m,5m,15m,1h,4h,12h");
    expect(formatRetrySchedule(parseRetrySchedule("90s,1h30m,2d,250ms"))).toBe("1m30s,1h30m,2d,250ms");
  });
});
