/**
 * The console API on Elysia: every route of the table (http.ts) mounted under /api/v1 with its
 * schemas, each request taken through the same steps in this order:
 *
 * 1. admission (guard.ts): same origin, then who is calling (the API token or a session), then the
 *    CSRF token for changes; on routes that take guesses, the address's reservation in the throttle
 *    (guesses.ts). Elysia runs a route's body parser before its transform hooks, so admission runs
 *    once, in whichever comes first: the parser of a route with a body, the transform of the others.
 *    Nothing of a request is read before it is admitted.
 * 2. the body, by the capped, streaming reader (request-body.ts), as the route's parser; a route
 *    without a body schema never reads its body (`parse: "none"`);
 * 3. Elysia checks the body, query and params against the route's schemas;
 * 4. the route's handler.
 *
 * Unknown paths under /api/v1, and methods a path does not take, are admitted as changes, so they
 * reveal nothing to a stranger, then answered 404, or 405 with Allow. Every refusal is the API's JSON
 * error (`{ error }`, naming the field that is wrong) with a 4xx status; Elysia's own error answers
 * never reach a client, and only a fault of isched's is a 500.
 */
import { type AnyElysia, Elysia, ParseError, ValidationError } from "elysia";
import { idleSecondsWhileReading } from "../http/read-body.ts";
import type { AttemptThrottle } from "../net/attempt-throttle.ts";
import type { Cidr } from "../net/cidr.ts";
import { clientAddress } from "../net/client-address.ts";
import { storageFailure } from "../store/errors.ts";
import { type GuardOptions, guard } from "./guard.ts";
import { type HeldGuess, holdGuess, throttled } from "./guesses.ts";
import {
  type Access,
  API_HEADERS,
  API_PREFIX,
  apiError,
  type Caller,
  json,
  RequestError,
  type Route,
} from "./http.ts";
import { BODY_TIMEOUT_MS, readRouteBody } from "./request-body.ts";

export interface ApiAppOptions {
  routes: readonly Route[];
  guard: GuardOptions;
  throttle: AttemptThrottle;
  trustedProxies: readonly Cidr[];
  log: { log(level: "error", message: string, fields?: Record<string, string>): void };
}

/** What the hooks of one request read of Elysia's context. */
interface Hooked {
  readonly request: Request;
  readonly params?: Readonly<Record<string, string>>;
}

interface Handled extends Hooked {
  readonly body: unknown;
  readonly query: unknown;
  readonly params: Readonly<Record<string, string>>;
}

/** A request admitted: who calls, from where, for which route (undefined: a 405 or 404). */
interface Admitted {
  readonly route: Route | undefined;
  readonly caller: Caller | undefined;
  readonly address: string;
  readonly guess: HeldGuess | undefined;
}

/** A refusal from admission, answered as it is. */
class Refused extends Error {
  override readonly name = "Refused";
  constructor(readonly response: Response) {
    super(`refused with ${response.status}`);
  }
}

const NO_GUESS = { succeeded() {} };

const NO_ROUTE = "no such API route (GET /api/v1/routes lists them)";

/**
 * A request's path. Bun gives a bare path as request.url when the Host header is empty or not a
 * host name, which `new URL()` alone refuses; the guard then answers 403 for the Host.
 */
const pathOf = (request: Request): string => new URL(request.url, "http://host.invalid").pathname;

/** A hook or handler over the parts of Elysia's context it reads (Elysia's own type is per route). */
const onContext = <C, R>(fn: (c: C) => R) => fn as unknown as (c: Record<string, unknown>) => R;

