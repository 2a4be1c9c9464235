/**
 * `POST /api/v1/messages`: the submission API's answer to a message its route has read
 * (src/console/routes-submission.ts). The answer (202) gives the message id and each recipient's
 * status right after isched tried to deliver for a short while: delivered, or still pending
 * (retried by the queue), or refused.
 */

import type { Dispatcher } from "../delivery/dispatcher.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { STATUS } from "../ischedule/status.ts";
import type { Intake } from "../store/messages.ts";
import { type Submission, type SubmitContext, submitMessage } from "./submit.ts";

export interface SubmissionHttpContext extends SubmitContext {
  dispatcher: Dispatcher;
  /** How long to wait for first outcomes before answering. */
  deadlineMs: number;
  /** The largest body the route reads. */
  maxBytes: number;
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
  let result: ReturnType<typeof submitMessage>;
  try {
    result = submitMessage({ intake: meta.intake, peerAddress: meta.peerAddress, ...submission }, ctx);
  } catch (e) {
    if (e instanceof IScheduleError)
      return json(e.httpStatus === 413 ? 413 : 400, { error: e.publicMessage, element: e.element });
    throw e;
  }
  await ctx.dispatcher.deliverNow(
    result.recipients.map((r) => r.deliveryId),
    ctx.deadlineMs,
  );
  ctx.dispatcher.poke();
  // Report what the queue now says (after the first attempts and their decisions), not the raw answers.
  const stored = new Map(ctx.queue.getMessage(result.messageId)?.deliveries.map((d) => [d.id, d]) ?? []);
  return json(202, {
    id: result.messageId,
    uuid: result.uuid,
    originator: result.originator,
    method: result.method,
    component: result.component,
    recipients: result.recipients.map((r) => {
      const d = stored.get(r.deliveryId);
      const final = d !== undefined && FINAL.has(d.state);
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

const FINAL = new Set(["delivered", "failed", "sent-imip", "cancelled"]);
