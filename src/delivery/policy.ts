/**
 * The delivery policy: what isched does when a delivery attempt ends. Every rule about retrying,
 * failing, emailing instead (iMIP) and waiting is in this file. Targets report what happened to
 * each recipient as a REQUEST-STATUS (RFC 5546 §3.6, RFC 6638 §3.2.9) built by outcomeOf(), the
 * dispatcher asks decide() what that means for the delivery and records the answer; nothing else
 * decides.
 *
 * 1. What happened (outcomeOf, for the remote iSchedule target and the local HTTP targets):
 *
 *    | what happened                                                  | status | then            |
 *    |----------------------------------------------------------------|--------|-----------------|
 *    | the domain has no iSchedule receiver (no SRV record, draft §4) | 5.2    | iMIP now        |
 *    | the receiver's capabilities refuse the message (draft §5)      | 5.2    | iMIP now        |
 *    | every receiver says it serves no iSchedule (capabilities)      | 5.2    | iMIP now        |
 *    | a redirect isched does not follow (to http, a loop, too many)  | 5.2    | iMIP now        |
 *    | DNS failure, connection refused or cut, timeout                | 5.1    | retry           |
 *    | HTTP 408, 425, 429, 5xx but 501 (RFC 9110's "try later")       | 5.1    | retry           |
 *    | a 2xx with no readable schedule-response                       | 5.1    | retry           |
 *    | a recipient the schedule-response leaves out (draft §6.1.1)    | 5.1    | retry           |
 *    | the receiver refused the whole request: any other status, or   | 5.2    | fails, with the |
 *    |   an IS:error (403 verification-failed, originator-denied...)  |        | receiver's text |
 *    | isched's own configuration: an address it may not connect to,  | 5.2    | fails           |
 *    |   a bad URL, no key to sign with                               |        |                 |
 *    | a stored message that cannot be read again                     | 5.0    | fails           |
 *    | a recipient that cannot be asked (no domain, not an ATTENDEE)  | 3.7    | fails           |
 *    | isched's own key is not yet visible in DNS (src/keys)          | 5.1    | waits           |
 *
 *    A whole-request refusal fails rather than going by iMIP: the receiver exists and said no, and
 *    an iTIP sender expects to be told so; only a recipient iSchedule cannot reach at all is emailed.
 *    A transport failure is a retry, except for isched's own configuration; before anything was
 *    sent, while fetching capabilities, peerFetch's own verdict counts (fetchFailure()): a TLS
 *    failure or a host without an address there means "this receiver serves no iSchedule now".
 *    A receiver's per-recipient statuses (a schedule-response) are taken as given.
 *
 * 2. What a status means for the delivery (decide):
 *    - 2.x, 1.1 and 1.2 are delivered (by iMIP: sent-imip).
 *    - 3.x, 4.x and 5.x other than 5.1 are permanent (ischedule/status.ts classifyStatus, after RFC
 *      6638 §3.2.9): the delivery fails with the reason.
 *    - 1.0 (the receiver is still working), 5.1 and unreadable statuses are temporary: retried on
 *      the schedule, never sooner than a Retry-After asks (capped at a day).
 *    - A recipient iSchedule cannot reach (the iMIP-now rows) goes to iMIP at once when isched can
 *      send email (--smtp), else fails.
 *    - A recipient that waits for isched itself is looked at again every minute without counting
 *      an attempt, until its fallback time sends it by iMIP.
 *    - A free/busy query is answered now or never: never retried, never waiting.
 *
 * 3. When to stop trying (decide, nextAttemptAt):
 *    - The retry schedule is an explicit list (`--retry 1m,5m,15m,1h,4h,12h`), one delay per retry,
 *      each with ±10% jitter so that deliveries that failed together come back apart.
 *    - A remote delivery whose schedule is used up, or whose fallback time (--fallback-after) has
 *      come, goes by iMIP when isched can send email; otherwise it fails. A retry is never scheduled
 *      after the fallback time, so the email is not late.
 *    - A local delivery (the organisation's own calendar server is down) keeps trying at the
 *      schedule's last interval for at most LOCAL_GIVE_UP_MS, then fails.
 */

