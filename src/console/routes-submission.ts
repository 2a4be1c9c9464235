/**
 * `POST /api/v1/messages`, the submission API (src/outbound/submission-http.ts), mounted on the
 * console's route table so it passes the same guard: the API token for `isched send` and other
 * programs, or a session with its CSRF token. The body is either the iTIP message itself
 * (`text/calendar`, with optional Originator and Recipient headers as in iSchedule) or JSON
 * `{ "calendar": "...", "originator"?: "...", "recipients"?: [...] }`; both become the JSON form,
 * which the schema checks.
 */
import { t } from "elysia";
import { handleSubmission, type SubmissionHttpContext } from "../outbound/submission-http.ts";
import { type Route, route } from "./http.ts";

const submission = t.Object({
  calendar: t.String({ error: 'JSON submissions need "calendar": the iTIP message as text' }),
  originator: t.Optional(t.String({ error: '"originator" must be a string' })),
  recipients: t.Optional(
    t.Array(t.String(), { error: '"recipients" must be a list of calendar user addresses' }),
  ),
});

/** text/calendar: the message is the body; Originator and Recipient come from the header fields. */
function fromCalendar(text: string, request: Request) {
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

export function submissionRoute(ctx: SubmissionHttpContext): Route {
  return route({
    method: "POST",
    path: "/messages",
    access: "change",
    summary:
      "submit an iTIP message: text/calendar (Originator, Recipient headers) or {calendar, originator?, recipients?}",
    body: {
      schema: submission,
      maxBytes: ctx.maxBytes,
      decoders: { "text/calendar": fromCalendar },
      typesHint: "send text/calendar (with Originator/Recipient headers) or application/json",
    },
    handle: ({ body, address }) =>
      handleSubmission(
        { itip: body.calendar, originator: body.originator, recipients: body.recipients },
        ctx,
        { intake: "api", peerAddress: address },
      ),
  });
}
