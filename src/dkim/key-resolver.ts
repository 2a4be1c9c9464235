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
 * - Lookups that must wait on the network are limited per signing domain and in all (lookup-gate.ts);
 *   one over the limit fails at once as temporary. Concurrent lookups of one key share one fetch.
 * - A lookup ends when the caller's signal aborts (its verification deadline), as a temporary failure;
 *   a fetch itself is stopped after fetchTimeoutMs whoever waits for it.
 */
import { type KeyRecordParse, parseKeyRecord } from "./key-record.ts";
import type { KeySource, SourceResult } from "./key-source.ts";
import { createLookupGate, type LookupLimits } from "./lookup-gate.ts";
import type { QueryMethod } from "./names.ts";
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
  /** The caller's deadline: the lookup gives up (temporary) when it aborts. */
  readonly signal?: AbortSignal;
}

export type KeyReservation =
  | {
      readonly ok: true;
      /** Looks up keys in the place reserved (if one was needed), without asking the gate again. */
      readonly keys: KeyResolver;
      /** Gives the place back; call it exactly once, when the request is done. */
      release(): void;
    }
  | { readonly ok: false; readonly message: string };

export interface KeyResolver {
  lookup(query: KeyQuery): Promise<KeyLookup>;
  /**
   * The key from the cache alone, without waiting: what lookup() would answer when every source it
   * would consult has a fresh entry and one of them has the key; undefined otherwise (ask lookup()).
   * A verification with a warm cache then costs no promise and no turn of the event loop.
   */
  cached?(query: Omit<KeyQuery, "refresh" | "signal">): KeyLookup | undefined;
  /**
   * Before a request's body is read: when its key is not in the cache, a place among the lookups
   * that may wait on the network, or why there is none. So a request that would wait for a key
   * never buffers its body past the limits.
   */
  reserve(query: Omit<KeyQuery, "refresh" | "signal">): KeyReservation;
}

export interface KeyResolverOptions {
  sources: readonly KeySource[];
  nowMs?: () => number;
  minRsaBits?: number;
  maxTtlSeconds?: number;
  maxNegativeTtlSeconds?: number;
  maxEntries?: number;
  /** Lookups waiting on the network at once (default 32 in all, 8 per signing domain). */
  limits?: LookupLimits;
  /** A source's fetch is stopped after this long. Default 10 s. */
  fetchTimeoutMs?: number;
}

const REFRESH_INTERVAL_MS = 10_000;
const DEFAULT_FETCH_TIMEOUT_MS = 10_000;

/** private-exchange first, the rest in the signer's order. */
function sortOperatorFirst(methods: readonly QueryMethod[]): readonly QueryMethod[] {
  if (methods[0] === "private-exchange") return methods;
  return ["private-exchange", ...methods.filter((m) => m !== "private-exchange")];
}

type Cached =
  | { kind: "found"; candidates: KeyCandidate[]; expiresAtMs: number; fetchedAtMs: number }
  | { kind: "absent"; where: string; expiresAtMs: number; fetchedAtMs: number };

type Fetched = { ok: true; entry: Cached | undefined } | { ok: false; message: string; temporary: boolean };

const ABORTED = Symbol("aborted");

