/**
 * Where to send iSchedule requests for a recipient domain (draft §4):
 * an operator's static route first, else the `_ischedules._tcp.<domain>` SRV record (draft §4.2) with
 * its RFC 2782 priorities and weights, the request path from the TXT record at the same name (draft
 * §4.3, RFC 6763 §6 key/value syntax) or else `/.well-known/ischedule` (draft §4.4). Optionally the
 * leftmost labels are stripped one by one when a name has no record (draft §4.1 "MAY").
 *
 * `_ischedule._tcp` (plain HTTP, removed in draft -05) is used only for a peer the operator named
 * with `--peer D=legacy-http` (static-routes.ts), when it has no `_ischedules._tcp` record; for any
 * other domain its presence only makes the "no iSchedule" reason name that opt-in.
 *
 * Answers are cached by their DNS TTL (clamped); DNS failures are not cached and never turn into "no
 * iSchedule here": that would send the message by email while the peer's DNS merely hiccupped.
 * The try order of SRV targets is drawn anew on every call, so a cached answer still spreads load by
 * weight (RFC 2782) instead of sending everything to the target that happened to win once.
 */
import type { DnsAnswer, DnsResolver, SrvRecord, TxtRecord } from "../dns/client.ts";
import { isDomainName, normalizeDomain } from "../dns/names.ts";
import { orderSrvTargets, srvSaysUnavailable } from "../dns/srv-order.ts";
import type { PeerRoute } from "./static-routes.ts";

export const SRV_SERVICE = "_ischedules._tcp";
/** Plain-HTTP iSchedule before draft -05 (CalendarServer still publishes it): legacy-http peers only. */
export const LEGACY_SRV_SERVICE = "_ischedule._tcp";
export const WELL_KNOWN_PATH = "/.well-known/ischedule";

export interface DiscoveryTarget {
  /** `https://{host}:{port}{path}`, without `:443` (`http://` from `_ischedule._tcp`, without `:80`). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

export type Discovery =
  | {
      readonly kind: "found";
      /** The domain the route or record was found at (a parent of the one asked, after a walk). */
      readonly domain: string;
      readonly how: "static" | "srv";
      /** In try order: lowest priority first, weighted random within a priority (RFC 2782). */
      readonly targets: readonly DiscoveryTarget[];
      readonly path: string;
      /** How much longer this answer holds. */
      readonly ttlSeconds: number;
      /** False for a static route with sign=no. */
      readonly sign: boolean;
      /** The operator allowed this peer plain HTTP (`--peer D=legacy-http`). */
      readonly legacyHttp: boolean;
      /** What was ignored on the way, e.g. a malformed TXT path, for the logs. */
      readonly warnings: readonly string[];
    }
  | { readonly kind: "none"; readonly reason: string; readonly ttlSeconds: number }
  | { readonly kind: "error"; readonly temporary: true; readonly reason: string };

export interface DiscoveryOptions {
  /** Only `srv()` and `txt()` are used. */
  resolver: Pick<DnsResolver, "srv" | "txt">;
  staticRoutes: readonly PeerRoute[];
  /** Strip leftmost labels when a name has no record (draft §4.1); default false. */
  walkParents?: boolean;
  nowMs?: () => number;
  /** Returns [0, 1); drives the RFC 2782 weighted order. */
  random?: () => number;
  /** Cached answers live at least this long; default 60. */
  minTtlSeconds?: number;
  /** ...and at most this long; default 3600. */
  maxTtlSeconds?: number;
  /** Cached domains at most; default 10000. */
  maxEntries?: number;
}

export interface DiscoveryService {
  discover(domain: string): Promise<Discovery>;
  /** Forgets what is cached for `domain` (asked as, or found at). */
  invalidate(domain: string): void;
}

/** A cacheable outcome: the records, not the drawn order, so each call draws its own. */
type Outcome =
  | { kind: "static"; route: PeerRoute & { url: string } }
  | {
      kind: "srv";
      domain: string;
      records: readonly SrvRecord[];
      path: string;
      warnings: string[];
      ttl: number;
      /** Found at `_ischedule._tcp`: plain HTTP. */
      plain: boolean;
      legacyHttp: boolean;
    }
  | { kind: "none"; reason: string; ttl: number }
  | { kind: "error"; reason: string };
