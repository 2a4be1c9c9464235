/**
 * Console/API cases about request bodies. For every route that reads a JSON body: the wrong media
 * type, bodies that are not JSON or not an object, arrays nested 100,000 deep, 3 MB; then each field
 * of each route with the wrong type, a missing value, a huge value, and values of the right type that
 * are still wrong (bad ids, domains, CIDRs, filters, URLs). Bodies that stall get the 408 of the
 * 30 s body deadline. Each answer a precise 4xx JSON error.
 */
import {
  type ApiExpected,
  type ApiRequest,
  type ApiTarget,
  apiCase,
  E,
  GUESS,
  guessAddress,
} from "./_api-request.ts";
import { concretePath, type RouteInfo } from "./_api-routes.ts";
import type { Case } from "./_cases.ts";

/**
 * Routes whose body is read as JSON (the session routes read theirs inside a password guess), and
 * whether an empty object is a valid body for them (then a deeply nested object is one too).
 */
const JSON_ROUTES = new Map([
  ["PUT /admin/password", false],
  ["POST /deliveries/retry", false],
  ["POST /deliveries/cancel", false],
  ["POST /deliveries/imip", false],
  ["PUT /peers/:domain/policy", false],
  ["POST /peers/:domain/test", true],
  ["PUT /keys/endpoint", false],
  ["POST /keys/check", true],
  ["POST /keys", false],
  ["POST /keys/:id/activate", true],
  ["POST /tools/verify", false],
]);

/** Bodies no JSON route may take. */
const NOT_JSON: [string, Partial<ApiRequest>, ApiExpected][] = [
  ["no Content-Type", { body: "{}" }, E(415, /application\/json/)],
  ["Content-Type: text/plain", { body: "{}", contentType: "text/plain" }, E(415, /application\/json/)],
  [
    "Content-Type: application/x-www-form-urlencoded",
    { body: "a=1", contentType: "application/x-www-form-urlencoded" },
    E(415, /send the body as application\/json/),
  ],
  ["a body that is not JSON", { body: "{not json", contentType: "application/json" }, E(400, /not JSON/)],
  ["a JSON array", { body: "[1,2]", contentType: "application/json" }, E(400, /must be a JSON object/)],
  ["a JSON string", { body: '"text"', contentType: "application/json" }, E(400, /must be a JSON object/)],
  ["JSON null", { body: "null", contentType: "application/json" }, E(400, /must be a JSON object/)],
  [
    "arrays nested 100,000 deep",
    { body: `${"[".repeat(100_000)}${"]".repeat(100_000)}`, contentType: "application/json" },
    E(400, /must be a JSON object/),
  ],
  [
    "arrays opened 100,000 deep and never closed",
    { body: "[".repeat(100_000), contentType: "application/json" },
    E(400, /not JSON/),
  ],
  [
    "a 3 MB body (2 MB cap)",
    { body: `{"x":"${"a".repeat(3 * 1024 * 1024)}"}`, contentType: "application/json" },
    E(413, /larger than 2097152 bytes/),
  ],
  // Decoded with U+FFFD for the bad bytes, as WHATWG's decoder does; here before the object.
  [
    "bytes that are not UTF-8 before the object",
    { body: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), contentType: "application/json" },
    E(400, /not JSON/),
  ],
  ["a NUL byte before the object", { body: "\u0000{}", contentType: "application/json" }, E(400, /not JSON/)],
];

/** For routes that need a field: an object nested 100,000 deep holds none of them. */
const DEEP_OBJECT = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;

type FieldCase = [what: string, json: unknown, expected: ApiExpected];

const HUGE = "x".repeat(1024 * 1024);

