/**
 * `POST /api/v1/messages`, the submission API (submission-http.ts), mounted on the
 * console's route table so it passes the same guard: the API token for `isched send` and other
 * programs, or a session with its CSRF token.
 */

import type { Route } from "./http.ts";
import { handleSubmission, type SubmissionHttpContext } from "./submission-http.ts";

export function submissionRoute(ctx: SubmissionHttpContext): Route {
  return {
    method: "POST",
    path: "/messages",
    access: "change",
    summary:
      "submit an iTIP message: text/calendar (Originator, Recipient headers) or {calendar, originator?, recipients?}",
    handle: ({ request, address }) => handleSubmission(request, ctx, { intake: "api", peerAddress: address }),
  };
}
