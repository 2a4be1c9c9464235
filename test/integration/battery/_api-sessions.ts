/**
 * Console/API cases of the routes that take something else than a JSON object of fields: signing in,
 * the setup token and the current password (each a password guess, from an address of its own:
 * guesses are throttled per address and overall, src/net/attempt-throttle.ts, so 429 is a right
 * answer too), and the submission API (POST /api/v1/messages), text/calendar or JSON.
 */
import {
  type ApiExpected,
  type ApiRequest,
  type ApiTarget,
  apiCase,
  E,
  GUESS,
  guessAddress,
} from "./_api-request.ts";
import type { Case } from "./_cases.ts";

/** Signing in, the setup token, the current password: each a password guess from its own address. */
export function sessionCases(target: () => ApiTarget): Case[] {
  const wrong = GUESS(401, /the password is wrong/);
  const list: [string, ApiRequest, ApiExpected][] = [
    ["a wrong password", { method: "POST", path: "/session", json: { password: "guess" } }, wrong],
    ["no password", { method: "POST", path: "/session", json: {} }, wrong],
    ["a password that is a number", { method: "POST", path: "/session", json: { password: 1 } }, wrong],
    ["a 15 KB password", { method: "POST", path: "/session", json: { password: "p".repeat(15_000) } }, wrong],
    [
      "a 17 KB body (16 KB cap)",
      { method: "POST", path: "/session", json: { password: "p".repeat(17_000) } },
      GUESS(413, /larger than 16384 bytes/),
    ],
    [
      "a body that is not JSON",
      { method: "POST", path: "/session", body: "password=guess", contentType: "application/json" },
      GUESS(400, /not JSON/),
    ],
    [
      "a form body",
      {
        method: "POST",
        path: "/session",
        body: "password=guess",
        contentType: "application/x-www-form-urlencoded",
      },
      GUESS(415, /application\/json/),
    ],
    [
      "the API token as the password",
      { method: "POST", path: "/session", json: { password: "TOKEN" } },
      wrong,
    ],
    [
      "a setup token although a password is set",
      { method: "POST", path: "/setup", json: { token: "x", password: "new password 1" } },
      GUESS(401, /a password is already set/),
    ],
    [
      "a setup body that is a list",
      { method: "POST", path: "/setup", json: ["x"] },
      GUESS(400, /must be a JSON object/),
    ],
    [
      "the session and a wrong current password",
      {
        method: "PUT",
        path: "/admin/password",
        auth: { kind: "session" },
        json: { current: "guess", password: "a new password 9" },
      },
      GUESS(403, /the current password is wrong/),
    ],
    [
      "the session and no current password",
      {
        method: "PUT",
        path: "/admin/password",
        auth: { kind: "session" },
        json: { password: "a new password 9" },
      },
      E(400, /current is required/),
    ],
  ];
  // Each case has an address of its own, the same in both runs.
  return list.map(([what, request, expected]) => {
    const from = guessAddress();
    return apiCase(target, `${request.method} /api/v1${request.path} with ${what}`, expected, (t) => ({
      ...request,
      json: JSON.stringify(request.json) === '{"password":"TOKEN"}' ? { password: t.token } : request.json,
      auth: request.auth ?? { kind: "none" },
      from,
    }));
  });
}

/** The submission API (POST /api/v1/messages): text/calendar or JSON, each wrong in its own way. */
export function submissionCases(target: () => ApiTarget): Case[] {
  const calendar = (organizer: string) =>
    [
      "BEGIN:VCALENDAR",
      "VERSION:2.0",
      "PRODID:-//battery//EN",
      "METHOD:REQUEST",
      "BEGIN:VEVENT",
      `UID:${crypto.randomUUID()}`,
      "DTSTAMP:20261125T120000Z",
      "DTSTART:20261202T100000Z",
      `ORGANIZER:${organizer}`,
      "ATTENDEE:mailto:bob@fake.test",
      "END:VEVENT",
      "END:VCALENDAR",
      "",
    ].join("\r\n");
  const post = (more: Partial<ApiRequest>): ApiRequest => ({ method: "POST", path: "/messages", ...more });
  const list: [string, ApiRequest, ApiExpected][] = [
    ["no Content-Type", post({ body: calendar("mailto:alice@org.test") }), E(415, /text\/calendar/)],
    [
      "Content-Type: text/plain",
      post({ body: "hello", contentType: "text/plain" }),
      E(415, /text\/calendar/),
    ],
    ["JSON that is not JSON", post({ body: "{", contentType: "application/json" }), E(400, /not valid JSON/)],
    ["JSON without calendar", post({ json: {} }), E(400, /need "calendar"/)],
    ["JSON null", post({ body: "null", contentType: "application/json" }), E(400, /need "calendar"/)],
    ["a calendar that is a number", post({ json: { calendar: 5 } }), E(400, /need "calendar"/)],
    [
      "an originator that is a number",
      post({ json: { calendar: calendar("mailto:alice@org.test"), originator: 5 } }),
      E(400, /"originator" must be a string/),
    ],
    [
      "recipients that is a string",
      post({ json: { calendar: calendar("mailto:alice@org.test"), recipients: "mailto:bob@fake.test" } }),
      E(400, /"recipients" must be a list/),
    ],
    [
      "recipients with a number",
      post({ json: { calendar: calendar("mailto:alice@org.test"), recipients: [5] } }),
      E(400, /"recipients" must be a list/),
    ],
    ["an empty calendar", post({ json: { calendar: "" } }), E(400, /The body is empty/)],
    [
      "a calendar that is not iCalendar",
      post({ json: { calendar: "hello" } }),
      E(400, /line 1 is not BEGIN:VCALENDAR/),
    ],
    [
      "an organizer outside the hosted domains (no relaying)",
      post({ json: { calendar: calendar("mailto:mallory@evil.test") } }),
      E(400, /evil\.test is not a domain served here; isched sends only for its own domains/),
    ],
    [
      "an Originator header that is not the ORGANIZER",
      post({
        body: calendar("mailto:alice@org.test"),
        contentType: "text/calendar",
        fields: [["Originator", "mailto:eve@org.test"]],
      }),
      E(400, /is not the ORGANIZER/),
    ],
    [
      "a Recipient header that is not an address",
      post({
        body: calendar("mailto:alice@org.test"),
        contentType: "text/calendar",
        fields: [["Recipient", "not an address"]],
      }),
      E(400, /"not an address" is not a calendar user address/),
    ],
    [
      "a body over the 1 MB cap",
      post({ body: `${"x".repeat(1024 * 1024 + 1)}`, contentType: "text/calendar" }),
      E(413, /larger than/),
    ],
    [
      "recipients outside the ATTENDEEs",
      post({ json: { calendar: calendar("mailto:alice@org.test"), recipients: ["mailto:zed@fake.test"] } }),
      E(400, /is not an ATTENDEE of this REQUEST/),
    ],
  ];
  return list.map(([what, request, expected]) =>
    apiCase(target, `POST /api/v1/messages with ${what}`, expected, request),
  );
}