/** Each JSON route's fields, wrong in every way that matters to it. */
const FIELD_CASES: Record<string, FieldCase[]> = {
  "PUT /admin/password": [
    ["no password", {}, E(400, /password is required/)],
    ["a password that is a number", { password: 12345678 }, E(400, /password must be a string/)],
    ["a password that is a list", { password: ["a"] }, E(400, /password must be a string/)],
    ["a password that is null", { password: null }, E(400, /password is required/)],
    ["an empty password", { password: "" }, E(400, /the password needs at least 10 characters/)],
    ["a 3-character password", { password: "abc" }, E(400, /the password needs at least 10 characters/)],
    ["a 1 MB password", { password: HUGE }, E(400, /the password is longer than 1024 characters/)],
  ],
  "POST /deliveries/retry": deliveryCases("retry"),
  "POST /deliveries/cancel": deliveryCases("cancel"),
  "POST /deliveries/imip": deliveryCases("imip"),
  "PUT /peers/:domain/policy": [
    ["no trust", {}, E(400, /trust is required/)],
    ["trust that is a number", { trust: 1 }, E(400, /trust must be a string/)],
    ["trust: maybe", { trust: "maybe" }, E(400, /trust must be dkim, unsigned or deny/)],
    ["trust: DKIM in upper case", { trust: "DKIM" }, E(400, /trust must be dkim, unsigned or deny/)],
    ["trust: unsigned without allowFrom", { trust: "unsigned" }, E(400, /unsigned needs allowFrom/)],
    [
      "trust: unsigned with an empty allowFrom",
      { trust: "unsigned", allowFrom: "  " },
      E(400, /unsigned needs allowFrom/),
    ],
    [
      "allowFrom that is a list",
      { trust: "unsigned", allowFrom: ["127.0.0.1"] },
      E(400, /allowFrom must be a string/),
    ],
    [
      "allowFrom that is not an address",
      { trust: "unsigned", allowFrom: "the office" },
      E(400, /allowFrom: /),
    ],
    ["allowFrom with a /33 prefix", { trust: "unsigned", allowFrom: "10.0.0.0/33" }, E(400, /allowFrom: /)],
    ["allowFrom of every IPv4 address", { trust: "unsigned", allowFrom: "0.0.0.0/0" }, E(400, /allowFrom: /)],
    ["allowFrom of every IPv6 address", { trust: "unsigned", allowFrom: "::/0" }, E(400, /allowFrom: /)],
    ["allowFrom of 1 MB", { trust: "unsigned", allowFrom: HUGE }, E(400, /allowFrom: /)],
    ["a note that is an object", { trust: "deny", note: { a: 1 } }, E(400, /note must be a string/)],
  ],
  "POST /peers/:domain/test": [
    ["a selector that is a number", { selector: 5 }, E(400, /selector must be a string/)],
    ["a selector with a space", { selector: "s 1" }, E(400, /is not a selector/)],
    ["a selector of 64 characters", { selector: "s".repeat(64) }, E(400, /is not a selector/)],
    ["a selector of 1 MB", { selector: HUGE }, E(400, /is not a selector/)],
  ],
  "PUT /keys/endpoint": [
    ["no url", {}, E(400, /url is required/)],
    ["a url that is a number", { url: 443 }, E(400, /url must be a string/)],
    ["a url that is not a URL", { url: "isched.org.test" }, E(400, /https:\/\/HOST/)],
    ["an http: url", { url: "http://isched.org.test/.well-known/ischedule" }, E(400, /https:\/\/HOST/)],
    [
      "a url with a query",
      { url: "https://isched.org.test/.well-known/ischedule?x=1" },
      E(400, /no credentials or query/),
    ],
    [
      "a url with credentials",
      { url: "https://user:pw@isched.org.test/.well-known/ischedule" },
      E(400, /https:\/\/HOST/),
    ],
    ["a url of 1 MB", { url: `https://${HUGE}.test/` }, E(400, /https:\/\/HOST/)],
    ["a javascript: url", { url: "javascript:alert(1)" }, E(400, /https:\/\/HOST/)],
  ],
  "POST /keys/check": [
    ["a domain that is a number", { domain: 5 }, E(400, /domain must be a string/)],
    ["a domain that is not a domain name", { domain: "org..test" }, E(400, /one of the hosted domains/)],
    ["a domain that is not hosted", { domain: "other.test" }, E(404, /not a hosted domain/)],
    ["a selector without a domain", { selector: "s1" }, E(400, /a selector needs its domain/)],
    [
      "a selector that is a list",
      { domain: "org.test", selector: ["s1"] },
      E(400, /selector must be a string/),
    ],
    [
      "a selector of no key",
      { domain: "org.test", selector: "nosuch" },
      E(404, /no key nosuch for org\.test/),
    ],
  ],
  "POST /keys": [
    ["no domain", {}, E(400, /domain is required/)],
    ["a domain that is a list", { domain: ["org.test"] }, E(400, /domain must be a string/)],
    ["a domain that is not hosted", { domain: "other.test" }, E(400, /not a hosted domain/)],
    ["a domain of 1 MB", { domain: HUGE }, E(400, /one of the hosted domains/)],
    ["type: dsa", { domain: "org.test", type: "dsa" }, E(400, /type must be rsa or ed25519/)],
    ["type that is a number", { domain: "org.test", type: 2048 }, E(400, /type must be a string/)],
  ],
  "POST /keys/:id/activate": [
    ["overlapDays: 0", { overlapDays: 0 }, E(400, /overlapDays must be a number from 1 to 90/)],
    ["overlapDays: 91", { overlapDays: 91 }, E(400, /overlapDays must be a number from 1 to 90/)],
    ["overlapDays as text", { overlapDays: "7" }, E(400, /overlapDays must be a number from 1 to 90/)],
    ["overlapDays: -1e308", { overlapDays: -1e308 }, E(400, /overlapDays/)],
  ],
  "POST /tools/verify": [
    ["no request", {}, E(400, /request is required/)],
    ["a request that is a number", { request: 1 }, E(400, /request must be a string/)],
    ["a blank request", { request: "   \n " }, E(400, /paste a raw HTTP request/)],
    [
      "atMs as text",
      { request: "POST / HTTP/1.1\r\n\r\n", atMs: "now" },
      E(400, /atMs must be a time in ms/),
    ],
    [
      "a publicKey that is not a key",
      {
        request: "POST / HTTP/1.1\r\nDKIM-Signature: v=1\r\n\r\n",
        publicKey: "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----",
      },
      E(400, /publicKey: /),
    ],
    [
      "a publicKey that is a number",
      { request: "POST / HTTP/1.1\r\n\r\n", publicKey: 7 },
      E(400, /publicKey must be a string/),
    ],
  ],
};

