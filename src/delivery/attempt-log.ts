/**
 * The log line of one delivery attempt: every attempt's outcome is logged at info (a permanent
 * failure at warn), with the same fields in the same order, so an operator can follow a recipient
 * through the log with grep or a log collector without opening the console:
 *
 *   message   the message's uuid (the console's address for it)
 *   delivery  the delivery's id (`isched queue show`)
 *   recipient the calendar user address
 *   peer      the recipient's domain for a remote route; the local target's label for `local`
 *   route     local, ischedule, imip or relay
 *   target    where the attempt went (a URL or an SMTP relay, passwords removed)
 *   status    the attempt's outcome: delivered, pending, temporary, permanent, sent-imip, cancelled
 *   http      the HTTP status, when there was one
 *   requestStatus  the recipient's iSchedule request-status (`2.0;Success`, `5.3;...`)
 *   reason    why it did not succeed, in one line (absent when it did)
 *   next      when the next attempt is due (ISO 8601), or `none` when the delivery is final
 *   state     the delivery's state after the attempt
 *   attempt   the attempt's number for this delivery
 *   ms        how long it took
 *
 * Never the body, never a response body (the console keeps those); the logger removes what looks
 * like a secret in any value (text/redact.ts) on top.
 */

import type { LogFields, Logger, LogLevel } from "../log/logger.ts";
import type { DeliveryState, Route } from "../store/delivery-states.ts";
import type { AttemptOutcome } from "../store/store.ts";

export interface AttemptRecord {
  messageUuid: string;
  deliveryId: number;
  recipient: string;
  peer: string;
  route: Route;
  target?: string;
  outcome: AttemptOutcome;
  httpStatus?: number;
  requestStatus?: string;
  reason?: string;
  /** When the next attempt is due; undefined when there is none (the delivery is final). */
  nextAttemptAtMs?: number;
  state: DeliveryState;
  attempt: number;
  durationMs: number;
}

export interface LogEvent {
  readonly level: LogLevel;
  readonly message: string;
  readonly fields: LogFields;
}

/** A reason is one line, and not a page of a peer's HTML error. */
const MAX_REASON_CHARS = 300;

export function attemptLogEvent(a: AttemptRecord): LogEvent {
  // A peer may answer a bare request-status (`5.3;No scheduling support for user`): that is the reason.
  const failed = a.outcome !== "delivered" && a.outcome !== "sent-imip";
  const reason = (a.reason ?? (failed ? a.requestStatus : undefined))?.replace(/\s+/g, " ").trim();
  return {
    level: a.outcome === "permanent" ? "warn" : "info",
    message: `delivery attempt: ${a.outcome}`,
    fields: {
      message: a.messageUuid,
      delivery: a.deliveryId,
      recipient: a.recipient,
      peer: a.peer,
      route: a.route,
      target: a.target,
      status: a.outcome,
      http: a.httpStatus,
      requestStatus: a.requestStatus,
      reason:
        reason === undefined || reason === ""
          ? undefined
          : reason.length > MAX_REASON_CHARS
            ? `${reason.slice(0, MAX_REASON_CHARS)}…`
            : reason,
      next: a.nextAttemptAtMs === undefined ? "none" : new Date(a.nextAttemptAtMs).toISOString(),
      state: a.state,
      attempt: a.attempt,
      ms: Math.round(a.durationMs),
    },
  };
}

export function logAttempt(log: Logger, a: AttemptRecord): void {
  const e = attemptLogEvent(a);
  log.log(e.level, e.message, e.fields);
}
