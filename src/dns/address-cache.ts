/**
 * A/AAAA answers remembered within their TTL (at most five minutes) for peerFetch, which resolves the
 * peer's host before every request (it connects to the address it checked). Without it every POST to
 * a peer cost a DNS round trip. Errors are not remembered; "no such name" briefly (30 s).
 */
import type { AddressRecord, DnsAnswer, DnsResolver } from "./client.ts";

export interface AddressCacheOptions {
  nowMs?: () => number;
  maxTtlSeconds?: number;
  maxEntries?: number;
}

export function cachingAddresses(
  resolver: Pick<DnsResolver, "addresses">,
  o: AddressCacheOptions = {},
): Pick<DnsResolver, "addresses"> {
  const now = o.nowMs ?? Date.now;
  const maxTtl = o.maxTtlSeconds ?? 300;
  const maxEntries = o.maxEntries ?? 10_000;
  const cache = new Map<string, { answer: DnsAnswer<AddressRecord>; expiresAtMs: number }>();
  return {
    async addresses(name) {
      const key = name.toLowerCase();
      const hit = cache.get(key);
      if (hit && hit.expiresAtMs > now()) return hit.answer;
      const answer = await resolver.addresses(name);
      if (answer.status !== "error") {
        const ttl = answer.status === "ok" ? Math.min(answer.ttl, maxTtl) : Math.min(answer.ttl, 30);
        if (ttl > 0) {
          cache.delete(key);
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
          cache.set(key, { answer, expiresAtMs: now() + ttl * 1000 });
        }
      }
      return answer;
    },
  };
}
