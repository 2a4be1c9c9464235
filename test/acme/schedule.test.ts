import { describe, expect, test } from "bun:test";
import { MAX_RETRY_MS, nearExpiry, renewalDueAt, retryAt } from "../../src/acme/schedule.ts";

const DAY = 86_400_000;

describe("renewalDueAt", () => {
  test("renews a 90-day certificate 30 days before its end", () => {
    expect(renewalDueAt({ notBeforeMs: 0, notAfterMs: 90 * DAY })).toBe(60 * DAY);
  });
  test("renews a 6-day certificate 2 days before its end", () => {
    const notBeforeMs = Date.UTC(2026, 0, 1);
    expect(renewalDueAt({ notBeforeMs, notAfterMs: notBeforeMs + 6 * DAY })).toBe(notBeforeMs + 4 * DAY);
  });
  test("a certificate whose end is before its start is due at its end", () => {
    expect(renewalDueAt({ notBeforeMs: 10 * DAY, notAfterMs: 5 * DAY })).toBe(5 * DAY);
  });
});

describe("retryAt", () => {
  const at = (failures: number, random = 0.5, retryAfterMs?: number) =>
    retryAt({ failures, nowMs: 1000, random: () => random, retryAfterMs }) - 1000;
  test("backs off from 1 minute, doubling, up to 6 hours", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((f) => at(f) / 60_000)).toEqual([
      1, 2, 4, 8, 16, 32, 64, 128, 256, 360,
    ]);
    expect(at(1000)).toBe(MAX_RETRY_MS);
  });
  test("jitters by ±10%", () => {
    expect(at(1, 0)).toBe(54_000);
    expect(at(1, 0.999999)).toBe(66_000);
  });
  test("a Retry-After is a floor, capped at 24 hours", () => {
    expect(at(1, 0.5, 3_600_000)).toBe(3_600_000);
    expect(at(1, 0.5, 10)).toBe(60_000);
    expect(at(1, 0.5, 7 * DAY)).toBe(DAY);
  });
  test("refuses a failure count below 1", () => {
    expect(() => at(0)).toThrow(RangeError);
  });
});

describe("nearExpiry", () => {
  test("is true from 7 days before the end", () => {
    expect(nearExpiry(30 * DAY, 22 * DAY)).toBe(false);
    expect(nearExpiry(30 * DAY, 23 * DAY)).toBe(true);
    expect(nearExpiry(30 * DAY, 31 * DAY)).toBe(true);
  });
});