import { classifyStatus, STATUS } from "../ischedule/status.ts";
import { PeerFetchError } from "../net/peer-fetch.ts";
import type { Completion } from "../queue/queue.ts";
import type { AttemptOutcome, DeliveryRow } from "../store/store.ts";
import { formatDuration, readDuration } from "../time/duration.ts";
import type { RecipientOutcome } from "./target.ts";

// ---------------------------------------------------------------------------------------------
// 1. What happened

export type Happened =
  | "no-receiver"
  | "cannot-take"
  | "serves-no-ischedule"
  | "redirect-refused"
  | "try-later"
  | "refused"
  | "own-configuration"
  | "unreadable-message"
  | "not-a-recipient"
  | "own-key-unpublished";

/** The outcome, without its recipient and description, of what happened (the table above). */
export function outcomeOf(what: Happened): Pick<RecipientOutcome, "requestStatus" | "reroute" | "waiting"> {
  switch (what) {
    case "no-receiver":
    case "cannot-take":
    case "serves-no-ischedule":
    case "redirect-refused":
      return { requestStatus: STATUS.invalidService, reroute: "imip" };
    case "try-later":
      return { requestStatus: STATUS.serviceUnavailable };
    case "refused":
    case "own-configuration":
      return { requestStatus: STATUS.invalidService };
    case "unreadable-message":
      return { requestStatus: STATUS.notSupported };
    case "not-a-recipient":
      return { requestStatus: STATUS.invalidUser };
    case "own-key-unpublished":
      return { requestStatus: STATUS.serviceUnavailable, waiting: true };
  }
}

export type RedirectKind = "permanent" | "temporary";

/**
 * How `status` redirects a request made with `method`; undefined when it is not a redirect to follow.
 * RFC 9110 §15.4: 301 and 308 are permanent, 302 and 307 temporary. Following them is
 * src/outbound/redirects.ts's job.
 */
export function redirectKind(status: number, method: "GET" | "POST"): RedirectKind | undefined {
  if (status === 301 || status === 308) return "permanent";
  if (status === 302 || status === 307) return "temporary";
  // RFC 9110 §15.4.4: 303 points at another resource to GET. For a GET that is a plain temporary
  // redirect; for a POST it would drop the scheduling message, so it is a failure.
  if (status === 303 && method === "GET") return "temporary";
  return undefined;
}

/** What a peer's answer means for the request, before reading its body. */
export type PeerStatusClass = "success" | "not-modified" | "redirect" | "temporary" | "permanent";

/**
 * The draft lets a receiver use any status (draft §6.1.2), so only HTTP's own meanings count:
 * 408 (RFC 9110 §15.5.9), 425 (RFC 8470), 429 (RFC 6585) and 5xx other than 501 Not Implemented may
 * pass if asked again later; any other 4xx or 5xx will not.
 */
export function classifyPeerStatus(status: number, method: "GET" | "POST"): PeerStatusClass {
  if (status >= 200 && status < 300) return "success";
  if (status === 304) return "not-modified";
  if (redirectKind(status, method) !== undefined) return "redirect";
  const temporary = (status >= 500 && status !== 501) || status === 408 || status === 425 || status === 429;
  return temporary ? "temporary" : "permanent";
}

/**
 * Whether a failed request to a peer may pass later, and why it failed. For a scheduling POST,
 * network and peer errors are temporary whatever peerFetch says of them (a peer's expired
 * certificate is usually renewed soon, and the schedule ends in iMIP if it is not), except
 * refused-address and bad-url: isched's own address policy and configuration, which no retry
 * changes. While fetching capabilities, before anything is sent, peerFetch's own verdict counts.
 * Unknown errors are temporary: the retry schedule bounds them.
 */
export function fetchFailure(
  err: unknown,
  o: { stage: "capabilities" | "request"; what: string; signal?: AbortSignal },
): { temporary: boolean; reason: string } {
  if (err instanceof PeerFetchError) {
    if (o.stage === "capabilities") return { temporary: err.temporary, reason: err.message };
    const configuration = err.kind === "refused-address" || err.kind === "bad-url";
    return { temporary: !configuration, reason: err.message };
  }
  if (o.signal?.aborted) return { temporary: true, reason: `${o.what}: the attempt ran out of time` };
  return { temporary: true, reason: `${o.what} failed: ${err instanceof Error ? err.message : String(err)}` };
}

