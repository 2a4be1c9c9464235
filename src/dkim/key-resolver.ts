/**
 * Key retrieval in the signature's q= order over the configured sources, with a cache.
 *
 * - Keys the operator configured (private-exchange) are consulted first whatever q= says: the
 *   operator's word about a peer outranks where the signer suggests looking.
 * - Then the q= methods in order. The first source that has records for (d, s) decides; "absent" moves on to the next method;
 *   an error moves on too but, if nothing is found, makes the outcome temporary (key-unavailable).
 * - Positive and negative answers are cached within their TTL (clamped); errors are not cached.
 * - Parsed keys are cached, so a verification with a cached key does no parsing and no I/O.
 * - `refresh` bypasses the cache once (key rotation), at most once per key per REFRESH_INTERVAL_MS,
 *   so forged signatures cannot turn isched into a DNS amplifier.
 */
import { type KeyRecordParse, parseKeyRecord } from "./key-record.ts";
import type { KeySource, SourceResult } from "./key-source.ts";
import type { QueryMethod } from "./signature.ts";
import { type DkimFail, fail } from "./verdict.ts";

export interface KeyCandidate {
  readonly source: QueryMethod;
  readonly where: string;
  readonly parsed: KeyRecordParse;
}

export type KeyLookup =
  | { readonly ok: true; readonly candidates: readonly KeyCandidate[]; readonly fromCache: boolean }
  | DkimFail;

export interface KeyQuery {
  readonly domain: string;
  readonly selector: string;
  readonly methods: readonly QueryMethod[];
  /** Bypass the cache (after a failed verification with a cached key). */
  readonly refresh?: boolean;
}

export interface KeyResolver {
  lookup(query: KeyQuery): Promise<KeyLookup>;
}

export interface KeyResolverOptions {
  sources: readonly KeySource[];
  nowMs?: () => number;
  minRsaBits?: number;
  maxTtlSeconds?: number;
  maxNegativeTtlSeconds?: number;
  maxEntries?: number;
}

const REFRESH_INTERVAL_MS = 10_000;

/** private-exchange first, the rest in the signer's order. */
function sortOperatorFirst(methods: readonly QueryMethod[]): readonly QueryMethod[] {
  if (methods[0] === "private-exchange") return methods;
  return ["private-exchange", ...methods.filter((m) => m !== "private-exchange")];
}

type Cached =
  | { kind: "found"; candidates: KeyCandidate[]; expiresAtMs: number; fetchedAtMs: number }
  | { kind: "absent"; where: string; expiresAtMs: number; fetchedAtMs: number };

export function createKeyResolver(o: KeyResolverOptions): KeyResolver {
  const now = o.nowMs ?? Date.now;
  const maxTtl = o.maxTtlSeconds ?? 3600;
  const maxNegativeTtl = o.maxNegativeTtlSeconds ?? 300;
  const maxEntries = o.maxEntries ?? 10_000;
  const cache = new Map<string, Cached>();
  const sources = new Map(o.sources.map((s) => [s.method, s]));
  const operatorFirst = sources.has("private-exchange");

  function remember(key: string, result: SourceResult, t: number): Cached | undefined {
    if (result.status === "error") return undefined;
    let entry: Cached;
    if (result.status === "found") {
      const ttl = Math.min(result.ttlSeconds, maxTtl);
      const candidates = result.records.map((r) => ({
        source: key.split("|")[0] as QueryMethod,
        where: r.where,
        parsed: parseKeyRecord(r.text, { minRsaBits: o.minRsaBits }),
      }));
      entry = { kind: "found", candidates, expiresAtMs: t + ttl * 1000, fetchedAtMs: t };
    } else {
      entry = {
        kind: "absent",
        where: result.where,
        expiresAtMs: t + Math.min(result.ttlSeconds, maxNegativeTtl) * 1000,
        fetchedAtMs: t,
      };
    }
    cache.delete(key);
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, entry);
    return entry;
  }

  return {
    async lookup(q: KeyQuery): Promise<KeyLookup> {
      const ids = { domain: q.domain, selector: q.selector };
      const absentAt: string[] = [];
      const errors: string[] = [];
      let temporary = false;
      const order =
        operatorFirst && !q.methods.includes("private-exchange")
          ? ["private-exchange" as const, ...q.methods]
          : q.methods;
      for (const method of operatorFirst ? sortOperatorFirst(order) : order) {
        const source = sources.get(method);
        if (!source) continue;
        const key = `${method}|${q.domain}|${q.selector}`;
        const t = now();
        let entry = cache.get(key);
        const fresh = entry !== undefined && entry.expiresAtMs > t;
        const mayRefresh = entry === undefined || t - entry.fetchedAtMs >= REFRESH_INTERVAL_MS;
        let fromCache = true;
        if (!fresh || (q.refresh && mayRefresh)) {
          const result = await source.fetch(q.domain, q.selector);
          if (result.status === "error") {
            errors.push(result.message);
            temporary ||= result.temporary;
            continue;
          }
          entry = remember(key, result, t);
          fromCache = false;
        }
        if (!entry) continue;
        if (entry.kind === "found") return { ok: true, candidates: entry.candidates, fromCache };
        absentAt.push(`${entry.where} (${method})`);
      }
      if (errors.length > 0) {
        const message = `Cannot retrieve the key for ${q.selector}._domainkey.${q.domain}: ${errors.join("; ")}.`;
        return fail("key-unavailable", message, { ...ids, temporary });
      }
      const tried =
        absentAt.length > 0 ? absentAt.join(", ") : `none of q=${q.methods.join(":")} is enabled here`;
      return fail("key-not-found", `No key record for selector ${q.selector} of ${q.domain}: ${tried}.`, ids);
    },
  };
}
