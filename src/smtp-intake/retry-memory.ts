/**
 * What the intake already did for a transaction it then answered with a 4xx: which recipients were
 * committed to the iSchedule queue or accepted by the smarthost. An SMTP client retries a 4xx with
 * the same message (RFC 5321 §4.5.4.1), and the intake then handles only the recipients still
 * missing, so a smarthost outage after the queue committed does not send the invitation twice.
 *
 * Keyed by the SHA-256 of the exact message bytes and the reverse-path: a retry carries the same
 * bytes, and a different message never matches, so skipping a recipient can never lose mail. Kept
 * in memory for five days (RFC 5321 §4.5.4.1: clients give up after 4-5 days), at most `maxEntries`,
 * oldest first out. A restart forgets: the cost is a duplicate, which an iTIP receiver applies as the
 * same update (same UID and SEQUENCE), never a loss.
 */
import { createHash } from "node:crypto";

export interface RetryMemory {
  /** Lower-case recipients already handled for this transaction key. */
  handled(key: string): ReadonlySet<string>;
  /** Adds recipients to what this key has handled, and restarts its time to live. */
  remember(key: string, recipients: Iterable<string>): void;
  forget(key: string): void;
  readonly size: number;
}

export interface RetryMemoryOptions {
  ttlMs?: number;
  maxEntries?: number;
  nowMs?: () => number;
}

export const DEFAULT_RETRY_MEMORY_TTL_MS = 5 * 24 * 3600_000;
export const DEFAULT_RETRY_MEMORY_ENTRIES = 10_000;

const EMPTY: ReadonlySet<string> = new Set();

export function transactionKey(raw: Uint8Array, mailFrom: string): string {
  return createHash("sha256").update(mailFrom.toLowerCase()).update("\0").update(raw).digest("base64");
}

export function createRetryMemory(o: RetryMemoryOptions = {}): RetryMemory {
  const ttlMs = o.ttlMs ?? DEFAULT_RETRY_MEMORY_TTL_MS;
  const maxEntries = o.maxEntries ?? DEFAULT_RETRY_MEMORY_ENTRIES;
  const now = o.nowMs ?? Date.now;
  const entries = new Map<string, { recipients: Set<string>; expiresAt: number }>();

  const sweep = () => {
    const t = now();
    // Map order is insertion order, and remember() re-inserts: the oldest entries come first.
    for (const [key, entry] of entries) {
      if (entry.expiresAt > t && entries.size <= maxEntries) break;
      entries.delete(key);
    }
  };

  return {
    handled(key) {
      sweep();
      return entries.get(key)?.recipients ?? EMPTY;
    },
    remember(key, recipients) {
      const all = new Set(entries.get(key)?.recipients);
      for (const r of recipients) all.add(r.toLowerCase());
      entries.delete(key);
      entries.set(key, { recipients: all, expiresAt: now() + ttlMs });
      sweep();
    },
    forget(key) {
      entries.delete(key);
    },
    get size() {
      return entries.size;
    },
  };
}
