import { describe, expect, test } from "bun:test";
import { type DecideInput, decide } from "../../src/delivery/policy.ts";

const NOW = 1_800_000_000_000;
const SCHEDULE = [60_000, 300_000, 900_000];

function input(
  status: string,
  extra: Partial<DecideInput> & { route?: "local" | "ischedule" | "imip"; attempts?: number } = {},
): DecideInput {
  const { route = "ischedule", attempts = 0, ...rest } = extra;
  return {
    outcome: { recipient: "mailto:bob@peer.test", requestStatus: status },
    delivery: { route, attempts, fallbackAt: null, createdAt: NOW - 1000 },
    component: "VEVENT",
    nowMs: NOW,
    scheduleMs: SCHEDULE,
    random: () => 0.5,
    imipAvailable: true,
    ...rest,
  };
}

describe("decide()", () => {
  test("2.0 and 1.2 are delivered; 1.1 by iMIP is sent-imip", () => {
    expect(decide(input("2.0;Success")).completion).toMatchObject({ state: "delivered" });
    expect(decide(input("1.2;Delivered")).completion).toMatchObject({ state: "delivered" });
    expect(decide(input("1.1;Sent", { route: "imip" })).completion).toMatchObject({ state: "sent-imip" });
  });

  test("5.1 and 1.0 are retried on the schedule (the middle of the jitter with random 0.5)", () => {
    expect(decide(input("5.1;Service unavailable")).completion).toEqual({
      state: "queued",
      nextAttemptAt: NOW + 60_000,
      requestStatus: "5.1;Service unavailable",
      error: undefined,
    });
    const pending = decide(input("1.0;Pending", { attempts: 1 }));
    expect(pending.attemptOutcome).toBe("pending");
    expect(pending.completion).toMatchObject({ state: "queued", nextAttemptAt: NOW + 300_000 });
  });

  test("a recipient isched did not try (its key not yet in DNS) waits a minute, uncounted, until the fallback", () => {
    const waiting = (extra: Partial<DecideInput> = {}) => {
      const base = input("5.1;Service unavailable", extra);
      return decide({
        ...base,
        outcome: { ...base.outcome, waiting: true, description: "Waiting for the key" },
      });
    };
    expect(
      waiting({ delivery: { route: "ischedule", attempts: 5, fallbackAt: null, createdAt: NOW } }),
    ).toEqual({
      completion: { state: "waiting", nextAttemptAt: NOW + 60_000, error: "Waiting for the key" },
      attemptOutcome: "pending",
    });
    // Never past the fallback time, and at the fallback time by iMIP.
    const soon = { route: "ischedule" as const, attempts: 0, fallbackAt: NOW + 5000, createdAt: NOW };
    expect(waiting({ delivery: soon }).completion).toMatchObject({
      state: "waiting",
      nextAttemptAt: NOW + 5000,
    });
    expect(waiting({ delivery: { ...soon, fallbackAt: NOW } }).completion).toMatchObject({
      state: "queued",
      route: "imip",
      error: "not delivered by iSchedule in time (Waiting for the key)",
    });
    // A free/busy query is answered now or never.
    expect(waiting({ component: "VFREEBUSY" }).completion).toMatchObject({ state: "failed" });
  });

  test("Retry-After is a floor", () => {
    expect(decide(input("5.1;Busy", { retryAfterMs: 600_000 })).completion).toMatchObject({
      nextAttemptAt: NOW + 600_000,
    });
  });

  test("permanent answers (3.7, 3.8, 5.2, 5.3) end the delivery with the reason, no iMIP", () => {
    for (const status of [
      "3.7;Invalid calendar user",
      "3.8;No authority",
      "5.2;Invalid calendar service",
      "5.3;No scheduling support for user",
    ]) {
      expect(decide(input(status)).completion).toMatchObject({ state: "failed", requestStatus: status });
    }
  });

  test("a recipient no iSchedule receiver can take goes to iMIP now, or fails without --smtp", () => {
    const out = {
      recipient: "mailto:bob@peer.test",
      requestStatus: "5.2;Invalid calendar service",
      reroute: "imip" as const,
      description: "no SRV record",
    };
    expect(decide(input("", { outcome: out })).completion).toMatchObject({
      state: "queued",
      route: "imip",
      nextAttemptAt: NOW,
    });
    expect(decide(input("", { outcome: out, imipAvailable: false })).completion).toMatchObject({
      state: "failed",
    });
  });

  test("a remote delivery whose retries run out, or whose fallback time came, goes by iMIP", () => {
    expect(decide(input("5.1;Down", { attempts: 3 })).completion).toMatchObject({
      state: "queued",
      route: "imip",
    });
    const late = input("5.1;Down", {
      delivery: { route: "ischedule", attempts: 0, fallbackAt: NOW - 1, createdAt: NOW - 5000 },
    });
    expect(decide(late).completion).toMatchObject({ route: "imip" });
    expect(decide(input("5.1;Down", { attempts: 3, imipAvailable: false })).completion).toMatchObject({
      state: "failed",
    });
  });

  test("a retry is never scheduled after the fallback time", () => {
    const d = input("5.1;Down", {
      delivery: { route: "ischedule", attempts: 0, fallbackAt: NOW + 10_000, createdAt: NOW },
    });
    expect(decide(d).completion).toMatchObject({ state: "queued", nextAttemptAt: NOW + 10_000 });
  });

  test("a local delivery keeps trying at the last interval when the schedule runs out", () => {
    expect(decide(input("5.1;Cyrus down", { route: "local", attempts: 10 })).completion).toMatchObject({
      state: "queued",
      nextAttemptAt: NOW + 900_000,
    });
  });

  test("free/busy is answered now or never: not retried", () => {
    expect(decide(input("5.1;Down", { component: "VFREEBUSY" })).completion).toMatchObject({
      state: "failed",
    });
  });
});
