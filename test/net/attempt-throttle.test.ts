import { describe, expect, test } from "bun:test";
import {
  createAttemptThrottle,
  FIRST_DELAY_MS,
  MAX_DELAY_MS,
  type Refusal,
  type Reservation,
  throttleKey,
} from "../../src/net/attempt-throttle.ts";

const granted = (r: Reservation | Refusal): Reservation => {
  if (!r.ok) throw new Error(`refused for ${r.waitMs} ms (${r.scope})`);
  return r;
};

describe("createAttemptThrottle()", () => {
  test("doubles the wait after each failure, up to the cap, and forgets on success", () => {
    let now = 0;
    const t = createAttemptThrottle({ nowMs: () => now, globalBurst: 1000 });
    /** One failed guess now, then how long the next must wait. */
    const failThenWait = () => {
      granted(t.reserve("192.0.2.1")).settle("failure");
      const next = t.reserve("192.0.2.1");
      if (next.ok) throw new Error("the next guess was not slowed down");
      return next.waitMs;
    };
    expect(failThenWait()).toBe(FIRST_DELAY_MS);
    now += FIRST_DELAY_MS;
    expect(failThenWait()).toBe(2 * FIRST_DELAY_MS);
    now += 2 * FIRST_DELAY_MS;
    expect(failThenWait()).toBe(4 * FIRST_DELAY_MS);
    expect(t.reserve("192.0.2.2").ok).toBe(true);
    for (let i = 0; i < 30; i++) {
      now += MAX_DELAY_MS;
      expect(failThenWait()).toBeLessThanOrEqual(MAX_DELAY_MS);
    }
    now += MAX_DELAY_MS - 1;
    expect(t.reserve("192.0.2.1")).toEqual({ ok: false, waitMs: 1, scope: "address" });
    now += 1;
    granted(t.reserve("192.0.2.1")).settle("success");
    expect(failThenWait()).toBe(FIRST_DELAY_MS);
  });

  test("a reservation counts as a failure until it is settled: a second guess must wait", () => {
    const t = createAttemptThrottle();
    const first = granted(t.reserve("192.0.2.1"));
    expect(t.reserve("192.0.2.1")).toEqual({ ok: false, waitMs: FIRST_DELAY_MS, scope: "address" });
    first.settle("success");
    expect(t.reserve("192.0.2.1").ok).toBe(true);
  });

  test("everyone together: at most maxConcurrent checks at once and globalBurst guesses, refilled over time", () => {
    let now = 0;
    const t = createAttemptThrottle({
      nowMs: () => now,
      globalBurst: 3,
      globalRefillMs: 1000,
      maxConcurrent: 2,
    });
    const a = granted(t.reserve("192.0.2.1"));
    granted(t.reserve("192.0.2.2"));
    expect(t.reserve("192.0.2.3")).toMatchObject({ ok: false, scope: "everyone" });
    a.settle("failure");
    granted(t.reserve("192.0.2.3")).settle("failure");
    expect(t.reserve("192.0.2.4")).toEqual({ ok: false, waitMs: 1000, scope: "everyone" });
    now += 1000;
    expect(t.reserve("192.0.2.4").ok).toBe(true);
  });

  test("counts IPv6 clients per /56 and IPv4-mapped ones as IPv4", () => {
    expect(throttleKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:0::/56");
    expect(throttleKey("2001:db8:1:ff::ffff")).toBe("2001:db8:1:0::/56");
    expect(throttleKey("2001:db8:1:100::1")).toBe("2001:db8:1:100::/56");
    expect(throttleKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(throttleKey("192.0.2.7")).toBe("192.0.2.7");
    const t = createAttemptThrottle();
    granted(t.reserve("2001:db8:1:2::1"));
    expect(t.reserve("2001:db8:1:3::99").ok).toBe(false);
    expect(t.reserve("2001:db8:1:100::1").ok).toBe(true);
  });
});
