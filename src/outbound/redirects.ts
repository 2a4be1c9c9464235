/**
 * Following redirects of requests to iSchedule peers, shared by the capabilities GET and the
 * scheduling POST. peerFetch never follows a redirect; its callers use these pure functions and then
 * fetch the next hop through peerFetch again, so every hop gets the same address and TLS checks.
 * Which statuses are redirects, and which are permanent, is the delivery policy's
 * (src/delivery/policy.ts redirectKind).
 *
 * The draft only says "iSchedule Senders MUST handle HTTP redirects" on the well-known URI (draft
 * §4.4) and nothing about methods, hop limits or schemes. What is decided here follows CalendarServer
 * and Cyrus (docs/interop.md): follow 301, 302, 307 and 308, keep the method and body, at most a few hops,
 * remember 301 and 308 (permanent), and never leave https for http, except for a peer the operator
 * named with `--peer D=legacy-http` (static-routes.ts).
 */
import { type RedirectKind, redirectKind } from "../delivery/policy.ts";

/** The peer a request goes to, and whether the operator allowed it plain HTTP (`legacy-http`). */
export interface PeerScheme {
  /** The recipient domain, named in refusals so the operator sees which flag would allow it. */
  readonly peer: string;
  readonly legacyHttp: boolean;
}

export type RedirectDecision =
  | { readonly ok: true; readonly url: string; readonly kind: RedirectKind }
  | { readonly ok: false; readonly reason: string };

export interface RedirectInput {
  /** The URL that answered with the redirect. */
  readonly from: string;
  readonly status: number;
  /** The Location header; null when absent. */
  readonly location: string | null;
  readonly method: "GET" | "POST";
  /** Every URL requested in this chain so far, the first one included. */
  readonly visited: readonly string[];
  /** Redirects to follow at most; the one after that is refused. */
  readonly maxRedirects: number;
  /** Whose endpoint this is; a redirect to http:// is followed only for a legacy-http peer. */
  readonly scheme?: PeerScheme;
}

/** Where a redirect leads, or why it is not followed. `status` must be a redirect (redirectKind). */
export function followRedirect(i: RedirectInput): RedirectDecision {
  const kind = redirectKind(i.status, i.method);
  if (kind === undefined)
    return { ok: false, reason: `${i.from} answered ${i.status}, not a redirect to follow` };
  if (i.location === null || i.location.trim() === "") {
    return { ok: false, reason: `${i.from} answered ${i.status} without a Location header` };
  }
  const to = resolveLocation(i.from, i.location);
  if (to === undefined) {
    return { ok: false, reason: `${i.from} redirected to "${clip(i.location)}", which is not a URL` };
  }
  const target = new URL(to);
  if (target.protocol !== "https:" && target.protocol !== "http:") {
    return { ok: false, reason: `refusing the redirect from ${i.from} to ${clip(to)}: not an https URL` };
  }
  if (isDowngrade(i.from, to) && i.scheme?.legacyHttp !== true) {
    // draft §10: iSchedule runs over TLS; a redirect must not strip it.
    const hint = i.scheme ? ` (allowed only for a peer named with --peer ${i.scheme.peer}=legacy-http)` : "";
    return {
      ok: false,
      reason: `refusing the redirect from ${i.from} to ${to}: it leaves https for plain http${hint}`,
    };
  }
  if (target.username !== "" || target.password !== "") {
    return { ok: false, reason: `refusing the redirect from ${i.from} to a URL with credentials` };
  }
  if (i.visited.includes(to)) {
    return { ok: false, reason: `redirect loop: ${i.from} redirected back to ${to}` };
  }
  if (i.visited.length > i.maxRedirects) {
    return {
      ok: false,
      reason: `more than ${i.maxRedirects} redirects (${[...i.visited, to].join(" -> ")})`,
    };
  }
  return { ok: true, url: to, kind };
}

/**
 * A Location value resolved against the URL that sent it (RFC 9110 §10.2.2: it may be relative),
 * without a fragment (never sent); undefined when it is not a URL.
 */
export function resolveLocation(from: string, location: string): string | undefined {
  try {
    const url = new URL(location.trim(), from);
    url.hash = "";
    return url.href;
  } catch {
    return undefined;
  }
}

/** True when going from `from` to `to` would leave TLS. */
export function isDowngrade(from: string, to: string): boolean {
  return new URL(from).protocol === "https:" && new URL(to).protocol !== "https:";
}

/**
 * True when both URLs name the same scheme, host and port: a sender re-fetches capabilities when a
 * redirect changes the authority (draft §5), since another server may advertise other limits.
 */
export function isSameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
