/**
 * What a receiver can take: its capabilities document (draft §5, §9.2), fetched with
 * `GET {endpoint}?action=capabilities` and cached per endpoint, so a sender can check a message
 * before sending it (draft §5).
 *
 * Caching follows the draft's advice (draft §5, §8.3, §9.2.1.1): normal HTTP expiry
 * (Cache-Control max-age, clamped), conditional GET with ETag / Last-Modified when re-checking, and a
 * refetch as soon as any response shows an `iSchedule-Capabilities` serial other than the one the
 * cached document came with (`noteSerial`), which makes polling unnecessary.
 *
 * Redirects are followed here (draft §4.4: Senders MUST handle them), at most `maxRedirects` hops,
 * with the rules of redirects.ts; 301 and 308 are remembered, so `url` in a result is the endpoint to
 * POST to. A receiver that answers 400 or 404 to `action=` is asked once more with the -00/-01
 * `query=capabilities`, which DAViCal and EGroupware still require (docs/interop.md).
 * Failures are not cached: the caller's retry schedule decides when to ask again.
 */

import { classifyPeerStatus, fetchFailure } from "../delivery/policy.ts";
import type { Capabilities } from "../ischedule/capabilities.ts";
import { parseCapabilities } from "../ischedule/capabilities-reader.ts";
import type { PeerRequest, PeerResponse } from "../net/peer-fetch.ts";
import { followRedirect, type PeerScheme } from "./redirects.ts";

export type CapabilitiesResult =
  | {
      readonly ok: true;
      readonly capabilities: Capabilities;
      /** The endpoint to POST to: the target after the permanent (301, 308) redirects. */
      readonly url: string;
      /** When the peer last confirmed the document (a 200, or a 304 to a conditional GET). */
      readonly fetchedAtMs: number;
      /** True when no document was downloaded: a fresh cached copy, or one confirmed by a 304. */
      readonly fromCache: boolean;
      /** What the lenient reader assumed (parseCapabilities), and any fallback taken. */
      readonly warnings: readonly string[];
    }
  | {
      readonly ok: false;
      readonly temporary: boolean;
      readonly reason: string;
      readonly httpStatus?: number;
    };

export interface CapabilitiesCacheOptions {
  /** peerFetch bound to its options: every hop gets its address and TLS checks. */
  fetch: (req: PeerRequest) => Promise<PeerResponse>;
  nowMs?: () => number;
  /** Without a Cache-Control max-age; default 3600. */
  defaultMaxAgeSeconds?: number;
  /** max-age (also no-cache, max-age=0) is raised to this; default 60: the serial header covers changes. */
  minMaxAgeSeconds?: number;
  /** ...and lowered to this; default 86400 (Cyrus's own max-age). */
  maxMaxAgeSeconds?: number;
  /** Default 3, as CalendarServer (docs/interop.md). */
  maxRedirects?: number;
  /** Cached endpoints at most; default 10000. */
  maxEntries?: number;
}

export interface CapabilitiesCache {
  /** `scheme`: whose endpoint it is, and whether plain HTTP is allowed for it (redirects.ts). */
  get(targetUrl: string, scheme?: PeerScheme): Promise<CapabilitiesResult>;
  /**
   * Records the `iSchedule-Capabilities` header of any response from `targetUrl` (the target or the
   * final endpoint); a serial the cached document was not seen with makes the next `get` refetch.
   */
  noteSerial(targetUrl: string, serial: string | null): void;
}

/** `action=` since draft -02 (draft §5); `query=` in -00 and -01. */
export type CapabilitiesQueryParam = "action" | "query";
type QueryParam = CapabilitiesQueryParam;

interface Entry {
  endpoint: string;
  capabilities: Capabilities;
  warnings: readonly string[];
  fetchedAtMs: number;
  expiresAtMs: number;
  etag?: string;
  lastModified?: string;
  param: QueryParam;
  /** Serials this document is known to stand for; empty when the peer never sent one. */
  serials: Set<string>;
  /** A later response showed another serial (kept in `noted`): refetch unconditionally. */
  stale: boolean;
  noted: Set<string>;
}

type Failure = Extract<CapabilitiesResult, { ok: false }>;
type Chase = { response: PeerResponse; endpoint: string; requested: string } | Failure;

