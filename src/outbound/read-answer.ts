/**
 * What a receiver's answer to one scheduling POST says for each recipient of the group (draft
 * §6.1.1, §6.1.2). Pure. What each case then means for the delivery is the delivery policy's
 * (src/delivery/policy.ts): this file reads the answer and names the case.
 *
 * - 2xx with a schedule-response: each <response> is matched to the recipient it names
 *   (case-insensitively) and its REQUEST-STATUS taken as given; a recipient the answer leaves out
 *   is "try later".
 * - 2xx with neither a schedule-response nor an IS:error (an HTML page, a truncated document): "try
 *   later". The receiver may or may not have delivered; the retry carries the same
 *   iSchedule-Message-ID, so it can drop a duplicate.
 * - A status HTTP calls temporary (408, 425, 429, 5xx but 501): "try later", with the Retry-After.
 * - Any other status, or an IS:error with a 2xx: the receiver refused the request as a whole and
 *   will again ("refused", 5.2 with the `<element>: description` of its IS:error): the delivery
 *   fails with that reason. That includes 403 verification-failed: the receiver cannot verify
 *   isched's signature (no key found, an algorithm it lacks, or no DKIM at all as in stock Cyrus),
 *   and resending the same signature cannot change that.
 * - Error names a peer invents (CalendarServer's organizer-denied, attendee-denied,
 *   recipient-invalid) are explained in words (peer-error-names.ts) before the peer's own text.
 */

import { classifyPeerStatus, type Happened, outcomeOf, retryAfter } from "../delivery/policy.ts";
import type { RecipientOutcome } from "../delivery/target.ts";
import { normalizeAddress } from "../ischedule/address.ts";
import { peerErrorMeaning } from "../ischedule/peer-error-names.ts";
import { parseScheduleResponse, type ScheduleResponse } from "../ischedule/response-reader.ts";
import type { PeerResponse } from "../net/peer-fetch.ts";

/** What the attempt log keeps of an answer (the dispatcher caps it there too). */
export const RESPONSE_LOG_CHARS = 16 * 1024;

export interface AnswerInput {
  response: PeerResponse;
  /** The URL that answered. */
  url: string;
  /** The group, as sent. */
  recipients: readonly string[];
  /** For a Retry-After given as a date. */
  nowMs: number;
}

export interface GroupAnswer {
  /** One per recipient, in the group's order. */
  readonly outcomes: readonly RecipientOutcome[];
  readonly retryAfterMs?: number;
  /** What went wrong for the group as a whole, for the attempt log. */
  readonly error?: string;
}

export function readAnswer(i: AnswerInput): GroupAnswer {
  const { response, url, recipients } = i;
  const status = response.status;
  const via = {
    target: url,
    httpStatus: status,
    response: new TextDecoder()
      .decode(response.body.subarray(0, RESPONSE_LOG_CHARS * 4))
      .slice(0, RESPONSE_LOG_CHARS),
  };
  let parsed: ScheduleResponse | undefined;
  let unreadable = "";
  try {
    parsed = parseScheduleResponse(response.body);
  } catch (err) {
    unreadable = err instanceof Error ? err.message : String(err);
  }
  const everyone = (what: Happened, description: string): RecipientOutcome[] =>
    recipients.map((recipient) => ({ recipient, ...outcomeOf(what), description, via }));
  const kind = classifyPeerStatus(status, "POST");

  if (kind === "success" && parsed?.kind === "responses") {
    const byKey = new Map(parsed.responses.map((r) => [keyOf(r.recipient), r]));
    const outcomes = recipients.map((recipient): RecipientOutcome => {
      const r = byKey.get(keyOf(recipient));
      if (r === undefined) {
        const description = `${url} did not answer for ${recipient}`;
        return { recipient, ...outcomeOf("try-later"), description, via };
      }
      const named = r.error && r.description ? `${r.error}: ${r.description}` : (r.description ?? r.error);
      const meaning = peerErrorMeaning(r.error);
      const description = meaning ? `${meaning} (${named})` : named;
      return {
        recipient,
        requestStatus: r.requestStatus,
        ...(r.calendarData !== undefined ? { calendarData: r.calendarData } : {}),
        ...(description !== undefined ? { description } : {}),
        via,
      };
    });
    return { outcomes };
  }
  if (kind === "success" && parsed === undefined) {
    const error = `${url} answered HTTP ${status} with no schedule-response: ${unreadable}`;
    return { outcomes: everyone("try-later", error), error };
  }
  const why = parsed?.kind === "error" ? refusal(parsed) : undefined;
  if (kind === "temporary") {
    const error = `${url} answered HTTP ${status}${why ? ` (${why})` : ""}`;
    const retryAfterMs = retryAfter(response.headers.get("retry-after"), i.nowMs);
    return {
      outcomes: everyone("try-later", error),
      error,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  const meaning = parsed?.kind === "error" ? peerErrorMeaning(parsed.element) : undefined;
  const error =
    parsed?.kind === "error" && parsed.element === "verification-failed"
      ? `${url} could not verify isched's DKIM signature (HTTP ${status}, ${why})`
      : `${url} refused the request${meaning ? `: ${meaning}` : ""} (HTTP ${status}${why ? `, ${why}` : ""})`;
  return { outcomes: everyone("refused", error), error };
}

/** `<element>: description`, or whichever of the two the peer gave. */
function refusal(e: Extract<ScheduleResponse, { kind: "error" }>): string {
  const element = e.element ?? "error";
  return e.description ? `${element}: ${e.description}` : element;
}

/** Recipients compare case-insensitively (ischedule/address.ts): peers echo them in their own spelling. */
function keyOf(address: string): string {
  return normalizeAddress(address).toLowerCase();
}