type Cached = Extract<Outcome, { kind: "srv" | "none" }> & { expiresAtMs: number };
/** What a lookup leaves: a cache entry, or an outcome that is not cached (static, error). */
type Settled = Cached | Extract<Outcome, { kind: "static" | "error" }>;

export function createDiscovery(o: DiscoveryOptions): DiscoveryService {
  const now = o.nowMs ?? Date.now;
  const random = o.random ?? Math.random;
  const minTtl = o.minTtlSeconds ?? 60;
  const maxTtl = Math.max(minTtl, o.maxTtlSeconds ?? 3600);
  const maxEntries = o.maxEntries ?? 10_000;
  const routes = new Map<string, PeerRoute>();
  for (const r of o.staticRoutes) {
    const d = normalizeDomain(r.domain);
    if (routes.has(d)) throw new RangeError(`Two static routes for ${d}: one --peer per domain`);
    routes.set(d, r);
  }
  const cache = new Map<string, Cached>();
  const inFlight = new Map<string, Promise<Settled>>();

  async function lookup(domain: string): Promise<Outcome> {
    const negatives: string[] = [];
    let negativeTtl = Number.POSITIVE_INFINITY;
    const legacyHttp = routes.get(domain)?.legacyHttp === true;
    for (const candidate of discoveryCandidates(domain, o.walkParents === true)) {
      const route = routes.get(candidate);
      if (route?.url !== undefined) return { kind: "static", route: { ...route, url: route.url } };
      const legacy = legacyHttp || route?.legacyHttp === true;
      let owner = `${SRV_SERVICE}.${candidate}`;
      let srv = await ask(() => o.resolver.srv(owner));
      if (srv.status === "error")
        return { kind: "error", reason: `SRV lookup of ${owner} failed: ${srv.message}` };
      let plain = false;
      if (srv.status !== "ok" && legacy) {
        const legacyOwner = `${LEGACY_SRV_SERVICE}.${candidate}`;
        const old = await ask(() => o.resolver.srv(legacyOwner));
        if (old.status === "ok") {
          owner = legacyOwner;
          srv = old;
          plain = true;
        }
      }
      if (srv.status !== "ok") {
        negatives.push(candidate);
        negativeTtl = Math.min(negativeTtl, srv.ttl);
        continue;
      }
      // RFC 2782: a lone "." target means "decidedly not available"; a walk stops there.
      if (srvSaysUnavailable(srv.records) || srv.records.every((r) => r.target === "")) {
        return { kind: "none", reason: `SRV target '.' at ${owner} says no iSchedule service`, ttl: srv.ttl };
      }
      const warnings: string[] = [];
      const records = srv.records.filter((r) => {
        if (r.target === "") return false;
        if (r.port > 0 && isDomainName(r.target)) return true;
        warnings.push(`ignored SRV record ${owner} -> ${r.target}:${r.port} (not a host and port)`);
        return false;
      });
      if (records.length === 0)
        return { kind: "none", reason: `no usable SRV target at ${owner}`, ttl: srv.ttl };
      const txt = await ask(() => o.resolver.txt(owner));
      // draft §4.3: the path MUST be used when present, so an unknown path is a failure, not a default.
      if (txt.status === "error")
        return { kind: "error", reason: `TXT lookup of ${owner} failed: ${txt.message}` };
      const found = txt.status === "ok" ? txtPath(txt.records) : { warnings: [] };
      if (found.warnings.length > 0) warnings.push(...found.warnings.map((w) => `${owner}: ${w}`));
      const path = found.path ?? WELL_KNOWN_PATH;
      const ttl = Math.min(srv.ttl, txt.ttl);
      return { kind: "srv", domain: candidate, records, path, warnings, ttl, plain, legacyHttp: legacy };
    }
    const [first, ...parents] = negatives;
    const also = parents.length > 0 ? ` or its parents ${parents.join(", ")}` : "";
    // Say why a CalendarServer that publishes only the old service gets email (one query, cached).
    const old = legacyHttp ? undefined : await ask(() => o.resolver.srv(`${LEGACY_SRV_SERVICE}.${domain}`));
    const hint =
      old?.status === "ok" && !srvSaysUnavailable(old.records)
        ? ` (it publishes ${LEGACY_SRV_SERVICE}, plain HTTP, which isched uses only for a peer named with --peer ${domain}=legacy-http)`
        : "";
    return {
      kind: "none",
      reason: `no ${SRV_SERVICE} SRV record for ${first}${also}${hint}`,
      ttl: negativeTtl,
    };
  }

  function settle(domain: string, outcome: Outcome): Settled {
    if (outcome.kind !== "srv" && outcome.kind !== "none") return outcome;
    const ttl = Math.min(maxTtl, Math.max(minTtl, outcome.ttl));
    const entry: Cached = { ...outcome, expiresAtMs: now() + ttl * 1000 };
    cache.delete(domain);
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(domain, entry);
    return entry;
  }

  function present(outcome: Settled): Discovery {
    switch (outcome.kind) {
      case "static":
        return staticDiscovery(outcome.route, maxTtl);
      case "error":
        return { kind: "error", temporary: true, reason: outcome.reason };
      case "none":
        return { kind: "none", reason: outcome.reason, ttlSeconds: remaining(outcome) };
      case "srv": {
        const targets = orderSrvTargets(outcome.records, random).map((r) => ({
          url: endpointUrl(r.target, r.port, outcome.path, outcome.plain ? "http" : "https"),
          host: normalizeDomain(r.target),
          port: r.port,
          priority: r.priority,
          weight: r.weight,
        }));
        return {
          kind: "found",
          domain: outcome.domain,
          how: "srv",
          targets,
          path: outcome.path,
          ttlSeconds: remaining(outcome),
          sign: true,
          legacyHttp: outcome.legacyHttp,
          warnings: outcome.warnings,
        };
      }
    }
  }

  const remaining = (entry: Cached): number => Math.max(0, Math.ceil((entry.expiresAtMs - now()) / 1000));

  return {
    async discover(asked) {
      const domain = normalizeDomain(asked.trim());
      if (!isDomainName(domain))
        return { kind: "none", reason: `"${asked}" is not a domain name`, ttlSeconds: minTtl };
      const hit = cache.get(domain);
      if (hit && hit.expiresAtMs > now()) return present(hit);
      // Concurrent callers for one domain share one lookup, then each draws its own target order.
      let pending = inFlight.get(domain);
      if (!pending) {
        pending = lookup(domain)
          .then((outcome) => settle(domain, outcome))
          .finally(() => inFlight.delete(domain));
        inFlight.set(domain, pending);
      }
      return present(await pending);
    },
    invalidate(asked) {
      const domain = normalizeDomain(asked.trim());
      for (const [key, entry] of cache) {
        if (key === domain || (entry.kind === "srv" && entry.domain === domain)) cache.delete(key);
      }
    },
  };
}