export function createCapabilitiesCache(o: CapabilitiesCacheOptions): CapabilitiesCache {
  const now = o.nowMs ?? Date.now;
  const minAge = o.minMaxAgeSeconds ?? 60;
  const maxAge = Math.max(minAge, o.maxMaxAgeSeconds ?? 86_400);
  const defaultAge = o.defaultMaxAgeSeconds ?? 3600;
  const maxRedirects = o.maxRedirects ?? 3;
  const maxEntries = o.maxEntries ?? 10_000;
  const entries = new Map<string, Entry>();
  /** Permanent redirects seen: endpoint -> endpoint. */
  const moved = new Map<string, string>();
  const inFlight = new Map<string, Promise<CapabilitiesResult>>();

  const bounded = <V>(map: Map<string, V>, key: string, value: V): void => {
    map.delete(key);
    if (map.size >= maxEntries) map.delete(map.keys().next().value as string);
    map.set(key, value);
  };

  /** The start endpoint after remembered permanent redirects (loop-safe). */
  function start(target: string): string {
    let url = target;
    const seen = new Set([url]);
    for (let next = moved.get(url); next !== undefined && !seen.has(next); next = moved.get(url)) {
      url = next;
      seen.add(url);
    }
    return url;
  }

  /** One GET, following redirects; `endpoint` is where the caller must POST after permanent ones. */
  async function chase(
    from: string,
    param: QueryParam,
    headers: Record<string, string>,
    scheme: PeerScheme | undefined,
  ): Promise<Chase> {
    let url = capabilitiesUrl(from, param);
    let endpoint = from;
    let onlyPermanent = true;
    const visited = [url];
    for (;;) {
      let response: PeerResponse;
      try {
        const plain = scheme?.legacyHttp === true ? { allowHttp: true } : {};
        response = await o.fetch({ method: "GET", url, headers, ...plain });
      } catch (err) {
        return { ok: false, ...fetchFailure(err, { stage: "capabilities", what: `GET ${url}` }) };
      }
      if (classifyPeerStatus(response.status, "GET") !== "redirect")
        return { response, endpoint, requested: url };
      const location = response.headers.get("location");
      const step = followRedirect({
        from: url,
        status: response.status,
        location,
        method: "GET",
        visited,
        maxRedirects,
        ...(scheme !== undefined && { scheme }),
      });
      if (!step.ok) return { ok: false, temporary: false, reason: step.reason, httpStatus: response.status };
      // A Location without our query parameter still names the endpoint; ask it the same question.
      const next = capabilitiesUrl(step.url, param);
      if (visited.includes(next)) {
        return { ok: false, temporary: false, reason: `redirect loop: ${url} redirected back to ${next}` };
      }
      if (step.kind === "permanent") bounded(moved, endpointOf(url), endpointOf(next));
      else onlyPermanent = false;
      if (onlyPermanent) endpoint = endpointOf(next);
      url = next;
      visited.push(url);
    }
  }

  async function refresh(
    key: string,
    entry: Entry | undefined,
    scheme: PeerScheme | undefined,
  ): Promise<CapabilitiesResult> {
    const from = start(key);
    // After a serial change the peer said the document changed: a 304 would be wrong, so ask plainly.
    const conditional = entry !== undefined && !entry.stale;
    const headers: Record<string, string> = { Accept: "application/xml, text/xml;q=0.9, */*;q=0.1" };
    if (conditional && entry.etag !== undefined) headers["If-None-Match"] = entry.etag;
    if (conditional && entry.lastModified !== undefined) headers["If-Modified-Since"] = entry.lastModified;
    const params: QueryParam[] = entry ? [entry.param] : ["action", "query"];
    let failure: Failure | undefined;
    for (const param of params) {
      const got = await chase(from, param, headers, scheme);
      if ("ok" in got) return got;
      const { response, endpoint, requested } = got;
      const status = response.status;
      if (status === 304 && entry !== undefined && conditional) {
        entry.endpoint = endpoint;
        entry.expiresAtMs = now() + freshness(response.headers) * 1000;
        entry.fetchedAtMs = now();
        entry.etag = response.headers.get("etag") ?? entry.etag;
        entry.lastModified = response.headers.get("last-modified") ?? entry.lastModified;
        const serial = serialOf(response.headers.get("ischedule-capabilities"));
        if (serial !== undefined) entry.serials.add(serial);
        return result(entry, true);
      }
      if (status === 200) return store(key, endpoint, param, response, entry);
      // The first failure is the one to report: the current draft's question.
      failure ??= statusFailure(status, requested);
      // draft -00/-01 receivers answer 404 (DAViCal) or 400 to a parameter they do not know.
      if (status !== 400 && status !== 404) break;
    }
    return failure ?? { ok: false, temporary: true, reason: `no answer from ${from}` };
  }

  function store(
    key: string,
    endpoint: string,
    param: QueryParam,
    response: PeerResponse,
    previous: Entry | undefined,
  ): CapabilitiesResult {
    let parsed: ReturnType<typeof parseCapabilities>;
    try {
      parsed = parseCapabilities(response.body);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return {
        ok: false,
        temporary: false,
        reason: `${endpoint} does not serve iSchedule capabilities: ${why}`,
      };
    }
    const warnings = [...parsed.warnings];
    if (param === "query") warnings.push(`${endpoint} answers only the draft -00/-01 ?query=capabilities`);
    const header = response.headers.get("ischedule-capabilities");
    const serial = serialOf(header);
    if (header !== null && serial === undefined)
      warnings.push(`iSchedule-Capabilities "${header}" is not a number`);
    const serials = new Set<string>();
    const documented =
      parsed.capabilities.serialNumber > 0 ? String(parsed.capabilities.serialNumber) : undefined;
    // The document also stands for the serials that made us refetch it, whatever its GET said.
    for (const s of [serial ?? documented, ...(previous?.noted ?? [])]) {
      if (s !== undefined) serials.add(s);
    }
    const entry: Entry = {
      endpoint,
      capabilities: parsed.capabilities,
      warnings,
      fetchedAtMs: now(),
      expiresAtMs: now() + freshness(response.headers) * 1000,
      param,
      serials,
      stale: false,
      noted: new Set(),
    };
    const etag = response.headers.get("etag");
    if (etag !== null) entry.etag = etag;
    const lastModified = response.headers.get("last-modified");
    if (lastModified !== null) entry.lastModified = lastModified;
    bounded(entries, key, entry);
    return result(entry, false);
  }

  /** Seconds the document stays fresh: Cache-Control max-age (RFC 9111 §5.2.2.1), clamped. */
  function freshness(headers: Headers): number {
    const age = maxAgeSeconds(headers.get("cache-control"));
    return Math.min(maxAge, Math.max(minAge, age ?? defaultAge));
  }

  return {
    async get(targetUrl, scheme) {
      const key = normalizeUrl(targetUrl);
      if (key === undefined) return { ok: false, temporary: false, reason: `"${targetUrl}" is not a URL` };
      const entry = entries.get(key);
      if (entry && !entry.stale && entry.expiresAtMs > now()) return result(entry, true);
      let pending = inFlight.get(key);
      if (!pending) {
        pending = refresh(key, entry, scheme).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },
    noteSerial(targetUrl, header) {
      const serial = serialOf(header);
      const key = normalizeUrl(targetUrl);
      if (serial === undefined || key === undefined) return;
      for (const [k, entry] of entries) {
        if (k !== key && entry.endpoint !== key) continue;
        // The first serial seen for a document that named none becomes its baseline.
        if (entry.serials.size === 0) entry.serials.add(serial);
        else if (!entry.serials.has(serial)) {
          entry.stale = true;
          entry.noted.add(serial);
        }
      }
    },
  };
}

function result(entry: Entry, fromCache: boolean): CapabilitiesResult {
  const { capabilities, endpoint: url, fetchedAtMs, warnings } = entry;
  return { ok: true, capabilities, url, fetchedAtMs, fromCache, warnings };
}

/** A status that is neither 200 nor a redirect; 400, 404 and the like will not change if asked again. */
function statusFailure(status: number, url: string): Failure {
  const temporary = classifyPeerStatus(status, "GET") === "temporary";
  const reason = temporary
    ? `${url} answered HTTP ${status}`
    : `${url} does not serve iSchedule capabilities (HTTP ${status})`;
  return { ok: false, temporary, reason, httpStatus: status };
}

/** The max-age of a Cache-Control value; 0 for no-cache and no-store; undefined when it says neither. */
export function maxAgeSeconds(cacheControl: string | null): number | undefined {
  if (cacheControl === null) return undefined;
  let age: number | undefined;
  for (const part of cacheControl.split(",")) {
    const [name = "", value = ""] = part.split("=").map((s) => s.trim().toLowerCase());
    if (name === "no-cache" || name === "no-store") return 0;
    if (name === "max-age" && /^"?\d+"?$/.test(value)) age = Number(value.replace(/"/g, ""));
  }
  return age;
}

/** draft §8.3: `iSchedule-Capabilities = 1*DIGIT`; compared as numbers ("007" is "7"). */
function serialOf(header: string | null): string | undefined {
  const t = header?.trim();
  if (t === undefined || !/^\d{1,30}$/.test(t)) return undefined;
  return BigInt(t).toString();
}

/** The endpoint with `{param}=capabilities` added to any query it already has. */
export function capabilitiesUrl(endpoint: string, param: CapabilitiesQueryParam): string {
  const url = new URL(endpointOf(endpoint));
  const items = url.search
    .slice(1)
    .split("&")
    .filter((s) => s !== "");
  url.search = `?${[...items, `${param}=capabilities`].join("&")}`;
  return url.href;
}

/** A capabilities URL without the query parameters this module adds: the endpoint to POST to. */
export function endpointOf(url: string): string {
  const u = new URL(url);
  const items = u.search
    .slice(1)
    .split("&")
    .filter((s) => s !== "" && s !== "action=capabilities" && s !== "query=capabilities");
  u.search = items.length > 0 ? `?${items.join("&")}` : "";
  return u.href;
}

function normalizeUrl(raw: string): string | undefined {
  try {
    const url = new URL(raw.trim());
    url.hash = "";
    return url.href;
  } catch {
    return undefined;
  }
}