/** The API under /api/v1, and 404 in plain text for anything else that no other route serves. */
export function apiApp(o: ApiAppOptions): AnyElysia {
  const admitted = new WeakMap<Request, Admitted>();

  async function admit(c: Hooked, access: Access, route: Route | undefined): Promise<Admitted> {
    const known = admitted.get(c.request);
    if (known) return known;
    // The routes time their bodies themselves and answer 408: Bun must not cut them off first.
    app.server?.timeout(c.request, idleSecondsWhileReading(BODY_TIMEOUT_MS));
    const checked = await guard(c.request, access, o.guard);
    if (!checked.ok) throw new Refused(checked.response);
    // On public routes: who is calling, if anyone (GET /session answers differently when signed in).
    // Bun matches routes on the path as sent but gives request.url normalised (RFC 3986 §5.2.4): a
    // parameter that is a dot segment (`..`, `%2e%2e`) names another path, which no route serves.
    if (Object.values(c.params ?? {}).some((v) => v === "." || v === ".."))
      throw new Refused(apiError(404, NO_ROUTE));
    let caller = checked.caller;
    if (access === "public") {
      const who = await guard(c.request, "read", o.guard);
      caller = who.ok ? who.caller : undefined;
    }
    const address = clientAddress({
      peer: app.server?.requestIP(c.request)?.address ?? "",
      headers: c.request.headers,
      trustedProxies: o.trustedProxies,
    });
    let guess: HeldGuess | undefined;
    if (route?.guesses) {
      const reservation = o.throttle.reserve(address);
      if (!reservation.ok) throw new Refused(throttled(reservation));
      guess = holdGuess(reservation);
    }
    const a = { route, caller, address, guess };
    admitted.set(c.request, a);
    return a;
  }

  const app: AnyElysia = new Elysia({ strictPath: true }).onError(({ code, error, request }) => {
    admitted.get(request)?.guess?.settle();
    const e = error instanceof ParseError ? error.cause : error;
    if (e instanceof Refused) return e.response;
    if (e instanceof RequestError) return apiError(e.status, e.message, e.extra);
    if (e instanceof ValidationError) return apiError(400, invalidMessage(e, admitted.get(request)?.route));
    if (code === "NOT_FOUND") return notFound(request);
    const path = pathOf(request);
    const storage = storageFailure(e);
    if (storage !== undefined) {
      // A full disk is not a bug: the caller may try again once the operator has made room.
      o.log.log("error", "console API: the database cannot be written", { path, error: storage });
      const error = `isched cannot write its database now (${storage}); try again later`;
      return json(503, { error }, { "Retry-After": "60" });
    }
    o.log.log("error", "console API error", { path, error: (e as Error)?.message ?? String(e) });
    return apiError(500, "internal error (see the server log)");
  });

  for (const r of o.routes) {
    checkable(r);
    app.route(
      r.method,
      `${API_PREFIX}${r.path}`,
      onContext(async (c: Handled) => {
        const a = admitted.get(c.request)!;
        try {
          return await r.handle({
            request: c.request,
            body: c.body,
            query: c.query,
            params: c.params,
            caller: a.caller,
            address: a.address,
            keepOpen: () => app.server?.timeout(c.request, 0),
            guess: a.guess ?? NO_GUESS,
          });
        } finally {
          a.guess?.settle();
        }
      }),
      {
        parse: r.body
          ? [
              onContext(async (c: Hooked) => {
                await admit(c, r.access, r);
                return readRouteBody(c.request, r.body!);
              }),
            ]
          : "none",
        transform: [
          onContext(async (c: Hooked) => {
            await admit(c, r.access, r);
          }),
        ],
        body: r.body?.schema,
        query: r.query,
        params: r.params,
      },
    );
  }

  // The methods each path takes; any other is 405, after the same admission as a change.
  const methods = new Map<string, string[]>();
  for (const r of o.routes) methods.set(r.path, [...(methods.get(r.path) ?? []), r.method]);
  for (const [path, allowed] of methods) {
    app.all(
      `${API_PREFIX}${path}`,
      () => json(405, { error: `use ${allowed.join(" or ")}` }, { Allow: allowed.join(", ") }),
      {
        parse: "none",
        transform: [
          onContext(async (c: Hooked) => {
            await admit(c, "change", undefined);
          }),
        ],
      },
    );
  }

  async function notFound(request: Request): Promise<Response> {
    const path = pathOf(request);
    if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) {
      return new Response("Not found.\n", {
        status: 404,
        headers: { ...API_HEADERS, "Content-Type": "text/plain; charset=utf-8" },
      });
    }
    // Guarded like a change, so that an unknown path reveals nothing to a stranger.
    const checked = await guard(request, "change", o.guard);
    if (!checked.ok) return checked.response;
    return apiError(404, NO_ROUTE);
  }

  return app;
}

