import { describe, expect, test } from "bun:test";
import { attemptLogEvent, logAttempt } from "../../src/delivery/attempt-log.ts";
import { createLogger, type LogFormat, type LogLevel } from "../../src/log/logger.ts";

const T0 = Date.UTC(2026, 0, 5, 9);

function capture(format: LogFormat, level: LogLevel = "info") {
  const lines: string[] = [];
  const log = createLogger({ format, level, nowMs: () => T0, write: (l) => lines.push(l) });
  return { log, lines };
}

describe("text log lines (the default)", () => {
  test("TIME LEVEL message key=value, quoted when needed, one line per event", () => {
    const { log, lines } = capture("text");
    log.log("info", "ischedule POST\nsecond line", {
      from: "192.0.2.7",
      originator: "mailto:a b@x",
      n: 3,
      empty: "",
      gone: undefined,
    });
    log.log("debug", "not shown");
    expect(lines).toEqual([
      '2026-01-05T09:00:00.000Z info ischedule POST second line from=192.0.2.7 originator="mailto:a b@x" n=3 empty=""\n',
    ]);
  });

  test("a value with a newline or a control character stays on its line", () => {
    const { log, lines } = capture("text");
    log.log("warn", "peer said", { reason: "line one\nline two\u0007" });
    expect(lines.length).toBe(1);
    expect(lines[0]!.split("\n").length).toBe(2);
    expect(lines[0]).toContain('reason="line one\\nline two\\u0007"');
  });
});

describe("JSON log lines (--log-format json)", () => {
  test("one object per line: time, level and msg first, then the fields in order", () => {
    const { log, lines } = capture("json");
    log.log("warn", "recovered deliveries", { requeued: 2, broken: 0, ok: true, none: null });
    expect(lines.length).toBe(1);
    expect(lines[0]!.endsWith("}\n")).toBe(true);
    expect(Object.entries(JSON.parse(lines[0]!))).toEqual([
      ["time", "2026-01-05T09:00:00.000Z"],
      ["level", "warn"],
      ["msg", "recovered deliveries"],
      ["requeued", 2],
      ["broken", 0],
      ["ok", true],
    ]);
  });

  test("a field named like a key of the line keeps its value under name_", () => {
    const { log, lines } = capture("json");
    log.log("info", "x", { level: "deep", msg: "m", time: 5 });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: "info",
      msg: "x",
      level_: "deep",
      msg_: "m",
      time_: 5,
    });
  });
});

describe("secrets and bodies", () => {
  for (const format of ["text", "json"] as const)
    test(`are kept out of ${format} lines`, () => {
      const { log, lines } = capture(format);
      log.log("error", "relay smtp://isched:s3cret@mail.example.com failed: Authorization: Bearer tok123", {
        target: "https://cyrus:hunter2@127.0.0.1:8008/ischedule",
        password: "hunter2",
        apiToken: "tok123",
        body: "BEGIN:VCALENDAR\r\nSUMMARY:Board meeting\r\nEND:VCALENDAR\r\n",
      });
      const text = lines.join("");
      for (const secret of ["s3cret", "hunter2", "tok123", "Board meeting"])
        expect(text).not.toContain(secret);
      expect(text).toContain("smtp://isched:***@mail.example.com");
      expect(text).toContain("(55 bytes, shown at debug)");
    });

  test("a body is shown at debug, secrets never", () => {
    const { log, lines } = capture("json", "debug");
    log.log("debug", "request", { body: "BEGIN:VCALENDAR", token: "tok123" });
    expect(JSON.parse(lines[0]!)).toMatchObject({ body: "BEGIN:VCALENDAR", token: "***" });
  });
});

describe("the delivery attempt line", () => {
  const attempt = {
    messageUuid: "0191f3e0-0000-7000-8000-000000000001",
    deliveryId: 42,
    recipient: "mailto:bob@peer.example",
    peer: "peer.example",
    route: "ischedule" as const,
    target: "https://user:pw@isched.peer.example/.well-known/ischedule",
    outcome: "temporary" as const,
    httpStatus: 503,
    requestStatus: undefined,
    reason: "HTTP 503 Service Unavailable\n<html>busy</html>",
    nextAttemptAtMs: T0 + 300_000,
    state: "queued" as const,
    attempt: 2,
    durationMs: 812.4,
  };

  test("carries peer, recipient, route, status, reason and next attempt, in a stable order", () => {
    const { log, lines } = capture("json");
    logAttempt(log, attempt);
    const line = JSON.parse(lines[0]!);
    expect(Object.keys(line)).toEqual([
      "time",
      "level",
      "msg",
      "message",
      "delivery",
      "recipient",
      "peer",
      "route",
      "target",
      "status",
      "http",
      "reason",
      "next",
      "state",
      "attempt",
      "ms",
    ]);
    expect(line).toMatchObject({
      level: "info",
      msg: "delivery attempt: temporary",
      peer: "peer.example",
      status: "temporary",
      target: "https://user:***@isched.peer.example/.well-known/ischedule",
      reason: "HTTP 503 Service Unavailable <html>busy</html>",
      next: "2026-01-05T09:05:00.000Z",
      ms: 812,
    });
  });

  test("a final outcome says next=none; a permanent failure is a warning; a long reason is cut", () => {
    const e = attemptLogEvent({
      ...attempt,
      outcome: "permanent",
      nextAttemptAtMs: undefined,
      state: "failed",
      reason: "x".repeat(1000),
    });
    expect(e.level).toBe("warn");
    expect(e.fields.next).toBe("none");
    expect(String(e.fields.reason).length).toBe(301);
    const ok = attemptLogEvent({
      ...attempt,
      outcome: "delivered",
      reason: undefined,
      requestStatus: "2.0;Success",
      nextAttemptAtMs: undefined,
      state: "delivered",
    });
    expect(ok.level).toBe("info");
    expect(ok.fields.reason).toBeUndefined();
  });
});
