/**
 * How a fake-peer case runs and what it checks. A case submits one invitation through the
 * submission API (POST /api/v1/messages, with the token) to a recipient the fake peer knows its
 * answer by, waits until the delivery's one attempt is recorded, and checks its state, request-status
 * and reason (GET /api/v1/messages/ID): every delivery must end in a sensible state (delivered, queued
 * for a retry an hour later, or failed) with a readable reason, and what a stranger's answer leaves
 * in the queue must be bounded. Also the pieces the cases' answers are made of.
 */
import { ISCHEDULE_NS } from "../../../src/ischedule/namespaces.ts";
import { type ApiTarget, apiRequest } from "./_api-request.ts";
import { type Case, clip, differs, type Verdict } from "./_cases.ts";
import type { PeerAnswer, PeerRequest } from "./_fake-peer.ts";
import { FAKE, HOSTED } from "./_world.ts";

export interface PeerOutcome {
  state: "delivered" | "queued" | "failed";
  /** The delivery's request-status. */
  status?: RegExp;
  /** Its last error (absent when delivered). */
  reason?: RegExp;
}

export type Answer = (request: PeerRequest, peerPort: number) => PeerAnswer;

export const XML = ["Content-Type", "application/xml; charset=utf-8"] as [string, string];
export const ok = (body: string | Uint8Array, more: [string, string][] = []): PeerAnswer => ({
  status: 200,
  headers: [XML, ["iSchedule-Version", "1.0"], ...more],
  body,
});
export const responseXml = (
  items: string,
  root = `<schedule-response xmlns="${ISCHEDULE_NS}">`,
  end = "</schedule-response>",
) => `<?xml version="1.0" encoding="utf-8"?>${root}${items}${end}`;
export const item = (recipient: string, status: string, extra = "") =>
  `<response><recipient>${recipient}</recipient><request-status>${status}</request-status>${extra}</response>`;
export const recipientOf = (r: PeerRequest) => r.headers.get("recipient") ?? "";
/** A schedule-response for the request's recipient with this status. */
export const answering =
  (status: string, extra = ""): Answer =>
  (r) =>
    ok(responseXml(item(recipientOf(r), status, extra)));
export const errorXml = (element: string, description: string) =>
  `<?xml version="1.0" encoding="utf-8"?><error xmlns="${ISCHEDULE_NS}"><${element}/><response-description>${description}</response-description></error>`;
export const statusOnly =
  (status: number, headers: [string, string][] = [], body = ""): Answer =>
  () => ({ status, headers, body });

export const DELIVERED: PeerOutcome = { state: "delivered", status: /^2\.0/ };
export const delivered = (status: RegExp): PeerOutcome => ({ state: "delivered", status });
export const retried = (reason: RegExp, status = /^5\.1/): PeerOutcome => ({
  state: "queued",
  status,
  reason,
});
export const failed = (reason: RegExp, status = /^5\.2/): PeerOutcome => ({
  state: "failed",
  status,
  reason,
});
export const UNREADABLE = (why: RegExp) => retried(new RegExp(`with no schedule-response: .*${why.source}`));

export const nest = (depth: number, inner: string) => `${"<x>".repeat(depth)}${inner}${"</x>".repeat(depth)}`;

interface Submitted {
  id: number;
}

/** The delivery once its first attempt is recorded (polling the message view). */
async function settled(t: ApiTarget, id: number, deadlineMs: number): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await apiRequest(t, { method: "GET", path: `/messages/${id}` });
    const view = JSON.parse(r.text) as { deliveries: Record<string, unknown>[] };
    const d = view.deliveries[0]!;
    if ((d.attempts as number) >= 1 && d.state !== "in-flight") return d;
    if (Date.now() > deadlineMs)
      throw new Error(`delivery of message ${id} still ${d.state} after its deadline`);
    await Bun.sleep(50);
  }
}

export async function deliverTo(
  t: ApiTarget,
  recipient: string,
  waitMs: number,
): Promise<Verdict & { delivery?: Record<string, unknown> }> {
  const calendar = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//battery//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:peer-${crypto.randomUUID()}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SUMMARY:Battery",
    `ORGANIZER:mailto:alice@${HOSTED}`,
    `ATTENDEE;RSVP=TRUE:${recipient}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
  const r = await apiRequest(t, { method: "POST", path: "/messages", json: { calendar }, timeoutMs: 20_000 });
  if (r.status !== 202)
    return { problems: [`submission: HTTP ${r.status}: ${clip(r.text)}`], serverError: r.status >= 500 };
  const { id } = JSON.parse(r.text) as Submitted;
  return { problems: [], delivery: await settled(t, id, Date.now() + waitMs) };
}

/** What a stranger's answer may leave in a delivery (src/delivery/dispatcher.ts clips it there). */
const MAX_STATUS_CHARS = 256;
const MAX_REASON_CHARS = 2048;

export function checkOutcome(d: Record<string, unknown>, e: PeerOutcome): string[] {
  const state = d.state as string;
  const status = (d.requestStatus as string | null) ?? "";
  const reason = (d.lastError as string | null) ?? "";
  const problems = differs("state", state, e.state);
  if (e.status && !e.status.test(status))
    problems.push(`request-status "${clip(status, 100)}" does not match ${e.status}`);
  // A peer's own request-status (5.3;No scheduling support) is its reason; isched's errors add one.
  if (e.state !== "delivered" && reason.trim() === "" && status.trim() === "")
    problems.push("no reason recorded");
  if (e.reason && !e.reason.test(reason))
    problems.push(`reason "${clip(reason, 300)}" does not match ${e.reason}`);
  if (reason.length > MAX_REASON_CHARS) problems.push(`the reason is ${reason.length} characters long`);
  if (status.length > MAX_STATUS_CHARS)
    problems.push(`the request-status is ${status.length} characters long`);
  if (problems.length > 0) problems.push(`(status ${clip(status, 80)}; reason ${clip(reason, 300)})`);
  return problems;
}

/** An invitation to a recipient the fake peer answers 2.0 for: delivered. */
export function peerControl(target: () => ApiTarget): Case {
  return {
    area: "fake peer",
    name: "control: a delivery the peer accepts is delivered",
    async run() {
      const r = await deliverTo(target(), `mailto:ok-${crypto.randomUUID().slice(0, 8)}@${FAKE}`, 20_000);
      return r.delivery ? { problems: checkOutcome(r.delivery, DELIVERED) } : r;
    },
  };
}
