/**
 * How many key lookups may wait on the network at once, per signing domain and in all. Anyone can
 * sign with any d= and point its key at servers that never answer, and every request that waits for
 * such a key holds its body in memory: past these limits a lookup is refused at once (a temporary
 * failure the sender may retry) rather than queued.
 */

export interface LookupLimits {
  /** Lookups waiting on the network at once, all domains together. */
  readonly maxWaiting: number;
  /** Of those, for one signing domain. */
  readonly maxWaitingPerDomain: number;
}

export const DEFAULT_LOOKUP_LIMITS: LookupLimits = { maxWaiting: 32, maxWaitingPerDomain: 8 };

export type GateEntry =
  | { readonly ok: true; readonly leave: () => void }
  | { readonly ok: false; readonly message: string };

export interface LookupGate {
  /** A place for one lookup for `domain`, or why there is none; `leave()` exactly once when done. */
  enter(domain: string): GateEntry;
}

export function createLookupGate(limits: LookupLimits = DEFAULT_LOOKUP_LIMITS): LookupGate {
  let waiting = 0;
  const perDomain = new Map<string, number>();
  return {
    enter(domain) {
      const mine = perDomain.get(domain) ?? 0;
      if (mine >= limits.maxWaitingPerDomain) {
        return {
          ok: false,
          message: `This server has too many key retrievals for ${domain} in progress (${limits.maxWaitingPerDomain} at most); try again later.`,
        };
      }
      if (waiting >= limits.maxWaiting) {
        return {
          ok: false,
          message: `This server has too many key retrievals in progress (${limits.maxWaiting} at most); try again later.`,
        };
      }
      waiting++;
      perDomain.set(domain, mine + 1);
      let left = false;
      return {
        ok: true,
        leave() {
          if (left) return;
          left = true;
          waiting--;
          const n = (perDomain.get(domain) ?? 1) - 1;
          if (n === 0) perDomain.delete(domain);
          else perDomain.set(domain, n);
        },
      };
    },
  };
}
