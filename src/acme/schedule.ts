/**
 * When to renew a certificate and when to try again after a failure: pure functions over times in
 * milliseconds, so the manager, a status page and the tests agree.
 *
 * Renewal: when a third of the certificate's lifetime is left (about 30 days for a 90-day Let's
 * Encrypt certificate, 2 days for a 6-day one), which is what Let's Encrypt recommends for clients
 * without ACME Renewal Information (RFC 9773) and leaves weeks for failures to be noticed and fixed.
 *
 * Failures: exponential backoff from 1 minute, doubling, capped at 6 hours (so an outage of the CA or
 * a broken DNS record costs a few dozen orders a week, well under Let's Encrypt's failed-validation
 * limits), with ±10% jitter so several isched instances that failed together do not come back in
 * the same second. A Retry-After from the CA (RFC 8555 §6.6) is a floor, capped at 24 hours.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const FIRST_RETRY_MS = MINUTE;
export const MAX_RETRY_MS = 6 * HOUR;
export const MAX_RETRY_AFTER_MS = 24 * HOUR;
export const RETRY_JITTER = 0.1;
/** A certificate this close to its end is worth a warning in the log every hour. */
export const EXPIRY_WARNING_MS = 7 * DAY;

export interface Validity {
  notBeforeMs: number;
  notAfterMs: number;
}

/** The time at which a certificate should be renewed: when a third of its lifetime is left. */
export function renewalDueAt(v: Validity): number {
  const lifetimeMs = Math.max(0, v.notAfterMs - v.notBeforeMs);
  return v.notAfterMs - Math.floor(lifetimeMs / 3);
}

export interface RetryOptions {
  /** Failed attempts in a row, including the one that just failed (>= 1). */
  failures: number;
  nowMs: number;
  /** Uniform in [0, 1), like Math.random. */
  random: () => number;
  /** The CA's Retry-After as a delay from now. */
  retryAfterMs?: number;
}

/** The time of the next attempt after `failures` failures in a row. */
export function retryAt(o: RetryOptions): number {
  if (!Number.isInteger(o.failures) || o.failures < 1) {
    throw new RangeError(`failures must be a whole number >= 1, not ${o.failures}`);
  }
  // 2 ** 30 is already far past the cap; a bigger exponent would only risk Infinity.
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(o.failures - 1, 30));
  let delay = Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * o.random()));
  if (o.retryAfterMs !== undefined && Number.isFinite(o.retryAfterMs)) {
    delay = Math.max(delay, Math.min(Math.max(0, o.retryAfterMs), MAX_RETRY_AFTER_MS));
  }
  return o.nowMs + delay;
}

/** True when a certificate ends within EXPIRY_WARNING_MS of `nowMs` (or has ended). */
export function nearExpiry(notAfterMs: number, nowMs: number): boolean {
  return notAfterMs - nowMs <= EXPIRY_WARNING_MS;
}
