import { describe, expect, test } from "bun:test";
import { metricsAccess } from "../../src/metrics/access.ts";

const tokenMatches = (t: string) => t === "s3cret";

describe("who may read /metrics", () => {
  test("on a loopback console, and on --metrics-listen, anyone who can connect", () => {
    for (const o of [
      { listener: "console" as const, consoleLoopback: true },
      { listener: "metrics" as const, consoleLoopback: false },
    ])
      expect(metricsAccess({ ...o, authorization: null, tokenMatches }).allowed).toBe(true);
  });

  test("on a console on another address, only with the API token", () => {
    const access = (authorization: string | null) =>
      metricsAccess({ listener: "console", consoleLoopback: false, authorization, tokenMatches });
    expect(access("Bearer s3cret").allowed).toBe(true);
    expect(access("bearer   s3cret").allowed).toBe(true);
    for (const wrong of [null, "", "Bearer", "Bearer wrong", "Basic czNjcmV0", "s3cret"]) {
      const a = access(wrong);
      expect(a.allowed).toBe(false);
      if (!a.allowed) {
        expect(a.status).toBe(401);
        expect(a.message).toContain("--metrics-listen");
      }
    }
  });
});
