/**
 * The console API's plumbing: a route table (method, path pattern, who may call it), JSON answers
 * with the headers every answer carries, and request-body reading with limits. Routes are data, so
 * the tests can walk all of them ("every route refuses an unauthenticated call"). Bodies are read
 * through the capped, streaming reader, so a route never holds more than its limit.
 */
import {
  BodyReadError,
  BodyTimeoutError,
  BodyTooLargeError,
  DEFAULT_BODY_TIMEOUT_MS,
  readCappedText,
} from "../http/read-body.ts";
import type { Session } from "./auth.ts";

export type Access =
  /** Reachable without signing in (signing in itself); still same-origin only. */
  | "public"
  /** Reads; never changes anything. */
  | "read"
  /** Changes something: needs the CSRF token when called with a session. */
  | "change";

export interface Caller {
  readonly via: "session" | "token";
  readonly session?: Session;
  /** The session cookie value (to sign out), when `via` is session. */
  readonly cookieValue?: string;
}

export interface RouteRequest {
  readonly request: Request;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** Undefined only on public routes. */
  readonly caller: Caller | undefined;
  /** The client's IP address. */
  readonly address: string;
  /** Lifts the idle timeout for a long-lived answer (server-sent events). */
  readonly keepOpen: () => void;
}

export interface Route {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Under /api/v1, with `:name` parameters: `/messages/:id`. */
  readonly path: string;
  readonly access: Access;
  /** One line for the route list (GET /api/v1/routes). */
  readonly summary: string;
  handle(r: RouteRequest): Response | Promise<Response>;
}

export const API_PREFIX = "/api/v1";

/**
 * The request's URL. Bun gives a bare path as request.url when the Host header is empty or not a
 * host name, which `new URL()` alone refuses; the guard then answers 403 for the Host.
 */
export const requestUrl = (request: Request): URL => new URL(request.url, "http://host.invalid");

/** Every API answer: not cached, not sniffed, not framed, no referrer, nothing to run. */
export const API_HEADERS: Readonly<Record<string, string>> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  "Cross-Origin-Resource-Policy": "same-origin",
};

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { ...API_HEADERS, "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

export const apiError = (status: number, message: string, extra: Record<string, unknown> = {}): Response =>
  json(status, { error: message, ...extra });

/** A problem with the request that the handler reports as a 4xx answer. */
export class RequestError extends Error {
  override readonly name = "RequestError";
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The largest JSON body an authenticated route reads. */
export const MAX_JSON_BYTES = 2 * 1024 * 1024;
/** Signing in and setting the first password: a password and a token, read before anyone is known. */
export const MAX_PUBLIC_JSON_BYTES = 16 * 1024;
export const BODY_TIMEOUT_MS = DEFAULT_BODY_TIMEOUT_MS;

/** The body as text, read no further than `maxBytes` (src/http/read-body.ts); RequestError 413, 408 or 400. */
export async function readText(request: Request, maxBytes: number): Promise<string> {
  try {
    return await readCappedText(request, { maxBytes, timeoutMs: BODY_TIMEOUT_MS });
  } catch (e) {
    if (e instanceof BodyTooLargeError)
      throw new RequestError(413, `the body is larger than ${maxBytes} bytes`);
    if (e instanceof BodyTimeoutError)
      throw new RequestError(408, `the body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`);
    if (e instanceof BodyReadError) throw new RequestError(400, e.message);
    throw e;
  }
}

/** The JSON object in the body; RequestError (400, 408, 413, 415) otherwise. */
export async function readJson(
  request: Request,
  maxBytes = MAX_JSON_BYTES,
): Promise<Record<string, unknown>> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw new RequestError(415, "send the body as application/json");
  const text = await readText(request, maxBytes);
  let value: unknown;
  try {
    value = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new RequestError(400, "the body is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new RequestError(400, "the body must be a JSON object");
  return value as Record<string, unknown>;
}

export function stringField(
  body: Record<string, unknown>,
  name: string,
  o: { optional: true },
): string | undefined;
export function stringField(body: Record<string, unknown>, name: string, o?: { optional?: false }): string;
export function stringField(
  body: Record<string, unknown>,
  name: string,
  o: { optional?: boolean } = {},
): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (o.optional) return undefined;
    throw new RequestError(400, `${name} is required`);
  }
  if (typeof v !== "string") throw new RequestError(400, `${name} must be a string`);
  return v;
}

export function idList(body: Record<string, unknown>, name: string): number[] | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && x > 0))
    throw new RequestError(400, `${name} must be a list of ids`);
  if (v.length > 100_000) throw new RequestError(400, `${name} has more than 100000 ids`);
  return v as number[];
}

/** Compiled route patterns, matched in order. */
export function createRouter(routes: readonly Route[]) {
  const compiled = routes.map((route) => {
    const names: string[] = [];
    const source = route.path.replace(/:([a-zA-Z]+)/g, (_, name: string) => {
      names.push(name);
      return "([^/]+)";
    });
    return { route, re: new RegExp(`^${source}$`), names };
  });
  return {
    /** The route for a method and path (below the prefix); `methods` lists those of the path otherwise. */
    match(
      method: string,
      path: string,
    ): { route: Route; params: Record<string, string> } | { route: undefined; methods: string[] } {
      const methods: string[] = [];
      for (const c of compiled) {
        const m = c.re.exec(path);
        if (!m) continue;
        if (c.route.method !== method && !(method === "HEAD" && c.route.method === "GET")) {
          methods.push(c.route.method);
          continue;
        }
        const params: Record<string, string> = {};
        for (const [i, name] of c.names.entries()) {
          try {
            params[name] = decodeURIComponent(m[i + 1]!);
          } catch {
            params[name] = m[i + 1]!;
          }
        }
        return { route: c.route, params };
      }
      return { route: undefined, methods };
    },
  };
}
