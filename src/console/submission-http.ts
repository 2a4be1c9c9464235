/**
 * `POST /api/v1/messages`: the submission API (src/intake/submission.ts) over HTTP. The body is either
 * the iTIP message itself (`text/calendar`, with optional Originator and Recipient headers as in
 * iSchedule) or JSON
 * `{ "calendar": "...", "originator"?: "...", "recipients"?: [...] }`. The answer (202) gives the
 * message id and each recipient's status right after isched tried to deliver for a short while:
 * delivered, or still pending (retried by the queue), or refused.
 */

import {
  BodyReadError,
  BodyTimeoutError,
  BodyTooLargeError,
  DEFAULT_BODY_TIMEOUT_MS,
  readCappedText,
} from "../http/read-body.ts";
import type { IntakeService } from "../intake/accept.ts";
import { type SubmitResult, submit } from "../intake/submission.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { STATUS } from "../ischedule/status.ts";
import { isFinal } from "../store/delivery-states.ts";
import type { Intake } from "../store/messages.ts";

export interface SubmissionHttpContext {
  intake: IntakeService;
  /** How long to wait for first outcomes before answering. */
  deadlineMs: number;
  maxBytes: number;
}

const json = (status: number, value: unknown): Response =>
  new Response(JSON.stringify(value), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });

interface Parsed {
  itip: string;
  originator?: string;
  recipients?: string[];
}

async function readSubmission(request: Request, maxBytes: number): Promise<Parsed | Response> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  let text: string;
  try {
    text = await readCappedText(request, { maxBytes, timeoutMs: DEFAULT_BODY_TIMEOUT_MS });
  } catch (e) {
    if (e instanceof BodyTooLargeError)
      return json(413, { error: `the body is larger than ${maxBytes} bytes` });
    if (e instanceof BodyTimeoutError) return json(408, { error: e.message });
    if (e instanceof BodyReadError) return json(400, { error: e.message });
    throw e;
  }
  if (type === "text/calendar") {
    const recipients = request.headers.get("recipient");
    return {
      itip: text,
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
      return json(400, { error: "the body is not valid JSON" });
    }
    const v = value as { calendar?: unknown; originator?: unknown; recipients?: unknown };
    if (typeof v?.calendar !== "string")
      return json(400, { error: 'JSON submissions need "calendar": the iTIP message as text' });
    if (v.originator !== undefined && typeof v.originator !== "string")
      return json(400, { error: '"originator" must be a string' });
    if (
      v.recipients !== undefined &&
      !(Array.isArray(v.recipients) && v.recipients.every((r) => typeof r === "string"))
    ) {
      return json(400, { error: '"recipients" must be a list of calendar user addresses' });
    }
    return { itip: v.calendar, originator: v.originator, recipients: v.recipients as string[] | undefined };
  }
  return json(415, { error: "send text/calendar (with Originator/Recipient headers) or application/json" });
}

export async function handleSubmission(
  request: Request,
  ctx: SubmissionHttpContext,
  meta: { intake: Extract<Intake, "api" | "cli">; peerAddress?: string },
): Promise<Response> {
  const parsed = await readSubmission(request, ctx.maxBytes);
  if (parsed instanceof Response) return parsed;
  let result: SubmitResult;
  try {
    // The intake attempts the deliveries at once and waits up to the deadline for their outcomes.
    result = await submit(
      ctx.intake,
      { intake: meta.intake, peerAddress: meta.peerAddress, ...parsed },
      { deadlineMs: ctx.deadlineMs },
    );
  } catch (e) {
    if (e instanceof IScheduleError)
      return json(e.httpStatus === 413 ? 413 : 400, { error: e.publicMessage, element: e.element });
    throw e;
  }
  // Report what the queue now says (after the first attempts and their decisions), not the raw answers.
  const stored = new Map(
    ctx.intake.queue.getMessage(result.messageId)?.deliveries.map((d) => [d.id, d]) ?? [],
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
