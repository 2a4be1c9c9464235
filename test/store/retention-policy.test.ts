import { describe, expect, test } from "bun:test";
import {
  DEFAULT_RETAIN_BODIES_MS,
  DEFAULT_RETAIN_MS,
  formatRetentionPeriod,
  parseRetain,
  parseRetainBodies,
  RETAIN_REFUSALS_MS,
  retentionPolicy,
} from "../../src/store/retention-policy.ts";

const DAY = 86_400_000;

describe("--retain and --retain-bodies values", () => {
  test("durations with a unit, and forever", () => {
    expect(parseRetain("400d")).toBe(400 * DAY);
    expect(parseRetain("7d")).toBe(7 * DAY);
    expect(parseRetainBodies("1d12h")).toBe(36 * 3_600_000);
    expect(parseRetainBodies("24h")).toBe(DAY);
    expect(parseRetain("forever")).toBeUndefined();
    expect(parseRetainBodies(" forever ")).toBeUndefined();
  });

  test("a bare number is refused: elsewhere it means seconds", () => {
    expect(() => parseRetain("400")).toThrow(
      '"400" has no unit: write 400d for days (or h, m, s), or forever',
    );
  });

  test("too short, too long, or not a duration: the message says what is allowed", () => {
    expect(() => parseRetain("6d")).toThrow("6d is shorter than the least allowed, 7d");
    expect(() => parseRetainBodies("30m")).toThrow("30m is shorter than the least allowed, 1d");
    expect(() => parseRetain("40000d")).toThrow(
      "40000d is longer than 100 years: write forever to keep everything",
    );
    expect(() => parseRetain("a year")).toThrow(
      '"a year" is not a duration (examples: 400d, 30d, 12h) or forever',
    );
    expect(() => parseRetain("")).toThrow("is not a duration");
  });

  test("periods read back as they are written", () => {
    expect(formatRetentionPeriod(400 * DAY)).toBe("400d");
    expect(formatRetentionPeriod(undefined)).toBe("forever");
  });
});

describe("the retention policy", () => {
  test("defaults: bodies 30 days, messages 400 days, refusals 7 days", () => {
    expect(
      retentionPolicy({ retainMs: DEFAULT_RETAIN_MS, retainBodiesMs: DEFAULT_RETAIN_BODIES_MS }),
    ).toEqual({
      bodiesMs: 30 * DAY,
      messagesMs: 400 * DAY,
      refusalsMs: RETAIN_REFUSALS_MS,
    });
    expect(RETAIN_REFUSALS_MS).toBe(7 * DAY);
  });

  test("bodies may not outlive their messages", () => {
    expect(() => retentionPolicy({ retainMs: 30 * DAY, retainBodiesMs: 60 * DAY })).toThrow(
      "--retain-bodies 60d is longer than --retain 30d: a body is deleted with its message, so keep bodies at most as long",
    );
    expect(() => retentionPolicy({ retainMs: 30 * DAY, retainBodiesMs: undefined })).toThrow(
      "--retain-bodies forever is longer than --retain 30d",
    );
    expect(retentionPolicy({ retainMs: 30 * DAY, retainBodiesMs: 30 * DAY }).bodiesMs).toBe(30 * DAY);
  });

  test("forever for messages allows any body period, forever included", () => {
    expect(retentionPolicy({ retainMs: undefined, retainBodiesMs: undefined })).toEqual({
      bodiesMs: undefined,
      messagesMs: undefined,
      refusalsMs: RETAIN_REFUSALS_MS,
    });
    expect(retentionPolicy({ retainMs: undefined, retainBodiesMs: 90 * DAY }).bodiesMs).toBe(90 * DAY);
  });
});
