/**
 * `POST /api/v1/messages`: the submission API's answer to a message its route has read
 * (routes-submission.ts), handed to the intake (src/intake/submission.ts). The answer (202) gives
 * the message id and each recipient's status right after isched tried to deliver for a short while:
 * delivered, or still pending (retried by the queue), or refused.
 */

import type { IntakeService } from "../intake/accept.ts";
import { type Submission, type SubmitResult, submit } from "../intake/submission.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { STATUS } from "../ischedule/status.ts";
import type { IschedMetrics } from "../metrics/isched-metrics.ts";
import { isFinal } from "../store/delivery-states.ts";
import { storageFailure } from "../store/errors.ts";
import type { Intake } from "../store/store.ts";

export interface SubmissionHttpContext {
  intake: IntakeService;
  /** How long to wait for first outcomes before answering. */
  deadlineMs: number;
  /** The largest body the route reads. */
  maxBytes: number;
  /** Counts each submission by outcome and error element. */
  metrics?: Pick<IschedMetrics, "requests">;
}

const json = (status: number, value: unknown): Response =>
  new Response(JSON.stringify(value), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });

export async function handleSubmission(
  submission: Pick<Submission, "itip" | "originator" | "recipients">,
  ctx: SubmissionHttpContext,
  meta: { intake: Extract<Intake, "api" | "cli">; peerAddress?: string },
): Promise<Response> {
  let result: SubmitResult;
  try {
    // The intake attempts the deliveries at once and waits up to the deadline for their outcomes.
    result = await submit(
      ctx.intake,
      { intake: meta.intake, peerAddress: meta.peerAddress, ...submission },
      { deadlineMs: ctx.deadlineMs },
    );
  } catch (e) {
    const refused = e instanceof IScheduleError;
    ctx.metrics?.requests.inc({
      intake: "submission",
      outcome: refused ? "refused" : storageFailure(e) !== undefined ? "unavailable" : "failed",
      error: refused ? e.element : "other",
    });
    if (refused)
      return json(e.httpStatus === 413 ? 413 : 400, { error: e.publicMessage, element: e.element });
    throw e;
  }
  ctx.metrics?.requests.inc({ intake: "submission", outcome: "accepted", error: "none" });
  // Report what the queue now says (after the first attempts and their decisions), not the raw answers.
  const stored = new Map(
    (await ctx.intake.queue.getMessage(result.messageId))?.deliveries.map((d) => [d.id, d]) ?? [],
  );
  return json(202, {
    id: result.messageId,
    uuid: result.uuid,
    originator: result.originator,
    method: result.method,
    component: result.component,
    recipients: result.recipients.map((r) => {
      const d = stored.get(r.deliveryId);
      const final = d !== undefined && isFinal(d.state);
      return {
        recipient: r.recipient,
        route: d?.route ?? r.route,
        state: d?.state ?? "queued",
        status: final ? (d?.requestStatus ?? STATUS.pending) : STATUS.pending,
        description: d?.lastError ?? undefined,
        final,
      };
    }),
  });
}
