/**
 * What isched learns about a peer, kept for the peer's page (the store's peer_facts): from "test this
 * domain" and from real traffic. For traffic, the discovery service, the capabilities cache and the
 * key resolver the server uses are wrapped here, so every lookup they make is seen without their
 * code knowing: a new value is written at once, the same value is confirmed at most once a minute
 * per fact (the database is not written for every message).
 */
import type { KeyCandidate, KeyLookup, KeyResolver } from "../dkim/key-resolver.ts";
import type { CapabilitiesCache, CapabilitiesResult } from "../outbound/capabilities-cache.ts";
import type { Discovery, DiscoveryService } from "../outbound/discovery.ts";
import type { PeerFactKind, PeerFactRow, PeerFactSource, Store } from "../store/store.ts";

export interface DiscoveryFact {
  how: "srv" | "static" | "none";
  /** Where the record was found (a parent domain after a walk); absent for "none". */
  foundAt?: string;
  targets: { url: string; priority: number; weight: number }[];
  path?: string;
  /** Why there is no iSchedule server, for "none". */
  reason?: string;
}

export interface CapabilitiesFact {
  url: string;
  serial: number;
  versions: string[];
  components: string[];
  maxRecipients: number | null;
  maxContentLength: number | null;
  maxInstances: number | null;
  administrator: string | null;
}

export interface KeyFact {
  /** One per place the key was found: how it was fetched, where, and what it is. */
  found: { method: string; where: string; type: string; bits: number; testing: boolean }[];
}

export type PeerFact =
  | (Base & { kind: "discovery"; value: DiscoveryFact })
  | (Base & { kind: "capabilities"; value: CapabilitiesFact })
  | (Base & { kind: "key"; value: KeyFact });

interface Base {
  name: string;
  source: PeerFactSource;
  learnedAt: number;
  confirmedAt: number;
}

const CONFIRM_EVERY_MS = 60_000;
const MAX_REMEMBERED = 10_000;

export function discoveryFact(d: Discovery): DiscoveryFact | undefined {
  if (d.kind === "error") return undefined;
  if (d.kind === "none") return { how: "none", targets: [], reason: d.reason };
  return {
    how: d.how,
    foundAt: d.domain,
    // Sorted: the order is drawn afresh for each lookup (RFC 2782), the records are what was learned.
    targets: d.targets
      .map((t) => ({ url: t.url, priority: t.priority, weight: t.weight }))
      .sort((a, b) => a.priority - b.priority || a.url.localeCompare(b.url)),
    path: d.path,
  };
}

export function capabilitiesFact(c: CapabilitiesResult): CapabilitiesFact | undefined {
  if (!c.ok) return undefined;
  const caps = c.capabilities;
  return {
    url: c.url,
    serial: caps.serialNumber,
    versions: [...caps.versions],
    components: caps.components.map((x) => `${x.name}${x.methods.length ? ` (${x.methods.join(" ")})` : ""}`),
    maxRecipients: caps.maxRecipients ?? null,
    maxContentLength: caps.maxContentLength ?? null,
    maxInstances: caps.maxInstances ?? null,
    administrator: caps.administrator ?? null,
  };
}

export function keyFact(candidates: readonly KeyCandidate[]): KeyFact | undefined {
  const found = candidates.flatMap((c) =>
    c.parsed.ok
      ? [
          {
            method: c.source,
            where: c.where,
            type: c.parsed.key.type,
            bits: c.parsed.key.bits,
            testing: c.parsed.key.flags.includes("y"),
          },
        ]
      : [],
  );
  return found.length > 0 ? { found } : undefined;
}

export class PeerFacts {
  readonly #store: Store;
  readonly #now: () => number;
  /** What was last written per fact, so that an unchanged value is confirmed only now and then. */
  readonly #written = new Map<string, { value: string; atMs: number }>();
  /** Endpoint URL -> the peer domain it was discovered for (capabilities are fetched by URL). */
  readonly #domainOfUrl = new Map<string, string>();

  constructor(store: Store, nowMs: () => number = Date.now) {
    this.#store = store;
    this.#now = nowMs;
  }

