/**
 * Slowing down password guessing: after each failed sign-in from a client address, the next attempt
 * from it must wait twice as long as the last (0.5 s, 1 s, 2 s, ... up to 15 minutes); earlier ones
 * are refused with the time to wait, without checking the password. IPv6 clients are counted per /64,
 * since one host usually owns a whole /64. A success forgets the address. The table is bounded so a
 * flood of addresses cannot exhaust memory; the oldest entries go first.
 */

export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 15 * 60_000;
/** An address with no failure for this long starts afresh. */
export const FORGET_AFTER_MS = 24 * 3_600_000;
const MAX_ENTRIES = 10_000;

interface Entry {
  failures: number;
  lastFailureMs: number;
  nextAllowedMs: number;
}

export interface Throttle {
  /** 0 when an attempt from `address` may go ahead now, else how many ms it must wait. */
  waitMs(address: string): number;
  failed(address: string): void;
  succeeded(address: string): void;
}

/** The key an address is counted under: IPv4 as is, IPv6 by its first 64 bits. */
export function throttleKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail = ""] = address.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = address.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

export function createThrottle(nowMs: () => number = Date.now): Throttle {
  const entries = new Map<string, Entry>();
  const current = (key: string): Entry | undefined => {
    const e = entries.get(key);
    if (e && nowMs() - e.lastFailureMs > FORGET_AFTER_MS) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };
  return {
    waitMs(address) {
      const e = current(throttleKey(address));
      return e ? Math.max(0, e.nextAllowedMs - nowMs()) : 0;
    },
    failed(address) {
      const key = throttleKey(address);
      const e = current(key) ?? { failures: 0, lastFailureMs: 0, nextAllowedMs: 0 };
      e.failures += 1;
      e.lastFailureMs = nowMs();
      e.nextAllowedMs = e.lastFailureMs + Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (e.failures - 1));
      entries.delete(key);
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      entries.set(key, e);
    },
    succeeded(address) {
      entries.delete(throttleKey(address));
    },
  };
}
