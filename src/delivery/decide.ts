/**
 * What happens to a delivery after an attempt: delivered, retried later, rerouted to iMIP, or failed.
 * One pure function, so the rules read in one place:
 *
 * - A recipient isched did not try because it is not ready itself (`waiting`: its DKIM key is not yet
 *   visible in DNS) waits a minute without counting an attempt, until the fallback time sends it by
 *   iMIP; a free/busy query fails at once.
 * - 2.x, 1.1 and 1.2 are delivered (by iMIP: sent).
 * - 1.0 (the receiver is still working on it), 5.1 and unreadable statuses are temporary: retried on
 *   the schedule (retry-policy.ts), honouring Retry-After. A free/busy query is answered now or never,
 *   so it is not retried.
 * - When the schedule is exhausted, or the delivery's fallback time has come, a remote iSchedule
 *   delivery is emailed instead (iMIP), if isched can send email; otherwise it fails. A local delivery
 *   keeps trying at the schedule's last interval (the organisation's own calendar server is down: keep
 *   the invitation until it is back), for at most LOCAL_GIVE_UP_MS.
 * - 3.x, 4.x and 5.x other than 5.1 are permanent answers (the receiver knows this recipient
 *   cannot be scheduled, or refused the request): the delivery ends with the reason, as iTIP
 *   senders expect. Only a recipient the sender could not reach by iSchedule at all (no receiver,
 *   or one that cannot take the message: `reroute`) goes to iMIP.
 */

import { classifyStatus } from "../ischedule/status.ts";
import type { Completion } from "../queue/queue.ts";
import { nextAttemptAt } from "../queue/retry-policy.ts";
import type { AttemptOutcome } from "../store/attempts.ts";
import type { DeliveryRow } from "../store/deliveries.ts";
import type { RecipientOutcome } from "../targets/target.ts";

export const LOCAL_GIVE_UP_MS = 30 * 24 * 3_600_000;
/** A delivery that waits for isched (its key's publication) is looked at again this often. */
export const WAIT_RECHECK_MS = 60_000;

export interface DecideInput {
  outcome: RecipientOutcome;
  delivery: Pick<DeliveryRow, "route" | "attempts" | "fallbackAt" | "createdAt">;
  component: string;
  nowMs: number;
  scheduleMs: readonly number[];
  random: () => number;
  retryAfterMs?: number;
  /** isched can send email (--smtp is set). */
  imipAvailable: boolean;
}

export interface Decision {
  completion: Completion;
  attemptOutcome: AttemptOutcome;
}

export function decide(i: DecideInput): Decision {
  const status = i.outcome.requestStatus;
  const error = i.outcome.description;
  const remote = i.delivery.route === "ischedule";
  const toImip = (why: string): Decision => ({
    completion: { state: "queued", nextAttemptAt: i.nowMs, route: "imip", requestStatus: status, error: why },
    attemptOutcome: "permanent",
  });

  if (i.outcome.waiting) {
    const why = error ?? "isched is not ready to send yet";
    // A free/busy query is answered now or never: it does not wait.
    if (i.component === "VFREEBUSY")
      return {
        completion: { state: "failed", requestStatus: status, error: why },
        attemptOutcome: "pending",
      };
    const fallbackDue = i.delivery.fallbackAt !== null && i.nowMs >= i.delivery.fallbackAt;
    if (remote && fallbackDue && i.imipAvailable)
      return toImip(`not delivered by iSchedule in time (${why})`);
    const recheck = i.nowMs + WAIT_RECHECK_MS;
    const at =
      remote && i.delivery.fallbackAt !== null && i.imipAvailable
        ? Math.min(recheck, i.delivery.fallbackAt)
        : recheck;
    return { completion: { state: "waiting", nextAttemptAt: at, error: why }, attemptOutcome: "pending" };
  }

  if (i.outcome.reroute === "imip") {
    if (i.imipAvailable) return toImip(error ?? "no iSchedule receiver can take this message");
    return { completion: { state: "failed", requestStatus: status, error }, attemptOutcome: "permanent" };
  }

  const kind = classifyStatus(status);
  if (kind === "delivered") {
    const state = i.delivery.route === "imip" ? "sent-imip" : "delivered";
    return {
      completion: { state, requestStatus: status },
      attemptOutcome: state === "sent-imip" ? "sent-imip" : "delivered",
    };
  }
  if (kind === "permanent") {
    return { completion: { state: "failed", requestStatus: status, error }, attemptOutcome: "permanent" };
  }

  // Temporary (or 1.0 pending, which is retried with the same message id: the receiver drops duplicates).
  const attemptOutcome: AttemptOutcome = kind === "pending" ? "pending" : "temporary";
  if (i.component === "VFREEBUSY") {
    return {
      completion: { state: "failed", requestStatus: status, error: error ?? "free/busy is not retried" },
      attemptOutcome,
    };
  }
  const attempts = i.delivery.attempts + 1;
  const fallbackDue = i.delivery.fallbackAt !== null && i.nowMs >= i.delivery.fallbackAt;
  if (remote && fallbackDue && i.imipAvailable)
    return toImip(`not delivered by iSchedule in time (${error ?? status})`);
  const next =
    i.delivery.route === "local"
      ? nextAttemptAt({
          attempts: Math.min(attempts, i.scheduleMs.length),
          scheduleMs: i.scheduleMs,
          nowMs: i.nowMs,
          random: i.random,
          retryAfterMs: i.retryAfterMs,
        })
      : nextAttemptAt({
          attempts,
          scheduleMs: i.scheduleMs,
          nowMs: i.nowMs,
          random: i.random,
          retryAfterMs: i.retryAfterMs,
        });
  const givenUp = i.delivery.route === "local" && i.nowMs - i.delivery.createdAt > LOCAL_GIVE_UP_MS;
  if (next === undefined || givenUp) {
    if (remote && i.imipAvailable) return toImip(`iSchedule retries exhausted (${error ?? status})`);
    return {
      completion: { state: "failed", requestStatus: status, error: `retries exhausted: ${error ?? status}` },
      attemptOutcome,
    };
  }
  // Never wait past the fallback time: the email must not be late because a retry was scheduled after it.
  const at =
    remote && i.delivery.fallbackAt !== null && i.imipAvailable
      ? Math.min(next, i.delivery.fallbackAt)
      : next;
  return { completion: { state: "queued", nextAttemptAt: at, requestStatus: status, error }, attemptOutcome };
}