  /** Resolves once written; never rejects (what traffic learns is not worth failing a delivery for). */
  async record(
    f: { domain: string; kind: PeerFactKind; name?: string; source: PeerFactSource },
    value: object,
  ): Promise<void> {
    const json = JSON.stringify(value);
    const key = `${f.domain}|${f.kind}|${f.name ?? ""}`;
    const now = this.#now();
    const last = this.#written.get(key);
    // A test always writes; traffic writes a change at once and a confirmation at most once a minute.
    if (f.source === "traffic" && last?.value === json && now - last.atMs < CONFIRM_EVERY_MS) return;
    try {
      await this.#store.recordPeerFact({
        domain: f.domain,
        kind: f.kind,
        name: f.name ?? "",
        value: json,
        source: f.source,
        atMs: now,
      });
    } catch {
      // The database is closing (shutdown): what traffic learns is not worth failing a delivery for.
      return;
    }
    this.#written.delete(key);
    if (this.#written.size >= MAX_REMEMBERED) this.#written.delete(this.#written.keys().next().value!);
    this.#written.set(key, { value: json, atMs: now });
  }

  async of(domain: string): Promise<PeerFact[]> {
    return (await this.#store.peerFactsOf(domain)).map(parseRow);
  }

  /** The server's discovery, recording each answer for the domain asked. */
  watchDiscovery(d: DiscoveryService): DiscoveryService {
    return {
      discover: async (domain) => {
        const r = await d.discover(domain);
        const fact = discoveryFact(r);
        if (fact) {
          void this.record({ domain, kind: "discovery", source: "traffic" }, fact);
          for (const t of fact.targets) this.#rememberUrl(t.url, domain);
        }
        return r;
      },
      invalidate: (domain) => d.invalidate(domain),
    };
  }

  /** The server's capabilities cache, recording each document for the peer its URL was found for. */
  watchCapabilities(c: CapabilitiesCache): CapabilitiesCache {
    return {
      // Every argument passes through as given (a peer's scheme decides whether plain HTTP is allowed).
      get: async (url, scheme) => {
        const r = await c.get(url, scheme);
        const domain = scheme?.peer ?? this.#domainOfUrl.get(url);
        const fact = capabilitiesFact(r);
        if (domain && fact) void this.record({ domain, kind: "capabilities", source: "traffic" }, fact);
        return r;
      },
      noteSerial: (url, serial) => c.noteSerial(url, serial),
    };
  }

  /** The inbound key resolver, recording each selector's key as it was found. */
  watchKeys(k: KeyResolver): KeyResolver {
    const noted = (q: { domain: string; selector: string }, r: KeyLookup): KeyLookup => {
      const fact = r.ok ? keyFact(r.candidates) : undefined;
      if (fact)
        void this.record({ domain: q.domain, kind: "key", name: q.selector, source: "traffic" }, fact);
      return r;
    };
    const cached = k.cached?.bind(k);
    return {
      lookup: async (q) => noted(q, await k.lookup(q)),
      // A key from the warm cache is recorded like one looked up (the verification then needs no await).
      cached:
        cached &&
        ((q) => {
          const r = cached(q);
          return r === undefined ? undefined : noted(q, r);
        }),
      // The place a request reserves comes with its own resolver, which the intake then uses.
      reserve: (q) => {
        const r = k.reserve(q);
        return r.ok ? { ok: true, keys: this.watchKeys(r.keys), release: () => r.release() } : r;
      },
    };
  }

  #rememberUrl(url: string, domain: string): void {
    this.#domainOfUrl.delete(url);
    if (this.#domainOfUrl.size >= MAX_REMEMBERED)
      this.#domainOfUrl.delete(this.#domainOfUrl.keys().next().value!);
    this.#domainOfUrl.set(url, domain);
  }
}

function parseRow(r: PeerFactRow): PeerFact {
  return {
    kind: r.kind,
    name: r.name,
    source: r.source,
    learnedAt: r.learnedAt,
    confirmedAt: r.confirmedAt,
    value: JSON.parse(r.value),
  } as PeerFact;
}