function deliveryCases(action: string): FieldCase[] {
  // isched runs without --smtp: sending by iMIP is refused once the deliveries are known.
  const counted = (e: ApiExpected) => (action === "imip" ? E(409, /iMIP is off/) : e);
  return [
    ["nothing to act on", {}, E(400, /exactly one of/)],
    ["ids and messageId both", { ids: [1], messageId: 1 }, E(400, /exactly one of/)],
    ["ids and q both", { ids: [1], q: "status:queued" }, E(400, /exactly one of/)],
    ["ids that is a number", { ids: 1 }, E(400, /ids must be a list of ids/)],
    ["ids with 0", { ids: [0] }, E(400, /ids must be a list of ids/)],
    ["ids with a negative id", { ids: [-1] }, E(400, /ids must be a list of ids/)],
    ["ids with a fraction", { ids: [1.5] }, E(400, /ids must be a list of ids/)],
    ["ids with a string", { ids: ["1"] }, E(400, /ids must be a list of ids/)],
    ["ids with 1e20", { ids: [1e20] }, E(400, /ids must be a list of ids/)],
    [
      "100,001 ids",
      { ids: Array.from({ length: 100_001 }, (_, i) => i + 1) },
      E(400, /more than 100000 ids/),
    ],
    ["ids that do not exist", { ids: [999_999_999] }, E(404, /no delivery 999999999/)],
    ["messageId as text", { messageId: "1" }, E(400, /messageId must be a message id/)],
    ["messageId that is a fraction", { messageId: 2.5 }, E(400, /messageId must be a message id/)],
    ["a messageId that does not exist", { messageId: 999_999_999 }, E(404, /no message 999999999/)],
    ["q that is a number", { q: 5 }, E(400, /q must be a filter/)],
    ["q that is not a filter", { q: "peer:" }, E(400, /needs a value/)],
    ["q naming status:refused", { q: "status:refused", expect: 0 }, E(409, /refused at intake/)],
    ["q without expect", { q: "status:queued" }, counted(E(400, /needs expect/))],
    [
      "q with an expect that is not the count",
      { q: "status:queued", expect: -1 },
      counted(E(409, /the set changed/)),
    ],
  ];
}

