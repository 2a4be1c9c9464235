/**
 * `POST /api/v1/messages`, the submission API (submission-http.ts), mounted on the
 * console's route table so it passes the same guard: the API token for `isched send` and other
 * programs, or a session with its CSRF token. The body is either the iTIP message itself
 * (`text/calendar`, with optional Originator and Recipient headers as in iSchedule) or JSON
 * `{ "calendar": "...", "originator"?: "...", "recipients"?: [...] }`; both are read into the JSON
 * form, which the schema checks.
 */
import { t } from "elysia";
import { RequestError, type Route, route } from "./http.ts";
import { mediaType, readBodyText } from "./request-body.ts";
import { handleSubmission, type SubmissionHttpContext } from "./submission-http.ts";

const submission = t.Object({
  calendar: t.String({ error: 'JSON submissions need "calendar": the iTIP message as text' }),
  originator: t.Optional(t.String({ error: '"originator" must be a string' })),
  recipients: t.Optional(
    t.Array(t.String(), { error: '"recipients" must be a list of calendar user addresses' }),
  ),
});

const TYPES = ["text/calendar", "application/json"] as const;

/** The body in the JSON form, through the capped reader; RequestError (400, 408, 413, 415) otherwise. */
async function readSubmission(request: Request, maxBytes: number): Promise<unknown> {
  const type = mediaType(request);
  // A late body is said as the submission API always said it ("... within 30000 ms").
  const text = await readBodyText(request, maxBytes, (e) => e.message);
  if (type === "text/calendar") {
    // The message is the body; Originator and Recipient come from the header fields.
    const recipients = request.headers.get("recipient");
    return {
      calendar: text,
      originator: request.headers.get("originator") ?? undefined,
      recipients: recipients
        ? recipients
            .split(",")
            .map((r) => r.trim())
            .filter((r) => r !== "")
        : undefined,
    };
  }
  if (type === "application/json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new RequestError(400, "the body is not valid JSON");
    }
    // Whatever the JSON is, its fields are what the schema checks (null has none: "calendar" is missing).
    const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
    return { calendar: v.calendar, originator: v.originator, recipients: v.recipients };
  }
  throw new RequestError(415, "send text/calendar (with Originator/Recipient headers) or application/json");
}

export function submissionRoute(ctx: SubmissionHttpContext): Route {
  return route({
    method: "POST",
    path: "/messages",
    access: "change",
    summary:
      "submit an iTIP message: text/calendar (Originator, Recipient headers) or {calendar, originator?, recipients?}",
    body: { schema: submission, maxBytes: ctx.maxBytes, read: readSubmission, types: TYPES },
    handle: ({ body, address }) =>
      handleSubmission(
        { itip: body.calendar, originator: body.originator, recipients: body.recipients },
        ctx,
        { intake: "api", peerAddress: address },
      ),
  });
}