/** `promise`, or ABORTED as soon as `signal` aborts (the promise itself goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | typeof ABORTED> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export function createKeyResolver(o: KeyResolverOptions): KeyResolver {
  const now = o.nowMs ?? Date.now;
  const maxTtl = o.maxTtlSeconds ?? 3600;
  const maxNegativeTtl = o.maxNegativeTtlSeconds ?? 300;
  const maxEntries = o.maxEntries ?? 10_000;
  const cache = new Map<string, Cached>();
  const sources = new Map(o.sources.map((s) => [s.method, s]));
  const operatorFirst = sources.has("private-exchange");
  const gate = createLookupGate(o.limits);
  const fetchTimeoutMs = o.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const inFlight = new Map<string, Promise<Fetched>>();

  /** One fetch per key at a time, whoever asks; the result goes into the cache. */
  function fetchShared(source: KeySource, key: string, q: KeyQuery): Promise<Fetched> {
    let pending = inFlight.get(key);
    if (!pending) {
      const t = now();
      pending = source
        .fetch(q.domain, q.selector, AbortSignal.timeout(fetchTimeoutMs))
        .then((result): Fetched => {
          if (result.status === "error")
            return { ok: false, message: result.message, temporary: result.temporary };
          return { ok: true, entry: remember(key, result, t) };
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  }

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

  // Signatures of one peer bring the same q= list (signature.ts hands out one array per list), so
  // its operator-first order is worked out once per list rather than on every request.
  const operatorOrder = new WeakMap<readonly QueryMethod[], readonly QueryMethod[]>();
  const methodsFor = (q: Pick<KeyQuery, "methods">): readonly QueryMethod[] => {
    if (!operatorFirst || q.methods[0] === "private-exchange") return q.methods;
    let ordered = operatorOrder.get(q.methods);
    if (ordered === undefined) {
      ordered = sortOperatorFirst(
        q.methods.includes("private-exchange") ? q.methods : ["private-exchange", ...q.methods],
      );
      operatorOrder.set(q.methods, ordered);
    }
    return ordered;
  };

  /** Would a lookup of `q` now wait on the network (a key not in the cache, or stale)? */
  function needsNetwork(q: Pick<KeyQuery, "domain" | "selector" | "methods">): boolean {
    const t = now();
    for (const method of methodsFor(q)) {
      if (!sources.has(method)) continue;
      const entry = cache.get(`${method}|${q.domain}|${q.selector}`);
      const fresh = entry !== undefined && entry.expiresAtMs > t;
      // Operator keys are read from memory, and one found there ends the lookup (lookup() below):
      // a request signed with one never waits on the network, whatever else q= lists.
      if (method === "private-exchange") {
        if (fresh && entry.kind === "found") return false;
        continue;
      }
      if (!fresh) return true;
      if (entry.kind === "found") return false;
    }
    return false;
  }

  /** The found key when every method before it answers from a fresh entry (see KeyResolver.cached). */
  function cached(q: Omit<KeyQuery, "refresh" | "signal">): KeyLookup | undefined {
    const t = now();
    for (const method of methodsFor(q)) {
      if (!sources.has(method)) continue;
      const entry = cache.get(`${method}|${q.domain}|${q.selector}`);
      if (entry === undefined || entry.expiresAtMs <= t) return undefined;
      if (entry.kind === "found") return { ok: true, candidates: entry.candidates, fromCache: true };
    }
    // Absent everywhere: lookup() words the refusal.
    return undefined;
  }

  /** `placeHeld`: the caller reserved a place for this request, so the gate is not asked again. */
  async function lookup(q: KeyQuery, placeHeld: boolean): Promise<KeyLookup> {
    const ids = { domain: q.domain, selector: q.selector };
    const absentAt: string[] = [];
    const errors: string[] = [];
    let temporary = false;
    for (const method of methodsFor(q)) {
      const source = sources.get(method);
      if (!source) continue;
      const key = `${method}|${q.domain}|${q.selector}`;
      const t = now();
      let entry = cache.get(key);
      const fresh = entry !== undefined && entry.expiresAtMs > t;
      const mayRefresh = entry === undefined || t - entry.fetchedAtMs >= REFRESH_INTERVAL_MS;
      let fromCache = true;
      if (!fresh || (q.refresh && mayRefresh)) {
        // Operator keys are read from memory; every other method may wait on a stranger's server.
        const place = method === "private-exchange" || placeHeld ? undefined : gate.enter(q.domain);
        if (place && !place.ok) return fail("key-unavailable", place.message, { ...ids, temporary: true });
        let fetched: Fetched | typeof ABORTED;
        try {
          fetched = await untilAborted(fetchShared(source, key, q), q.signal);
        } finally {
          if (place?.ok) place.leave();
        }
        if (fetched === ABORTED) {
          const message = `Retrieving the key for ${q.selector}._domainkey.${q.domain} (${method}) did not finish in time; try again later.`;
          return fail("key-unavailable", message, { ...ids, temporary: true });
        }
        if (!fetched.ok) {
          errors.push(fetched.message);
          temporary ||= fetched.temporary;
          continue;
        }
        entry = fetched.entry;
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
  }

  const resolver: KeyResolver = {
    lookup: (q) => lookup(q, false),
    cached,
    reserve(q) {
      if (!needsNetwork(q)) return { ok: true, keys: resolver, release() {} };
      const place = gate.enter(q.domain);
      if (!place.ok) return place;
      const held: KeyResolver = {
        lookup: (query) => lookup(query, true),
        cached,
        reserve: () => ({ ok: true, keys: held, release() {} }),
      };
      return { ok: true, keys: held, release: place.leave };
    },
  };
  return resolver;
}