/** Bodies of every JSON route, wrong as a whole and field by field; and bodies that stall. */
export function apiBodyCases(target: () => ApiTarget, routes: readonly RouteInfo[]): Case[] {
  const cases: Case[] = [];
  const add = (name: string, expected: ApiExpected, request: ApiRequest) =>
    cases.push(apiCase(target, name, expected, request));
  // Bodies.
  const listed = new Set(routes.map((r) => `${r.method} ${r.path.replace(/^\/api\/v1/, "")}`));
  for (const [key, emptyIsValid] of JSON_ROUTES) {
    if (!listed.has(key)) throw new Error(`${key} is no longer a route: update the battery`);
    const [method, path] = key.split(" ") as [string, string];
    for (const [what, more, expected] of NOT_JSON)
      add(`${key} with ${what}`, expected, { method, path: concretePath(path), ...more });
    if (!emptyIsValid) {
      const first = FIELD_CASES[key]?.[0]?.[2] ?? E(400);
      add(`${key} with objects nested 100,000 deep`, first, {
        method,
        path: concretePath(path),
        body: DEEP_OBJECT,
        contentType: "application/json",
      });
    }
    for (const [what, json, expected] of FIELD_CASES[key] ?? [])
      add(`${key} with ${what}`, expected, { method, path: concretePath(path), json });
  }
  add("POST /api/v1/tools/verify with atMs: 1e400", E(400, /atMs must be a time in ms/), {
    method: "POST",
    path: "/tools/verify",
    body: '{"request":"POST / HTTP/1.1\\r\\n\\r\\n","atMs":1e400}',
    contentType: "application/json",
  });

  return [...cases, ...slowBodyCases(target)];
}

/** Bodies that stall: answered when the 30 s body deadline passes (src/console/http.ts), not dropped. */
function slowBodyCases(target: () => ApiTarget): Case[] {
  const stalled = (more: Partial<ApiRequest>): Partial<ApiRequest> => ({
    body: '{"trust":',
    fields: [["Content-Length", "500"]],
    timeoutMs: 45_000,
    ...more,
  });
  const list: [string, ApiRequest, ApiExpected][] = [
    [
      "PUT /api/v1/peers/:domain/policy with a body that stalls",
      { method: "PUT", path: "/peers/peer.test/policy", contentType: "application/json", ...stalled({}) },
      E(408, /did not arrive within 30 s/),
    ],
    [
      "POST /api/v1/messages with a body that stalls",
      { method: "POST", path: "/messages", contentType: "text/calendar", ...stalled({}) },
      E(408, /did not arrive within 30000 ms/),
    ],
    [
      "POST /api/v1/session with a body that stalls",
      {
        method: "POST",
        path: "/session",
        auth: { kind: "none" },
        contentType: "application/json",
        ...stalled({ from: guessAddress() }),
      },
      GUESS(408, /did not arrive within 30 s/),
    ],
  ];
  return list.map(([name, request, expected]) => apiCase(target, name, expected, request, { slow: true }));
}
