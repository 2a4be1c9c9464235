/**
 * Console/API cases about what the URL carries: path parameters (message ids, peer domains, key ids)
 * that do not exist or are not well-formed, filters (?q=) that are not filters (each refusal names
 * the position of the offending term), limits and paging ids out of range.
 */
import { type ApiExpected, type ApiRequest, type ApiTarget, apiCase, E } from "./_api-request.ts";
import type { Case } from "./_cases.ts";

/** Filters (?q= of /messages and /events) that are not filters. */
const BAD_FILTERS: [string, RegExp][] = [
  ["peer:", /needs a value/],
  ["bogus:1", /unknown key "bogus:"/],
  ["status:happy", /status/],
  ["dkim:maybe", /dkim/],
  ["direction:sideways", /direction/],
  ["after:yesterday-ish", /after/],
  ["before:2026-13-45", /before/],
  ["after:2026-02-30", /after/],
  ['uid:"unterminated', /./],
  ["peer:a..b", /peer/],
  ["status:queued-status:failed", /./],
  ["-", /./],
  [":", /./],
  ["peer:example.org,", /./],
  [`peer:${"a".repeat(5000)}`, /peer/],
  ["\u0000", /./],
];

const hasPosition = (body: Record<string, unknown>): string[] =>
  typeof body.position === "number" ? [] : [`no position in ${JSON.stringify(body).slice(0, 200)}`];

/** Path parameters and queries: bad ids, domains, filters, limits. */
export function apiParamCases(target: () => ApiTarget): Case[] {
  const cases: Case[] = [];
  const add = (name: string, expected: ApiExpected, request: ApiRequest) =>
    cases.push(apiCase(target, name, expected, request));
  // Path parameters.
  const params: [string, string, ApiExpected][] = [
    ["GET", "/messages/abc", E(404, /no message abc/)],
    ["GET", "/messages/0", E(404, /no message 0/)],
    ["GET", "/messages/-1", E(404, /no message -1/)],
    ["GET", `/messages/${"9".repeat(30)}`, E(404, /no message/)],
    ["GET", "/messages/%ff", E(404, /no message/)],
    ["GET", `/messages/${"u".repeat(5000)}`, E(404, /no message/)],
    ["GET", "/peers/peer..test", E(400, /is not a domain name/)],
    ["GET", "/peers/org.test", E(400, /one of our own domains/)],
    ["GET", `/peers/${"a".repeat(64)}.test`, E(400, /is not a domain name/)],
    ["GET", "/peers/%ff", E(400, /is not a domain name/)],
    // "/peers/.." is "/" after URL normalization (RFC 3986 §5.2.4).
    ["GET", "/peers/%2e%2e", E(404, /no such API route/)],
    ["PUT", "/peers/org.test/policy", E(400, /one of our own domains/)],
    ["PUT", "/peers/-bad-.test/policy", E(400, /is not a domain name/)],
    ["DELETE", "/peers/nobody.test/policy", E(404, /no console policy for nobody\.test/)],
    ["DELETE", "/peers/bad%20domain/policy", E(400, /is not a domain name/)],
    ["POST", "/peers/*/test", E(400, /test a domain, not \*/)],
    ["POST", "/peers/org.test/test", E(400, /one of our own domains/)],
    ["POST", "/keys/abc/activate", E(400, /"abc" is not a key id/)],
    ["POST", "/keys/999999/activate", E(404, /no key 999999/)],
    ["POST", "/keys/1.5/activate", E(400, /is not a key id/)],
    ["POST", "/keys/abc/retire", E(400, /"abc" is not a key id/)],
    ["POST", "/keys/999999/retire", E(404, /no key 999999/)],
    ["POST", "/keys/1/retire", E(409, /the active key signs/)],
  ];
  for (const [method, path, expected] of params) {
    const body =
      method === "GET" || method === "DELETE" ? {} : { json: method === "PUT" ? { trust: "deny" } : {} };
    add(`${method} /api/v1${path.length > 60 ? `${path.slice(0, 60)}...` : path}`, expected, {
      method,
      path,
      ...body,
    });
  }

  // Queries.
  for (const [q, error] of BAD_FILTERS) {
    for (const route of ["/messages", "/events"]) {
      add(
        `GET /api/v1${route}?q=${q.length > 40 ? `${q.slice(0, 40)}...` : JSON.stringify(q)}`,
        E(400, error, { body: hasPosition }),
        {
          method: "GET",
          path: `${route}?q=${encodeURIComponent(q)}`,
        },
      );
    }
  }
  const limits: [string, RegExp][] = [
    ["limit=0", /limit must be a whole number from 1 to 500/],
    ["limit=501", /limit must be a whole number from 1 to 500/],
    ["limit=-5", /limit must be a whole number/],
    ["limit=1.5", /limit must be a whole number/],
    ["limit=abc", /limit must be a whole number/],
    ["limit=", /limit must be a whole number/],
    [`limit=${"9".repeat(30)}`, /limit must be a whole number/],
    ["before=abc", /before must be a message id/],
    ["before=-1", /before must be a message id/],
  ];
  for (const [query, error] of limits) {
    add(`GET /api/v1/messages?${query.slice(0, 40)}`, E(400, error), {
      method: "GET",
      path: `/messages?${query}`,
    });
    add(`GET /api/v1/inbox?recipient=mailto:ann@org.test&${query.slice(0, 40)}`, E(400, error), {
      method: "GET",
      path: `/inbox?recipient=mailto:ann@org.test&${query}`,
    });
  }
  add("GET /api/v1/inbox without recipient", E(400, /recipient is required/), {
    method: "GET",
    path: "/inbox",
  });
  add("GET /api/v1/inbox?recipient= empty", E(400, /recipient is required/), {
    method: "GET",
    path: "/inbox?recipient=",
  });
  for (const [what, query, expected] of [
    ["no domain", "", E(400, /domain must be one of the hosted domains/)],
    [
      "a domain that is not a domain name",
      "?domain=a..b",
      E(400, /domain must be one of the hosted domains/),
    ],
    ["a domain that is not hosted", "?domain=other.test", E(404, /not a hosted domain/)],
  ] as const) {
    add(`GET /api/v1/keys/zone with ${what}`, expected, { method: "GET", path: `/keys/zone${query}` });
  }

  return cases;
}
