/**
 * The console API's route table and answers. A route is data: method, path, who may call it, one
 * line of summary, and the schemas (Elysia's `t`, that is TypeBox: JSON Schema) of its JSON body,
 * query and path parameters. mount.ts hands the table to Elysia, which checks every request against
 * the schemas before the route's handler runs; api-description.ts lists the same table (GET
 * /api/v1/routes, GET /api/v1/openapi.json); the tests walk it ("every route refuses an
 * unauthenticated call").
 */
import { type Static, type TSchema, t } from "elysia";
import type { Session } from "./auth.ts";

export type Access =
  /** Reachable without signing in (signing in itself); still same-origin only. */
  | "public"
  /** Reads; never changes anything. */
  | "read"
  /** Changes something: needs the CSRF token when called with a session. */
  | "change";

export type Method = "GET" | "POST" | "PUT" | "DELETE";

export interface Caller {
  readonly via: "session" | "token";
  readonly session?: Session;
  /** The session cookie value (to sign out), when `via` is session. */
  readonly cookieValue?: string;
}

/** A guess at a secret (route.guesses): its reservation in the throttle, settled when the route ends. */
export interface Guess {
  /** The guess was right: forget the address's failures. Anything else counts as a failure. */
  succeeded(): void;
}

export interface RouteRequest<Body = unknown, Query = unknown, Params = Readonly<Record<string, string>>> {
  readonly request: Request;
  /** The body, read and checked against route.body; undefined on routes without a body. */
  readonly body: Body;
  /** The query, checked against route.query. */
  readonly query: Query;
  /** The path's `:name` parameters, decoded (and checked against route.params when it has one). */
  readonly params: Params;
  /** Undefined only on public routes. */
  readonly caller: Caller | undefined;
  /** The client's IP address (src/net/client-address.ts). */
  readonly address: string;
  /** Lifts the idle timeout for a long-lived answer (server-sent events). */
  readonly keepOpen: () => void;
  /** On routes that take guesses: this guess's reservation. */
  readonly guess: Guess;
}

/**
 * How a route's body is read: by the capped, streaming reader (src/http/read-body.ts), never further
 * than `maxBytes`, as one JSON object (request-body.ts) unless the route reads it its own way; the
 * result is what the schema checks.
 *
 * What a client is told when a field is wrong (mount.ts): the field's `error` when it has one (for
 * any failure), else "NAME is required" (missing or null), "NAME must be a string" (or a number, a
 * list...: another JSON type), then the field's `invalid` (a value of the right type that the schema
 * refuses: `{ invalid: "trust must be dkim, unsigned or deny" }`).
 */
export interface BodySpec<S extends TSchema = TSchema> {
  readonly schema: S;
  /** Default MAX_JSON_BYTES. */
  readonly maxBytes?: number;
  /** How the route reads its body, when not as one JSON object (through the capped reader too). */
  readonly read?: (request: Request, maxBytes: number) => Promise<unknown>;
  /** The media types the route takes, for the API's description (default application/json). */
  readonly types?: readonly string[];
}

type BodyOf<B> = B extends BodySpec<infer S> ? Static<S> : undefined;
type QueryOf<Q> = Q extends TSchema ? Static<Q> : Readonly<Record<string, never>>;
type ParamsOf<P> = P extends TSchema ? Static<P> : Readonly<Record<string, string>>;

export interface RouteDefinition<
  B extends BodySpec | undefined = BodySpec | undefined,
  Q extends TSchema | undefined = TSchema | undefined,
  P extends TSchema | undefined = TSchema | undefined,
> {
  readonly method: Method;
  /** Under /api/v1, with `:name` parameters: `/messages/:id`. */
  readonly path: string;
  readonly access: Access;
  /** One line for the route list (GET /api/v1/routes). */
  readonly summary: string;
  /** Without one, the route never reads its body. */
  readonly body?: B;
  /** Each field with an `error` message: what a client is told when the field is wrong. */
  readonly query?: Q;
  /** Each field with an `error` message, as for the query. */
  readonly params?: P;
  /**
   * The route checks a password or token: the client's address takes a reservation in the throttle
   * (src/net/attempt-throttle.ts) before the body is read, answered 429 while it must wait, and a
   * guess that does not call `guess.succeeded()` (a refused body among them) counts as a failure.
   */
  readonly guesses?: boolean;
  handle(r: RouteRequest<BodyOf<B>, QueryOf<Q>, ParamsOf<P>>): Response | Promise<Response>;
}

/** A route of the table, whatever its schemas. */
export type Route = RouteDefinition;

/** A route, with the handler's body, query and params typed by its schemas. */
export function route<
  B extends BodySpec | undefined = undefined,
  Q extends TSchema | undefined = undefined,
  P extends TSchema | undefined = undefined,
>(r: RouteDefinition<B, Q, P>): Route {
  return r as unknown as Route;
}

export const API_PREFIX = "/api/v1";

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

/**
 * A JSON number that is a safe integer (Elysia's `t.Integer` would also take a string of digits,
 * which suits a query but not a JSON body).
 */
export const safeInteger = (o: { minimum?: number; error?: string } = {}) =>
  t.Number({
    multipleOf: 1,
    minimum: o.minimum ?? Number.MIN_SAFE_INTEGER,
    maximum: Number.MAX_SAFE_INTEGER,
    ...(o.error ? { error: o.error } : {}),
  });

/** An optional field that may also be null, which counts as absent (JSON clients often send null). */
export const optionalOrNull = <S extends TSchema>(schema: S, error: string) =>
  t.Optional(t.Union([schema, t.Null()], { error }));
