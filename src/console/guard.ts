/**
 * The checks every API request passes before its route runs, in this order:
 *
 * 1. Host: a console bound to loopback answers only to loopback names (localhost, 127.0.0.1, ::1),
 *    so a web page whose name an attacker points at 127.0.0.1 (DNS rebinding) is refused.
 * 2. Same origin: a request a browser marks as coming from another site or origin (Sec-Fetch-Site,
 *    Origin) is refused, whatever it carries. Another port of localhost is another origin, though
 *    the same site, and SameSite cookies alone would not stop it.
 * 3. Who: `Authorization: Bearer API-TOKEN` (programs: `isched send`, `isched queue`), or the session
 *    cookie. Neither: 401. A wrong token is 401 too, without falling back to the cookie.
 * 4. Changes made with a session need the session's CSRF token in `X-CSRF-Token`; a form cannot
 *    set that header, and the token is only given to same-origin scripts.
 */
import { type CookieOptions, readSessionCookie, type SessionStore, sameSecret } from "./auth.ts";
import { type Access, apiError, type Caller } from "./http.ts";

export interface GuardOptions {
  token: string;
  sessions: SessionStore;
  cookie: CookieOptions;
  /** Bound to a loopback address: only loopback Host names are served. */
  loopbackOnly: boolean;
}

/** A console bound here is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

function bearer(header: string | null): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
}

/** The origin the page was loaded from, as the browser would write it in Origin. */
export function ownOrigin(request: Request, secure: boolean): string {
  return `${secure ? "https" : "http"}://${request.headers.get("host") ?? ""}`;
}

export function crossSiteRefusal(request: Request, o: GuardOptions): Response | undefined {
  const host = request.headers.get("host") ?? "";
  if (o.loopbackOnly && !LOOPBACK_HOST.test(host)) {
    return apiError(403, `this console answers to localhost, 127.0.0.1 or [::1], not "${host}"`);
  }
  const site = request.headers.get("sec-fetch-site");
  if (site !== null && site !== "same-origin" && site !== "none") {
    return apiError(403, "cross-site requests are refused");
  }
  const origin = request.headers.get("origin");
  if (origin !== null && origin !== ownOrigin(request, o.cookie.secure)) {
    return apiError(403, `requests from ${origin} are refused: use the console's own page`);
  }
  return undefined;
}

export type GuardResult = { ok: true; caller: Caller | undefined } | { ok: false; response: Response };

export async function guard(request: Request, access: Access, o: GuardOptions): Promise<GuardResult> {
  const refused = crossSiteRefusal(request, o);
  if (refused) return { ok: false, response: refused };
  if (access === "public") return { ok: true, caller: undefined };

  const presented = bearer(request.headers.get("authorization"));
  if (presented !== undefined) {
    if (sameSecret(presented, o.token)) return { ok: true, caller: { via: "token" } };
    return { ok: false, response: apiError(401, "the API token is wrong") };
  }
  const cookieValue = readSessionCookie(request.headers.get("cookie"), o.cookie);
  const session = cookieValue ? await o.sessions.get(cookieValue) : undefined;
  if (!session || !cookieValue) {
    return {
      ok: false,
      response: apiError(401, "sign in, or send the API token as 'Authorization: Bearer TOKEN'"),
    };
  }
  if (access === "change" || !["GET", "HEAD"].includes(request.method)) {
    const csrf = request.headers.get("x-csrf-token");
    if (!csrf || !sameSecret(csrf, session.csrfToken)) {
      return { ok: false, response: apiError(403, "the X-CSRF-Token header is missing or wrong") };
    }
  }
  return { ok: true, caller: { via: "session", session, cookieValue } };
}
