/** The scheduling POST as isched builds it: headers, the derived iSchedule-Message-ID, the signature. */
import { describe, expect, test } from "bun:test";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { scheduleMessageId, scheduleRequest } from "../../src/outbound/schedule-request.ts";
import { keysFor, RSA_PRIVATE, RSA_PUBLIC } from "../support/dkim-fixtures.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const UUID = "6f1c2b9e-0d7a-4b8e-9a51-3c2f4e5d6a7b";
const BODY = Buffer.from("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n");
const KEY = loadSigningKey(RSA_PRIVATE, "example.org", "cal");

const build = (key?: typeof KEY) =>
  scheduleRequest({
    url: "https://cal.peer.test/ischedule",
    originator: "mailto:alice@example.org",
    recipients: ["mailto:a@peer.test", "mailto:b@peer.test"],
    method: "request",
    component: "vevent",
    body: BODY,
    messageId: scheduleMessageId(UUID, ["mailto:a@peer.test", "mailto:b@peer.test"]),
    userAgent: "isched/test",
    key,
    nowMs: NOW,
  });

describe("scheduleMessageId()", () => {
  test("is the same for the same group in any order and spelling, and a token (draft §8)", () => {
    const id = scheduleMessageId(UUID, ["mailto:a@peer.test", "mailto:b@peer.test"]);
    expect(scheduleMessageId(UUID, ["MAILTO:B@Peer.Test", "mailto:a@peer.test"])).toBe(id);
    expect(id).toMatch(new RegExp(`^${UUID}-[0-9a-f]{12}$`));
    expect(id).toMatch(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
  });

  test("differs for another group of the same message and for another message", () => {
    const id = scheduleMessageId(UUID, ["mailto:a@peer.test", "mailto:b@peer.test"]);
    expect(scheduleMessageId(UUID, ["mailto:a@peer.test"])).not.toBe(id);
    expect(
      scheduleMessageId(UUID.replace("6f", "7f"), ["mailto:a@peer.test", "mailto:b@peer.test"]),
    ).not.toBe(id);
  });
});

describe("scheduleRequest()", () => {
  test("sends the draft's headers, one Recipient, and no signature without a key", () => {
    const req = build();
    expect(req.method).toBe("POST");
    expect(req.body).toBe(BODY);
    expect((req.headers as [string, string][]).map(([n]) => n)).toEqual([
      "Originator",
      "Recipient",
      "Content-Type",
      "iSchedule-Version",
      "iSchedule-Message-ID",
      "User-Agent",
      "Cache-Control",
    ]);
    expect(new Headers(req.headers).get("content-type")).toBe(
      "text/calendar; charset=utf-8; method=REQUEST; component=VEVENT",
    );
    expect(new Headers(req.headers).get("recipient")).toBe("mailto:a@peer.test,mailto:b@peer.test");
  });

  test("signs Originator, Recipient, Content-Type, iSchedule-Version, iSchedule-Message-ID and User-Agent, never Cache-Control", async () => {
    const req = build(KEY);
    const fields = req.headers as HeaderField[];
    const signature = new Headers(req.headers).get("dkim-signature") ?? "";
    expect(signature).toContain(
      "h=Originator:Recipient:Content-Type:iSchedule-Version:iSchedule-Message-ID:User-Agent;",
    );
    expect(signature).toContain(`t=${NOW / 1000}; x=${NOW / 1000 + 3600}`);
    const verdict = await verifyRequest(
      { fields, body: BODY },
      { keys: keysFor([{ domain: "example.org", selector: "cal", key: RSA_PUBLIC }]), nowMs: NOW },
    );
    expect(verdict.ok).toBe(true);
  });
});
