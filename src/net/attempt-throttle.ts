/**
 * Slowing down password guessing (the console's sign-in and setup token, SMTP AUTH). A guess is
 * checked only with a reservation taken *before* the check starts, so guesses sent in parallel do not
 * all slip through while the first is still being hashed:
 *
 * - per client address: one guess at a time; after each failure the next must wait twice as long as
 *   the last (0.5 s, 1 s, 2 s, ... up to 15 minutes). A reservation counts as a failure until it is
 *   settled, so a guess whose check never settles still slows the address down. A success forgets the
 *   address. IPv6 clients are counted per /56 (what one customer of an ISP usually holds, RFC 6177),
 *   IPv4-mapped ones as IPv4;
 * - for everyone together, a ceiling a crowd of addresses cannot lift: at most `globalBurst` guesses
 *   at once from a full bucket that refills one guess every `globalRefillMs`, and at most
 *   `maxConcurrent` checks running at a time (each argon2 check costs tens of milliseconds of CPU and
 *   64 MB of memory).
 *
 * The table of addresses is bounded (oldest first out), so a flood of addresses cannot exhaust memory.
 */
import { parseV6 } from "./address-policy.ts";

export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 15 * 60_000;
/** An address with no failure for this long starts afresh. */
export const FORGET_AFTER_MS = 24 * 3_600_000;
const MAX_ENTRIES = 10_000;

export interface ThrottleOptions {
  nowMs?: () => number;
  /** Guesses everyone together may make at once from a full bucket. Default 20. */
  globalBurst?: number;
  /** The bucket regains one guess this often. Default 3 s (20 a minute). */
  globalRefillMs?: number;
  /** Checks running at a time, over all addresses. Default 2. */
  maxConcurrent?: number;
}

/** Why a guess may not be checked now. */
export type Refusal = { readonly ok: false; readonly waitMs: number; readonly scope: "address" | "everyone" };

export interface Reservation {
  readonly ok: true;
  /** Ends the reservation: a success forgets the address, a failure keeps it slowed down. */
  settle(outcome: "success" | "failure"): void;
}

export interface AttemptThrottle {
  /** The right to check one guess from `address` now, or how long to wait. */
  reserve(address: string): Reservation | Refusal;
}

interface Entry {
  failures: number;
  lastFailureMs: number;
  nextAllowedMs: number;
  checking: boolean;
}

/** The key an address is counted under: IPv4 as is, IPv6 by its first 56 bits. */
export function throttleKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const v6 = address.includes(":") ? parseV6(address) : null;
  if (!v6) return address;
  const hex = (n: number) => n.toString(16);
  return `${hex(v6[0]!)}:${hex(v6[1]!)}:${hex(v6[2]!)}:${hex(v6[3]! & 0xff00)}::/56`;
}

export function createAttemptThrottle(o: ThrottleOptions = {}): AttemptThrottle {
  const now = o.nowMs ?? Date.now;
  const burst = o.globalBurst ?? 20;
  const refillMs = o.globalRefillMs ?? 3000;
  const maxConcurrent = o.maxConcurrent ?? 2;
  const entries = new Map<string, Entry>();
  let tokens = burst;
  let refilledAtMs = now();
  let checking = 0;

  const current = (key: string): Entry | undefined => {
    const e = entries.get(key);
    if (e && !e.checking && now() - e.lastFailureMs > FORGET_AFTER_MS) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };
  const refill = () => {
    const gained = Math.floor((now() - refilledAtMs) / refillMs);
    if (gained <= 0) return;
    tokens = Math.min(burst, tokens + gained);
    refilledAtMs = tokens === burst ? now() : refilledAtMs + gained * refillMs;
  };

  return {
    reserve(address) {
      const key = throttleKey(address);
      const e = current(key);
      const t = now();
      if (e?.checking) return { ok: false, waitMs: FIRST_DELAY_MS, scope: "address" };
      if (e && e.nextAllowedMs > t) return { ok: false, waitMs: e.nextAllowedMs - t, scope: "address" };
      refill();
      if (tokens < 1) return { ok: false, waitMs: refilledAtMs + refillMs - t, scope: "everyone" };
      if (checking >= maxConcurrent) return { ok: false, waitMs: FIRST_DELAY_MS, scope: "everyone" };
      tokens -= 1;
      checking += 1;
      // Counted as a failure until settled.
      const entry = e ?? { failures: 0, lastFailureMs: 0, nextAllowedMs: 0, checking: false };
      entry.failures += 1;
      entry.lastFailureMs = t;
      entry.nextAllowedMs = t + Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (entry.failures - 1));
      entry.checking = true;
      entries.delete(key);
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      entries.set(key, entry);
      let settled = false;
      return {
        ok: true,
        settle(outcome) {
          if (settled) return;
          settled = true;
          checking -= 1;
          entry.checking = false;
          if (outcome === "success") {
            if (entries.get(key) === entry) entries.delete(key);
            tokens = Math.min(burst, tokens + 1);
          }
        },
      };
    },
  };
}
