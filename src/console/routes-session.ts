/**
 * Signing in and out, the first password (with the setup token), and changing the password. Every
 * guess at a password or setup token is checked only under a reservation of the client's address
 * (src/net/attempt-throttle.ts), so guesses sent in parallel wait their turn.
 */
import type { Database } from "bun:sqlite";
import type { AttemptThrottle, Refusal } from "../net/attempt-throttle.ts";
import {
  adminPasswordMatches,
  type CookieOptions,
  clearedSessionCookie,
  hasAdminPassword,
  passwordProblem,
  type SessionStore,
  sessionCookie,
  setAdminPassword,
  setupTokenMatches,
} from "./auth.ts";
import {
  apiError,
  json,
  MAX_PUBLIC_JSON_BYTES,
  type Route,
  type RouteRequest,
  readJson,
  stringField,
} from "./http.ts";

export interface SessionRouteOptions {
  db: Database;
  sessions: SessionStore;
  throttle: AttemptThrottle;
  cookie: CookieOptions;
  log: { log(level: "info" | "warn", message: string, fields?: Record<string, string>): void };
}

/** 429 with Retry-After: the client may try again after that many seconds. */
function throttled(r: Refusal): Response {
  const seconds = Math.ceil(r.waitMs / 1000);
  const who = r.scope === "address" ? "your address" : "all addresses together";
  return json(
    429,
    { error: `too many failed attempts from ${who}: wait ${seconds} s`, retryAfterSeconds: seconds },
    { "Retry-After": String(seconds) },
  );
}

type Outcome = "success" | "failure";

/**
 * Checks one guess under a reservation taken before anything is checked, so that guesses sent at
 * once wait their turn (src/net/attempt-throttle.ts); 429 when the address, or everyone, must wait.
 * Whatever `check` throws counts as a failure.
 */
async function guess<T extends Response | undefined>(
  o: SessionRouteOptions,
  address: string,
  check: () => Promise<[T, Outcome]>,
): Promise<T | Response> {
  const reservation = o.throttle.reserve(address);
  if (!reservation.ok) return throttled(reservation);
  let outcome: Outcome = "failure";
  try {
    const [response, result] = await check();
    outcome = result;
    return response;
  } finally {
    reservation.settle(outcome);
  }
}
function signedIn(o: SessionRouteOptions, status = 200): Response {
  const { cookieValue, session } = o.sessions.create();
  return json(
    status,
    { signedIn: true, via: "session", csrfToken: session.csrfToken },
    {
      "Set-Cookie": sessionCookie(cookieValue, o.cookie),
    },
  );
}

export function sessionRoutes(o: SessionRouteOptions): Route[] {
  return [
    {
      method: "GET",
      path: "/session",
      access: "public",
      summary: "who is signed in: {signedIn, via, csrfToken} or {signedIn: false, setupNeeded}",
      // Not being signed in is an answer here, not an error: the page asks this first on every load,
      // and a 401 would show up as a failed request in the browser's console each time.
      handle: ({ caller }: RouteRequest) => {
        if (caller?.via === "token") return json(200, { signedIn: true, via: "token" });
        if (caller?.session)
          return json(200, { signedIn: true, via: "session", csrfToken: caller.session.csrfToken });
        return json(200, { signedIn: false, setupNeeded: !hasAdminPassword(o.db) });
      },
    },
    {
      method: "POST",
      path: "/session",
      access: "public",
      summary: "sign in: {password}; sets the session cookie and returns the CSRF token",
      handle: ({ request, address }) =>
        guess(o, address, async () => {
          const body = await readJson(request, MAX_PUBLIC_JSON_BYTES);
          // A missing password is a wrong one: 401, counted like any other guess.
          const password = typeof body.password === "string" ? body.password : "";
          if (!hasAdminPassword(o.db))
            return [
              apiError(409, "no password is set yet: use the setup token isched printed when it started"),
              "failure",
            ];
          if (!(await adminPasswordMatches(o.db, password))) {
            o.log.log("warn", "console sign-in failed", { address });
            return [apiError(401, "the password is wrong"), "failure"];
          }
          o.log.log("info", "console sign-in", { address });
          return [signedIn(o), "success"];
        }),
    },
    {
      method: "DELETE",
      path: "/session",
      access: "change",
      summary: "sign out: ends this session",
      handle({ caller }) {
        if (caller?.cookieValue) o.sessions.delete(caller.cookieValue);
        return json(200, { signedIn: false }, { "Set-Cookie": clearedSessionCookie(o.cookie) });
      },
    },
    {
      method: "POST",
      path: "/setup",
      access: "public",
      summary: "set the first password with the one-time setup token: {token, password}",
      handle: ({ request, address }) =>
        guess(o, address, async () => {
          const body = await readJson(request, MAX_PUBLIC_JSON_BYTES);
          const token = typeof body.token === "string" ? body.token : "";
          const password = typeof body.password === "string" ? body.password : "";
          if (hasAdminPassword(o.db))
            return [
              apiError(401, "a password is already set, so the setup token is void: sign in instead"),
              "failure",
            ];
          if (!setupTokenMatches(o.db, token)) {
            o.log.log("warn", "console setup token refused", { address });
            return [
              apiError(
                401,
                "the setup token is wrong (it changes every time isched starts without a password)",
              ),
              "failure",
            ];
          }
          // The token was right: not a failed guess, even if the password is refused.
          const problem = passwordProblem(password);
          if (problem) return [apiError(400, problem), "success"];
          await setAdminPassword(o.db, password);
          o.sessions.clear();
          o.log.log("info", "console password set with the setup token", { address });
          return [signedIn(o, 201), "success"];
        }),
    },
    {
      method: "PUT",
      path: "/admin/password",
      access: "change",
      summary: "change the password: {current, password} (current not needed with the API token)",
      async handle({ request, caller, address }) {
        const body = await readJson(request);
        const password = stringField(body, "password");
        if (caller?.via === "session") {
          const current = stringField(body, "current");
          const refused = await guess(o, address, async () =>
            (await adminPasswordMatches(o.db, current))
              ? [undefined, "success"]
              : [apiError(403, "the current password is wrong"), "failure"],
          );
          if (refused) return refused;
        }
        const problem = passwordProblem(password);
        if (problem) return apiError(400, problem);
        await setAdminPassword(o.db, password);
        o.sessions.clear();
        o.log.log("info", "console password changed", { address, via: caller?.via ?? "" });
        return caller?.via === "session" ? signedIn(o) : json(200, { changed: true });
      },
    },
  ];
}