/** A resolver that throws is treated like one that answered with an error. */
async function ask<T>(query: () => Promise<DnsAnswer<T>>): Promise<DnsAnswer<T>> {
  try {
    return await query();
  } catch (err) {
    return { status: "error", message: err instanceof Error ? err.message : String(err) };
  }
}

function staticDiscovery(route: PeerRoute & { url: string }, ttlSeconds: number): Discovery {
  const url = new URL(route.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return {
    kind: "found",
    domain: normalizeDomain(route.domain),
    how: "static",
    targets: [{ url: url.href, host, port, priority: 0, weight: 0 }],
    path: `${url.pathname}${url.search}`,
    ttlSeconds,
    sign: route.sign,
    legacyHttp: route.legacyHttp === true,
    warnings: [],
  };
}

/** draft §4.2, §4.4: `https://{srv-target}:{srv-port}{path}`; the default port is left out. */
export function endpointUrl(
  host: string,
  port: number,
  path: string,
  scheme: "https" | "http" = "https",
): string {
  const standard = scheme === "https" ? 443 : 80;
  return `${scheme}://${normalizeDomain(host)}${port === standard ? "" : `:${port}`}${path}`;
}

/**
 * Second-level names under which anyone can register (a small list, not the Public Suffix List): a
 * parent walk stops before them, so `a.example.co.uk` never asks about `co.uk` (draft §4.1 leaves where to stop to the Sender; DAViCal
 * keeps 3 labels for .uk and .nz).
 */
const PUBLIC_SECOND_LEVEL: ReadonlySet<string> = new Set(
  (
    "co.uk org.uk me.uk ltd.uk plc.uk net.uk ac.uk gov.uk sch.uk nhs.uk police.uk " +
    "co.nz org.nz net.nz ac.nz govt.nz school.nz geek.nz gen.nz kiwi.nz " +
    "com.au net.au org.au edu.au gov.au asn.au id.au co.jp ne.jp or.jp ac.jp go.jp " +
    "co.za org.za com.br net.br org.br com.cn net.cn org.cn com.mx co.in co.kr com.tw " +
    "com.hk com.sg co.il com.tr com.ar co.id com.my"
  ).split(" "),
);

/**
 * The names to try, most specific first (draft §4.1). Without a walk only `domain` itself; with one,
 * each parent down to two labels, stopping before a public second level such as co.uk.
 */
export function discoveryCandidates(domain: string, walkParents: boolean): string[] {
  const name = normalizeDomain(domain);
  const out = [name];
  if (!walkParents) return out;
  const labels = name.split(".");
  for (let i = 1; labels.length - i >= 2; i++) {
    const parent = labels.slice(i).join(".");
    if (PUBLIC_SECOND_LEVEL.has(parent)) break;
    out.push(parent);
  }
  return out;
}

/**
 * The `path` key of the TXT record(s) at the SRV owner name (draft §4.3), read as RFC 6763 §6: each
 * character-string is one `key=value` pair, keys are case-insensitive (§6.4), only the first
 * occurrence of a key in a record counts (§6.4), and a string starting with "=" is ignored (§6.4).
 * A path that is not an absolute path, or records that disagree, are ignored with a warning: then the
 * well-known URI, which every receiver MUST serve (draft §4.4), is the safe choice.
 */
export function txtPath(records: readonly TxtRecord[]): { path?: string; warnings: string[] } {
  const warnings: string[] = [];
  const paths = new Set<string>();
  for (const record of records) {
    const value = keyValue(record, "path");
    if (value === undefined) continue;
    if (value === null) {
      warnings.push(`TXT "path" has no value; using ${WELL_KNOWN_PATH}`);
      continue;
    }
    // An absolute path of printable ASCII: no spaces, no query or fragment (it is a path only).
    if (!/^\/[\x21-\x7e]*$/.test(value) || /[?#]/.test(value)) {
      warnings.push(`TXT path "${clip(value)}" is not an absolute URL path; using ${WELL_KNOWN_PATH}`);
      continue;
    }
    paths.add(value);
  }
  if (paths.size > 1) {
    warnings.push(`TXT records give different paths (${[...paths].join(", ")}); using ${WELL_KNOWN_PATH}`);
    return { warnings };
  }
  const [path] = paths;
  return path === undefined ? { warnings } : { path, warnings };
}

/** The value of `key` in one DNS-SD TXT record: undefined when absent, null for a key without "=". */
function keyValue(record: TxtRecord, key: string): string | null | undefined {
  for (const bytes of record.strings) {
    const text = Buffer.from(bytes).toString("latin1");
    if (text.startsWith("=")) continue;
    const eq = text.indexOf("=");
    const name = eq === -1 ? text : text.slice(0, eq);
    if (name.toLowerCase() !== key) continue;
    return eq === -1 ? null : text.slice(eq + 1);
  }
  return undefined;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
