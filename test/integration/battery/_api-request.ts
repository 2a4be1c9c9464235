/**
 * Talking to the console's JSON API over raw sockets (so that a case can send any Host, Origin,
 * cookie or byte, and from any 127.0.0.x address), and checking an answer against what a case
 * expects: its status (429 allowed where a password guess may be slowed down), a JSON object with
 * an `error` sentence matching the case's pattern, and Allow on a 405.
 */
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../../support/raw-http.ts";
import { type Case, clip, type Verdict } from "./_cases.ts";

export interface ApiTarget {
  port: number;
  token: string;
  /** A signed-in session: the cookie header value and its CSRF token. */
  session: { cookie: string; csrf: string };
}

export type Auth =
  | { kind: "token" }
  | { kind: "none" }
  | { kind: "session"; csrf?: "right" | "wrong" | "none" }
  | { kind: "fields"; fields: RawField[] };

export interface ApiRequest {
  method: string;
  /** Below /api/v1, with the query: `/messages?q=x`. */
  path: string;
  auth?: Auth;
  /** Replaces the loopback Host (`127.0.0.1:PORT`). */
  host?: string;
  /** More fields, after the ones above. */
  fields?: RawField[];
  /** A value is sent as JSON (application/json); bytes and strings as they are, with `contentType`. */
  json?: unknown;
  body?: string | Uint8Array;
  contentType?: string;
  /** Connect from this address (each password guess from an address of its own). */
  from?: string;
  timeoutMs?: number;
}

export function apiRequest(t: ApiTarget, r: ApiRequest): Promise<RawResponse> {
  const fields: RawField[] = [
    ["Host", r.host ?? `127.0.0.1:${t.port}`],
    ...authFields(t, r.auth ?? { kind: "token" }),
  ];
  let body: Uint8Array | undefined;
  if (r.json !== undefined) {
    body = Buffer.from(JSON.stringify(r.json));
    fields.push(["Content-Type", r.contentType ?? "application/json"]);
  } else if (r.body !== undefined) {
    body = Buffer.from(r.body);
    if (r.contentType !== undefined) fields.push(["Content-Type", r.contentType]);
  }
  fields.push(...(r.fields ?? []));
  return rawExchange({
    port: t.port,
    localAddress: r.from,
    timeoutMs: r.timeoutMs,
    request: requestBytes({ method: r.method, path: `/api/v1${r.path}`, fields, body }),
  });
}

function authFields(t: ApiTarget, a: Auth): RawField[] {
  switch (a.kind) {
    case "none":
      return [];
    case "token":
      return [["Authorization", `Bearer ${t.token}`]];
    case "fields":
      return a.fields;
    case "session": {
      const csrf = a.csrf ?? "right";
      return [
        ["Cookie", t.session.cookie],
        ...(csrf === "none"
          ? []
          : [["X-CSRF-Token", csrf === "right" ? t.session.csrf : "0".repeat(43)] as RawField]),
      ];
    }
  }
}

export interface ApiExpected {
  /** The status, or the statuses one of which is right (a password guess may get 429). */
  status: number | readonly number[];
  /** The `error` sentence of a 4xx; for a 2xx, nothing is checked of the body but that it is JSON. */
  error?: RegExp;
  /** A 405's Allow field. */
  allow?: string;
  /** More checks of the JSON body (problems, empty when right). */
  body?: (value: Record<string, unknown>) => string[];
}

export function checkApi(r: RawResponse, e: ApiExpected): Verdict {
  const serverError = r.status >= 500;
  const problems: string[] = [];
  const wanted = typeof e.status === "number" ? [e.status] : e.status;
  if (!wanted.includes(r.status))
    problems.push(`HTTP ${r.status}, expected ${wanted.join(" or ")}: ${clip(r.text)}`);
  if (!/^application\/json\b/.test(r.headers.get("content-type") ?? ""))
    problems.push(`Content-Type ${r.headers.get("content-type")}, not JSON: ${clip(r.text)}`);
  let value: unknown;
  try {
    value = JSON.parse(r.text);
  } catch {
    problems.push(`the body is not JSON: ${clip(r.text)}`);
    return { problems, serverError };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`the body is not a JSON object: ${clip(r.text)}`);
    return { problems, serverError };
  }
  const body = value as Record<string, unknown>;
  if (r.status >= 400) {
    if (typeof body.error !== "string" || body.error.trim() === "")
      problems.push(`no error sentence: ${clip(r.text)}`);
    // 429 has its own sentence (how long to wait); the case's pattern is for its other answer.
    else if (e.error && r.status !== 429 && !e.error.test(body.error))
      problems.push(`error "${clip(body.error)}" does not match ${e.error}`);
    if (r.status === 429 && r.headers.get("retry-after") === null) problems.push("a 429 without Retry-After");
  }
  if (e.allow !== undefined && r.headers.get("allow") !== e.allow)
    problems.push(`Allow: ${r.headers.get("allow")}, expected ${e.allow}`);
  if (e.body && problems.length === 0) problems.push(...e.body(body));
  return { problems, serverError };
}

export function apiCase(
  target: () => ApiTarget,
  name: string,
  expected: ApiExpected,
  request: ApiRequest | ((t: ApiTarget) => ApiRequest | Promise<ApiRequest>),
  o: { slow?: boolean } = {},
): Case {
  return {
    area: "console/API",
    name,
    ...(o.slow && { slow: true }),
    async run() {
      const t = target();
      const r = typeof request === "function" ? await request(t) : request;
      return checkApi(await apiRequest(t, r), expected);
    },
  };
}

/** A distinct loopback address per password guess, so that the per-address throttle does not decide. */
let nextAddress = 0;
export function guessAddress(): string {
  nextAddress = (nextAddress % 200) + 1;
  return `127.0.1.${nextAddress}`;
}

/** An expected answer: the status (or statuses), the error's pattern, and more checks. */
export const E = (
  status: number | number[],
  error?: RegExp,
  more: Partial<ApiExpected> = {},
): ApiExpected => ({
  status,
  ...(error && { error }),
  ...more,
});
export const NO_CREDENTIALS = E(401, /sign in, or send the API token/);
/** A password guess: this answer, or 429 when the throttle says wait. */
export const GUESS = (status: number, error: RegExp) => E([status, 429], error);
