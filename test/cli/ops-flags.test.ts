import { describe, expect, test } from "bun:test";
import { describeFlags, parseFlags } from "../../src/config/flags.ts";
import { opsFlags, opsSettings } from "../../src/config/ops-flags.ts";

const DAY = 86_400_000;
const parse = (argv: string[], env: Record<string, string> = {}) =>
  parseFlags(argv, opsFlags, "serve", env).flags;

describe("the operations flags of serve", () => {
  test("defaults: 400 days, bodies 30 days, text logs, no metrics listener", () => {
    expect(opsSettings(parse([]))).toEqual({
      retention: { messagesMs: 400 * DAY, bodiesMs: 30 * DAY, refusalsMs: 7 * DAY },
      logFormat: "text",
      metricsListen: undefined,
    });
  });

  test("values from the command line and from ISCHED_* variables", () => {
    const s = opsSettings(
      parse(["--retain", "forever", "--log-format", "json"], {
        ISCHED_RETAIN_BODIES: "90d",
        ISCHED_METRICS_LISTEN: "127.0.0.1:9464",
      }),
    );
    expect(s.retention).toMatchObject({ messagesMs: undefined, bodiesMs: 90 * DAY });
    expect(s.logFormat).toBe("json");
    expect(s.metricsListen).toEqual({ host: "127.0.0.1", port: 9464 });
  });

  test("a mistake is one line naming the flag, or its variable", () => {
    expect(() => parse(["--retain", "400"])).toThrow(
      'flag --retain: "400" has no unit: write 400d for days (or h, m, s), or forever',
    );
    expect(() => parse([], { ISCHED_RETAIN_BODIES: "2h" })).toThrow(
      "ISCHED_RETAIN_BODIES (--retain-bodies): 2h is shorter than the least allowed, 1d",
    );
    expect(() => parse(["--log-format", "xml"])).toThrow('flag --log-format: "xml" is not one of text, json');
    expect(() => parse(["--metrics-listen", "9464"])).toThrow(
      'flag --metrics-listen: "9464" is not HOST:PORT',
    );
  });

  test("bodies kept longer than their messages are refused, naming both flags", () => {
    expect(() => opsSettings(parse(["--retain", "20d"]))).toThrow(
      "--retain-bodies 30d is longer than --retain 20d: a body is deleted with its message, so keep bodies at most as long",
    );
  });

  test("help lists each with its default", () => {
    const help = describeFlags(opsFlags);
    for (const line of [
      "--retain DURATION",
      "--retain-bodies DURATION",
      "--log-format",
      "--metrics-listen HOST:PORT",
    ])
      expect(help).toContain(line);
    expect(help).toContain("400d");
  });
});