/** TypeBox marks a transform (decode/encode) schema with this symbol. */
const TRANSFORM = Symbol.for("TypeBox.Transform");

function hasTransform(schema: unknown): boolean {
  if (typeof schema !== "object" || schema === null) return false;
  if (TRANSFORM in schema) return true;
  const s = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] };
  return (
    Object.values(s.properties ?? {}).some(hasTransform) ||
    hasTransform(s.items) ||
    (s.anyOf ?? []).some(hasTransform)
  );
}

/**
 * A route's schemas hold no transform, and its query and path parameters are strings (a pattern for
 * a number): Elysia would coerce a number or boolean there through a TypeBox transform (as it does
 * for its t.Integer, t.Numeric...), and it recognises a failed transform by its class name, which
 * `bun build --minify` renames, so the compiled binary would let the raw value through unchecked
 * (limit=0 reached the handler).
 */
function checkable(r: Route): void {
  const where = `${r.method} ${r.path}`;
  if ([r.body?.schema, r.query, r.params].some(hasTransform))
    throw new TypeError(
      `${where}: a schema with a transform (t.Integer, t.Numeric...) is not checked when minified`,
    );
  for (const [part, schema] of [
    ["query", r.query],
    ["params", r.params],
  ] as const) {
    for (const [name, field] of Object.entries((schema?.properties ?? {}) as Record<string, FieldSchema>)) {
      if (field.type !== "string")
        throw new TypeError(`${where}: ${part} field ${name} must be a string schema`);
    }
  }
}

/** A body field's schema, as far as the messages need it. */
interface FieldSchema {
  readonly type?: string;
  readonly const?: unknown;
  readonly anyOf?: readonly FieldSchema[];
  readonly error?: unknown;
  readonly invalid?: unknown;
}

/**
 * What a client is told when the body, query or a parameter is wrong (the conventions are in
 * http.ts, BodySpec): every query and params field has its own `error`; a body field its `error`,
 * else that it is required, of another JSON type, or `invalid`.
 */
function invalidMessage(e: ValidationError, route: Route | undefined): string {
  const where = e.valueError?.path ?? "";
  const field = where.split("/")[1];
  const properties = route?.body?.schema.properties as Record<string, FieldSchema> | undefined;
  const declared = e.type === "body" && field ? properties?.[field] : undefined;
  if (!declared) {
    if (typeof e.customError === "string") return e.customError;
    return `the ${e.type} is not valid: ${lowerFirst(e.valueError?.message ?? "unexpected value")}`;
  }
  if (typeof declared.error === "string") return declared.error;
  const value = (e.value as Record<string, unknown>)[field!];
  if (value === undefined || value === null) return `${field} is required`;
  const expected = jsonTypes(declared);
  if (!expected.has(jsonType(value))) return `${field} must be ${describeTypes(expected)}`;
  if (typeof declared.invalid === "string") return declared.invalid;
  return `${where.slice(1).replaceAll("/", ".")}: ${lowerFirst(e.valueError?.message ?? "not valid")}`;
}

type JsonType = "string" | "number" | "boolean" | "array" | "object" | "null";

function jsonType(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const type = typeof value;
  return type === "string" || type === "number" || type === "boolean" ? type : "object";
}

/** The JSON types a schema takes (a union's members', a literal's own). */
function jsonTypes(schema: FieldSchema): Set<JsonType> {
  if (schema.anyOf) return new Set(schema.anyOf.flatMap((s) => [...jsonTypes(s)]));
  if (schema.const !== undefined) return new Set([jsonType(schema.const)]);
  if (schema.type === "integer") return new Set(["number"]);
  return new Set(schema.type ? [schema.type as JsonType] : []);
}

const TYPE_NAMES: Record<JsonType, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  array: "a list",
  object: "an object",
  null: "null",
};

function describeTypes(types: Set<JsonType>): string {
  return [...types]
    .filter((t) => t !== "null")
    .map((t) => TYPE_NAMES[t])
    .join(" or ");
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
