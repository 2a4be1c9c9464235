/**
 * Console/API cases for every route GET /api/v1/routes lists, from src/console/guard.ts and the
 * router: a cross-site Origin or Sec-Fetch-Site, a Host that is not loopback (DNS rebinding) or is
 * empty, no credentials, a wrong or malformed token, a session cookie that does not exist, a change
 * without its CSRF token or with a wrong one, and every method the path does not take (405 with
 * Allow). Each answer a precise 4xx JSON error.
 */
import {
  type ApiExpected,
  type ApiRequest,
  type ApiTarget,
  apiCase,
  E,
  NO_CREDENTIALS,
} from "./_api-request.ts";
import type { Case } from "./_cases.ts";

export interface RouteInfo {
  method: string;
  /** With the /api/v1 prefix, as /routes lists it. */
  path: string;
  access: "public" | "read" | "change";
}

/** A path with its parameters filled in with values that exist or are well-formed. */
export function concretePath(path: string): string {
  return path
    .replace(/^\/api\/v1/, "")
    .replace(":id", "1")
    .replace(":domain", "peer.test");
}

/** GET /api/v1/health with the token: 200, the console still answers. */
export function apiControl(target: () => ApiTarget): Case {
  return apiCase(
    target,
    "control: GET /api/v1/health with the token",
    E(200, undefined, {
      body: (b) => (b.ok === true ? [] : [`not ok: ${JSON.stringify(b).slice(0, 200)}`]),
    }),
    { method: "GET", path: "/health" },
  );
}

/** The guard's and the router's cases for every route GET /api/v1/routes lists. */
export function apiRouteCases(target: () => ApiTarget, routes: readonly RouteInfo[]): Case[] {
  const cases: Case[] = [];
  const add = (name: string, expected: ApiExpected, request: ApiRequest | ((t: ApiTarget) => ApiRequest)) =>
    cases.push(apiCase(target, name, expected, request));

  const methodsOf = new Map<string, string[]>();
  for (const r of routes) methodsOf.set(r.path, [...(methodsOf.get(r.path) ?? []), r.method]);

  for (const r of routes) {
    const path = concretePath(r.path);
    const label = `${r.method} ${r.path}`;
    const req = (more: Partial<ApiRequest>): ApiRequest => ({ method: r.method, path, ...more });
    // Cross-site and rebinding refusals come first, for every route (src/console/guard.ts).
    add(
      `${label} with a cross-site Origin`,
      E(403, /requests from https:\/\/evil\.test are refused/),
      req({ fields: [["Origin", "https://evil.test"]] }),
    );
    add(
      `${label} with Origin: null`,
      E(403, /requests from null are refused/),
      req({ fields: [["Origin", "null"]] }),
    );
    add(
      `${label} with Sec-Fetch-Site: cross-site`,
      E(403, /cross-site requests are refused/),
      req({ fields: [["Sec-Fetch-Site", "cross-site"]] }),
    );
    add(
      `${label} with Host: console.evil.test (DNS rebinding)`,
      E(403, /answers to localhost/),
      req({ host: "console.evil.test" }),
    );
    add(`${label} with an empty Host`, E(403, /answers to localhost/), req({ host: "" }));
    if (r.access === "public") continue;
    add(`${label} without credentials`, NO_CREDENTIALS, req({ auth: { kind: "none" } }));
    add(
      `${label} with a wrong API token`,
      E(401, /the API token is wrong/),
      req({ auth: { kind: "fields", fields: [["Authorization", "Bearer not-the-token"]] } }),
    );
    add(
      `${label} with "Bearer" and no token`,
      NO_CREDENTIALS,
      req({ auth: { kind: "fields", fields: [["Authorization", "Bearer "]] } }),
    );
    add(
      `${label} with Basic credentials`,
      NO_CREDENTIALS,
      req({ auth: { kind: "fields", fields: [["Authorization", "Basic YWRtaW46YWRtaW4="]] } }),
    );
    add(
      `${label} with a 10 KB token`,
      E(401, /the API token is wrong/),
      req({ auth: { kind: "fields", fields: [["Authorization", `Bearer ${"t".repeat(10_240)}`]] } }),
    );
    add(
      `${label} with a session cookie that does not exist`,
      NO_CREDENTIALS,
      req({ auth: { kind: "fields", fields: [["Cookie", `isched_session=${"A".repeat(43)}`]] } }),
    );
    add(
      `${label} with an empty session cookie`,
      NO_CREDENTIALS,
      req({ auth: { kind: "fields", fields: [["Cookie", "isched_session="]] } }),
    );
    if (r.access === "change") {
      add(
        `${label} with the session and no X-CSRF-Token`,
        E(403, /X-CSRF-Token header is missing or wrong/),
        req({ auth: { kind: "session", csrf: "none" } }),
      );
      add(
        `${label} with the session and a wrong X-CSRF-Token`,
        E(403, /X-CSRF-Token header is missing or wrong/),
        req({ auth: { kind: "session", csrf: "wrong" } }),
      );
    }
  }

  // Methods a path does not take: 405 with Allow, once the caller is known.
  for (const [path, methods] of methodsOf) {
    for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH"]) {
      if (methods.includes(method) || (method === "HEAD" && methods.includes("GET"))) continue;
      const allow = methods.join(", ");
      add(
        `${method} ${path} (not a method of the path)`,
        E(405, new RegExp(`use ${methods.join(" or ")}`), { allow }),
        {
          method,
          path: concretePath(path),
        },
      );
    }
  }
  add("GET /api/v1/no-such-route", E(404, /no such API route/), { method: "GET", path: "/no-such-route" });
  add("GET /api/v1/no-such-route without credentials", NO_CREDENTIALS, {
    method: "GET",
    path: "/no-such-route",
    auth: { kind: "none" },
  });

  return cases;
}
