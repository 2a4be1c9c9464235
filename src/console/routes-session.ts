/**
 * Signing in and out, the first password (with the setup token), and changing the password. Every
 * guess at a password or setup token is checked only under a reservation of the client's address
 * (src/net/attempt-throttle.ts), so guesses sent in parallel wait their turn.
 */
import { t } from "elysia";
import type { AttemptThrottle } from "../net/attempt-throttle.ts";
import type { Store } from "../store/store.ts";
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
import { guess } from "./guesses.ts";
import { apiError, json, MAX_PUBLIC_JSON_BYTES, RequestError, type Route, route } from "./http.ts";

export interface SessionRouteOptions {
  store: Store;
  sessions: SessionStore;
  throttle: AttemptThrottle;
  cookie: CookieOptions;
  log: { log(level: "info" | "warn", message: string, fields?: Record<string, string>): void };
}

/**
 * A guess's fields: anything that is not the right string is a wrong guess, answered and counted
 * as one (401), so the schema refuses nothing here.
 */
const guessField = t.Optional(t.Unknown());
const asText = (v: unknown): string => (typeof v === "string" ? v : "");

async function signedIn(o: SessionRouteOptions, status = 200): Promise<Response> {
  const { cookieValue, session } = await o.sessions.create();
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
    route({
      method: "GET",
      path: "/session",
      access: "public",
      summary: "who is signed in: {signedIn, via, csrfToken} or {signedIn: false, setupNeeded}",
      // Not being signed in is an answer here, not an error: the page asks this first on every load,
      // and a 401 would show up as a failed request in the browser's console each time.
      handle: async ({ caller }) => {
        if (caller?.via === "token") return json(200, { signedIn: true, via: "token" });
        if (caller?.session)
          return json(200, { signedIn: true, via: "session", csrfToken: caller.session.csrfToken });
        return json(200, { signedIn: false, setupNeeded: !(await hasAdminPassword(o.store)) });
      },
    }),
    route({
      method: "POST",
      path: "/session",
      access: "public",
      guesses: true,
      summary: "sign in: {password}; sets the session cookie and returns the CSRF token",
      body: { schema: t.Object({ password: guessField }), maxBytes: MAX_PUBLIC_JSON_BYTES },
      async handle({ body, address, guess }) {
        // A missing password is a wrong one: 401, counted like any other guess.
        const password = asText(body.password);
        if (!(await hasAdminPassword(o.store)))
          return apiError(409, "no password is set yet: use the setup token isched printed when it started");
        if (!(await adminPasswordMatches(o.store, password))) {
          o.log.log("warn", "console sign-in failed", { address });
          return apiError(401, "the password is wrong");
        }
        o.log.log("info", "console sign-in", { address });
        guess.succeeded();
        return signedIn(o);
      },
    }),
    route({
      method: "DELETE",
      path: "/session",
      access: "change",
      summary: "sign out: ends this session",
      async handle({ caller }) {
        if (caller?.cookieValue) await o.sessions.delete(caller.cookieValue);
        return json(200, { signedIn: false }, { "Set-Cookie": clearedSessionCookie(o.cookie) });
      },
    }),
    route({
      method: "POST",
      path: "/setup",
      access: "public",
      guesses: true,
      summary: "set the first password with the one-time setup token: {token, password}",
      body: {
        schema: t.Object({ token: guessField, password: guessField }),
        maxBytes: MAX_PUBLIC_JSON_BYTES,
      },
      async handle({ body, address, guess }) {
        const password = asText(body.password);
        if (await hasAdminPassword(o.store))
          return apiError(401, "a password is already set, so the setup token is void: sign in instead");
        if (!(await setupTokenMatches(o.store, asText(body.token)))) {
          o.log.log("warn", "console setup token refused", { address });
          return apiError(
            401,
            "the setup token is wrong (it changes every time isched starts without a password)",
          );
        }
        // The token was right: not a failed guess, even if the password is refused.
        guess.succeeded();
        const problem = passwordProblem(password);
        if (problem) return apiError(400, problem);
        await setAdminPassword(o.store, password);
        await o.sessions.clear();
        o.log.log("info", "console password set with the setup token", { address });
        return signedIn(o, 201);
      },
    }),
    route({
      method: "PUT",
      path: "/admin/password",
      access: "change",
      summary: "change the password: {current, password} (current not needed with the API token)",
      body: { schema: t.Object({ password: t.String(), current: t.Optional(t.String()) }) },
      async handle({ body, caller, address }) {
        const { password, current } = body;
        if (caller?.via === "session") {
          if (current === undefined) throw new RequestError(400, "current is required");
          const refused = await guess(o.throttle, address, async () =>
            (await adminPasswordMatches(o.store, current))
              ? [undefined, "success"]
              : [apiError(403, "the current password is wrong"), "failure"],
          );
          if (refused) return refused;
        }
        const problem = passwordProblem(password);
        if (problem) return apiError(400, problem);
        await setAdminPassword(o.store, password);
        await o.sessions.clear();
        o.log.log("info", "console password changed", { address, via: caller?.via ?? "" });
        return caller?.via === "session" ? signedIn(o) : json(200, { changed: true });
      },
    }),
  ];
}