/**
 * A Retry-After (RFC 9110 §10.2.3) as a delay from `nowMs`: delay-seconds or an HTTP-date; a date in
 * the past is 0; anything else is ignored. nextAttemptAt() caps what it honours.
 */
export function retryAfter(value: string | null, nowMs: number): number | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

// ---------------------------------------------------------------------------------------------
// 2. What it means for the delivery

/** How long a local delivery keeps trying: the organisation's own calendar server is down. */
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
  const next = nextAttemptAt({
    // A local delivery stays at the schedule's last interval instead of running out of it.
    attempts: i.delivery.route === "local" ? Math.min(attempts, i.scheduleMs.length) : attempts,
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

// ---------------------------------------------------------------------------------------------
// 3. The retry schedule

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** `1m,5m,15m,1h,4h,12h`: seven attempts over about 17.5 hours. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  HOUR,
  4 * HOUR,
  12 * HOUR,
];

/** The jitter: a delay d becomes a value in [0.9 d, 1.1 d). */
export const RETRY_JITTER = 0.1;

/** The most a Retry-After can add: a broken or hostile peer cannot park deliveries for a month. */
export const MAX_RETRY_AFTER_MS = 24 * HOUR;

export interface NextAttemptOptions {
  /** Attempts made so far, including the one that just failed (>= 1). */
  attempts: number;
  scheduleMs: readonly number[];
  nowMs: number;
  /** Uniform in [0, 1), like Math.random. */
  random: () => number;
  /** The peer's Retry-After as a delay from now; a date in the past counts as 0. */
  retryAfterMs?: number;
}

/**
 * The time of the next attempt, or undefined when the schedule is used up: after the first attempt
 * wait scheduleMs[0], after the second scheduleMs[1], and so on, with the jitter; a Retry-After is
 * a floor (RFC 9110 §10.2.3), capped at MAX_RETRY_AFTER_MS.
 */
export function nextAttemptAt(o: NextAttemptOptions): number | undefined {
  if (!Number.isInteger(o.attempts) || o.attempts < 1) {
    throw new RangeError(`attempts must be a whole number >= 1, not ${o.attempts}`);
  }
  const scheduled = o.scheduleMs[o.attempts - 1];
  if (scheduled === undefined) return undefined;
  const jittered = scheduled * (1 - RETRY_JITTER + 2 * RETRY_JITTER * o.random());
  let delay = Math.round(jittered);
  if (o.retryAfterMs !== undefined) {
    if (!Number.isFinite(o.retryAfterMs))
      throw new RangeError(`retryAfterMs must be finite, not ${o.retryAfterMs}`);
    delay = Math.max(delay, Math.min(Math.max(o.retryAfterMs, 0), MAX_RETRY_AFTER_MS));
  }
  return o.nowMs + delay;
}

/**
 * Parses a schedule such as `1m,5m,15m,1h,4h,12h` (durations like 90s, 1h30m, 2d, 250ms; a bare
 * number is seconds; spaces around commas are ignored). Throws a SyntaxError naming the bad item.
 */
export function parseRetrySchedule(text: string): number[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.length === 1 && items[0] === "") {
    throw new SyntaxError(
      `The retry schedule "${text}" is empty: give at least one delay, e.g. 1m,5m,15m,1h,4h,12h`,
    );
  }
  return items.map((item, i) => {
    const where = `The retry schedule "${text}" has`;
    if (item === "") throw new SyntaxError(`${where} an empty item at position ${i + 1}`);
    const ms = readDuration(item);
    if (ms === undefined) {
      throw new SyntaxError(
        `${where} "${item}" at position ${i + 1}, which is not a duration (e.g. 30s, 5m, 1h30m, 2d)`,
      );
    }
    if (ms <= 0) throw new SyntaxError(`${where} a zero delay at position ${i + 1}`);
    return ms;
  });
}

/** The shortest form of a schedule, for help texts and logs: `1m,5m,15m,1h,4h,12h`. */
export function formatRetrySchedule(scheduleMs: readonly number[]): string {
  return scheduleMs.map(formatDuration).join(",");
}
