/** What a receiver's answer to one POST means per recipient (read-answer.ts). */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { retryAfter } from "../../src/delivery/policy.ts";
import { errorXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import type { PeerResponse } from "../../src/net/peer-fetch.ts";
import { readAnswer } from "../../src/outbound/read-answer.ts";
import { FIXTURES, readHttpFixture } from "../support/http-fixture.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const URL_ = "https://cal.peer.test/ischedule";

function response(status: number, body: string, headers: Record<string, string> = {}): PeerResponse {
  return {
    status,
    headers: new Headers(headers),
    body: Buffer.from(body),
    url: URL_,
    address: "192.0.2.1",
    durationMs: 1,
  };
}

const read = (r: PeerResponse, recipients: string[]) =>
  readAnswer({ response: r, url: URL_, recipients, nowMs: NOW });

describe("readAnswer()", () => {
  test("maps each <response> to the recipient as sent, case-insensitively, with calendar-data and the error", () => {
    const xml = scheduleResponseXml([
      { recipient: "mailto:ann@peer.test", requestStatus: "2.0;Success", calendarData: "BEGIN:VCALENDAR" },
      {
        recipient: "MAILTO:BOB@PEER.TEST",
        requestStatus: "3.7;Invalid calendar user",
        error: "recipient-invalid",
        description: "Unknown user",
      },
    ]);
    const answer = read(response(200, xml), ["mailto:Ann@peer.test", "mailto:bob@peer.test"]);
    expect(answer.outcomes).toMatchObject([
      { recipient: "mailto:Ann@peer.test", requestStatus: "2.0;Success", calendarData: "BEGIN:VCALENDAR" },
      {
        recipient: "mailto:bob@peer.test",
        requestStatus: "3.7;Invalid calendar user",
        description: "it has no calendar user with this address (recipient-invalid: Unknown user)",
      },
    ]);
    expect(answer.outcomes[0]!.via).toMatchObject({ target: URL_, httpStatus: 200 });
    expect(answer.error).toBeUndefined();
  });

  test("a 200 that is not a schedule-response is 5.1: the receiver may not have taken it", () => {
    const answer = read(response(200, "<html><body>Welcome</body></html>"), ["mailto:a@peer.test"]);
    expect(answer.outcomes[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(answer.error).toContain("answered HTTP 200 with no schedule-response");
  });

  test("an IS:error, even with 200, and a 501 are permanent 5.2 refusals", () => {
    const withError = read(response(200, errorXml("originator-denied", "Not you.")), ["mailto:a@peer.test"]);
    expect(withError.outcomes[0]!.requestStatus).toBe("5.2;Invalid calendar service");
    expect(withError.error).toBe(`${URL_} refused the request (HTTP 200, originator-denied: Not you.)`);
    expect(read(response(501, ""), ["mailto:a@peer.test"]).outcomes[0]!.requestStatus).toBe(
      "5.2;Invalid calendar service",
    );
  });

  test("CalendarServer's own error names read as reasons, with its text (DAV:error and IS:error)", () => {
    const cs = (name: string) => {
      const f = readHttpFixture(join(FIXTURES, "calendarserver", name));
      return read(response(403, f.body.toString()), ["mailto:cyrus@example.net"]);
    };
    expect(cs("error-organizer-denied.http").error).toBe(
      `${URL_} refused the request: it does not let this ORGANIZER schedule with its users (HTTP 403, organizer-denied: Organizer cannot schedule)`,
    );
    expect(cs("error-attendee-denied.http").error).toBe(
      `${URL_} refused the request: it does not take this ATTENDEE as the one who replies (HTTP 403, attendee-denied: No principal for attendee)`,
    );
    expect(cs("error-originator-missing.http").error).toBe(
      `${URL_} refused the request (HTTP 403, originator-missing: Missing originator)`,
    );
    const perRecipient = scheduleResponseXml([
      {
        recipient: "mailto:nobody@peer.test",
        requestStatus: "3.7;Invalid Calendar User",
        error: "recipient-invalid",
        description: "Unknown recipient",
      },
    ]);
    expect(read(response(200, perRecipient), ["mailto:nobody@peer.test"]).outcomes[0]!.description).toBe(
      "it has no calendar user with this address (recipient-invalid: Unknown recipient)",
    );
  });

  test("429 with a Retry-After date is 5.1 with the delay until that date", () => {
    const at = new Date(NOW + 90_000).toUTCString();
    const answer = read(response(429, "slow down", { "Retry-After": at }), ["mailto:a@peer.test"]);
    expect(answer.outcomes[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(answer.retryAfterMs).toBe(90_000);
  });

  test("keeps at most 16 KiB of the answer for the attempt log", () => {
    const answer = read(response(500, "x".repeat(40_000)), ["mailto:a@peer.test"]);
    expect(answer.outcomes[0]!.via?.response).toHaveLength(16 * 1024);
  });
});

describe("retryAfter()", () => {
  test("reads delay-seconds and HTTP-dates; a past date is 0; anything else is ignored", () => {
    expect(retryAfter("120", NOW)).toBe(120_000);
    expect(retryAfter(new Date(NOW - 5000).toUTCString(), NOW)).toBe(0);
    expect(retryAfter("soon", NOW)).toBeUndefined();
    expect(retryAfter(null, NOW)).toBeUndefined();
  });
});
