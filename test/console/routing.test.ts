/**
 * The console API's routing and request checks, walked over the route table the API describes:
 * each route's body and query come with their JSON Schemas (GET /api/v1/routes, and the same as an
 * OpenAPI document), a body or query of the wrong shape is a 400 JSON error naming the field (never
 * a 422, a 500, or a framework's error page), a method a path does not take is 405 with Allow, an
 * unknown path 404, and both only after the caller is admitted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rawExchange, requestBytes } from "../support/raw-http.ts";
import { type ConsoleServer, samplePath, startConsoleServer } from "./_console.ts";

interface JsonSchema {
  type?: string;
  const?: unknown;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

interface RouteInfo {
  method: string;
  path: string;
  access: "public" | "read" | "change";
  summary: string;
  body?: JsonSchema;
  query?: JsonSchema;
}

let c: ConsoleServer;
let routes: RouteInfo[];

beforeAll(async () => {
  c = await startConsoleServer();
  routes = ((await (await c.token("/api/v1/routes")).json()) as { routes: RouteInfo[] }).routes;
});
afterAll(() => c.close());

/** A JSON value no schema of this type takes. */
function wrongFor(schema: JsonSchema): unknown {
  const types = new Set([schema.type, ...(schema.anyOf ?? []).map((s) => s.type)]);
  if (types.has("string") || types.has("boolean")) return { not: "this" };
  if (types.has("number") || types.has("integer") || types.has("array")) return "not this";
  return undefined;
}

/** A value of the right type for a field, so that a body has nothing wrong but the field under test. */
function sampleFor(schema: JsonSchema): unknown {
  const s = schema.anyOf?.[0] ?? schema;
  if (s.const !== undefined) return s.const;
  return { string: "x", number: 1, integer: 1, boolean: true, array: [] }[s.type ?? "string"];
}

const answer = async (res: Response) => ({
  status: res.status,
  type: res.headers.get("content-type") ?? "",
  body: (await res.json()) as { error?: string },
});

describe("the route list is made from the routes", () => {
  test("routes that read a JSON body give its schema; the others read no body", () => {
    const withBody = routes.filter((r) => r.body).map((r) => `${r.method} ${r.path}`);
    for (const r of [
      "POST /api/v1/session",
      "PUT /api/v1/peers/:domain/policy",
      "POST /api/v1/deliveries/retry",
      "POST /api/v1/messages",
      "POST /api/v1/tools/verify",
    ])
      expect(withBody).toContain(r);
    for (const r of routes.filter((x) => x.method === "GET" || x.method === "DELETE"))
      expect(r.body).toBeUndefined();
    const policy = routes.find((r) => r.path === "/api/v1/peers/:domain/policy" && r.method === "PUT")!;
    expect(policy.body!.required).toEqual(["trust"]);
    expect(Object.keys(policy.body!.properties!).sort()).toEqual(["allowFrom", "note", "signers", "trust"]);
  });

  test("GET /api/v1/openapi.json describes every route, with its access level", async () => {
    const res = await c.token("/api/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { "x-access": string; requestBody?: unknown }>>;
    };
    expect(doc.openapi).toStartWith("3.1");
    for (const r of routes) {
      const op = doc.paths[r.path.replace(/:([a-zA-Z]+)/g, "{$1}")]?.[r.method.toLowerCase()];
      expect({
        route: `${r.method} ${r.path}`,
        access: op?.["x-access"],
        body: op?.requestBody !== undefined,
      }).toEqual({
        route: `${r.method} ${r.path}`,
        access: r.access,
        body: r.body !== undefined,
      });
    }
  });

  test("the route list and the OpenAPI document need the API token or a session", async () => {
    expect((await c.raw("/api/v1/routes")).status).toBe(401);
    expect((await c.raw("/api/v1/openapi.json")).status).toBe(401);
  });
});

describe("a body or query of the wrong shape", () => {
  test("every body field of the wrong type is a 400 JSON error naming the field", async () => {
    let checked = 0;
    for (const r of routes.filter((x) => x.body && x.access !== "public")) {
      for (const [field, schema] of Object.entries(r.body!.properties ?? {})) {
        const wrong = wrongFor(schema);
        if (wrong === undefined) continue;
        const body: Record<string, unknown> = {};
        for (const other of r.body!.required ?? []) body[other] = sampleFor(r.body!.properties![other]!);
        body[field] = wrong;
        const a = await answer(await c.token(samplePath(r.path), { method: r.method, json: body }));
        expect({ route: `${r.method} ${r.path}`, field, status: a.status, type: a.type }).toEqual({
          route: `${r.method} ${r.path}`,
          field,
          status: 400,
          type: "application/json; charset=utf-8",
        });
        expect(a.body.error).toContain(field);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  test("every query field with a value it does not take is a 400 JSON error that says what it takes", async () => {
    const seen: string[] = [];
    for (const r of routes.filter((x) => x.query)) {
      for (const [field, schema] of Object.entries(r.query!.properties ?? {})) {
        const constrained = schema as { minLength?: number; pattern?: string };
        if (schema.type === "string" && !constrained.minLength && !constrained.pattern) continue;
        const others = (r.query!.required ?? []).filter((f) => f !== field).map((f) => `${f}=x`);
        const a = await answer(await c.token(`${r.path}?${[...others, `${field}=`].join("&")}`));
        expect({ route: r.path, field, status: a.status }).toEqual({ route: r.path, field, status: 400 });
        expect(a.body.error).toContain(field);
        seen.push(`${r.path}?${field}`);
      }
    }
    expect(seen).toContain("/api/v1/messages?limit");
    expect(seen).toContain("/api/v1/inbox?recipient");
  });

  test("a required field that is missing, or null, is named as required", async () => {
    for (const body of [{}, { url: null }]) {
      const a = await answer(await c.token("/api/v1/keys/endpoint", { method: "PUT", json: body }));
      expect(a).toMatchObject({ status: 400, body: { error: "url is required" } });
    }
  });

  test("a field is said to be required, of the wrong type, or not one of its values, in that order", async () => {
    const put = async (json: unknown) =>
      (await answer(await c.token("/api/v1/peers/peer.example/policy", { method: "PUT", json }))).body.error;
    expect(await put({})).toBe("trust is required");
    expect(await put({ trust: null })).toBe("trust is required");
    expect(await put({ trust: 1 })).toBe("trust must be a string");
    expect(await put({ trust: "maybe" })).toBe("trust must be dkim, unsigned or deny");
    expect(await put({ trust: "deny", note: 5 })).toBe("note must be a string");
  });

  test("a list of ids with a non-id in it names the list", async () => {
    const a = await answer(
      await c.token("/api/v1/deliveries/retry", { method: "POST", json: { ids: [1, 0] } }),
    );
    expect(a).toMatchObject({
      status: 400,
      body: { error: "ids must be a list of ids (whole numbers from 1), not more than 100000 ids" },
    });
  });

  test("a body that is not JSON, not an object, or not JSON at all by its type is refused before any check", async () => {
    const post = (body: string, type: string) =>
      c.token("/api/v1/keys/check", { method: "POST", headers: { "Content-Type": type }, body });
    expect(await answer(await post("{nope", "application/json"))).toMatchObject({
      status: 400,
      body: { error: "the body is not JSON" },
    });
    expect(await answer(await post("[1]", "application/json"))).toMatchObject({
      status: 400,
      body: { error: "the body must be a JSON object" },
    });
    expect(await answer(await post("domain=x", "application/x-www-form-urlencoded"))).toMatchObject({
      status: 415,
      body: { error: "send the body as application/json" },
    });
  });

  test("a path parameter the route does not take is a 400 naming it", async () => {
    const a = await answer(await c.token("/api/v1/keys/abc/retire", { method: "POST" }));
    expect(a).toMatchObject({ status: 400, body: { error: '"abc" is not a key id' } });
  });
});

describe("paths and methods", () => {
  test("a method a path does not take is 405 with Allow, once the caller is admitted", async () => {
    const res = await c.token("/api/v1/overview", { method: "POST", json: {} });
    expect(await answer(res)).toMatchObject({ status: 405, body: { error: "use GET" } });
    expect(res.headers.get("allow")).toBe("GET");
    const session = await c.token("/api/v1/session", { method: "PUT", json: {} });
    expect(session.status).toBe(405);
    expect(session.headers.get("allow")).toBe("GET, POST, DELETE");
    expect((await c.raw("/api/v1/overview", { method: "POST" })).status).toBe(401);
  });

  test("an unknown API path is 404 in JSON for a caller, 401 for a stranger; off the API, 404 in text", async () => {
    expect(await answer(await c.token("/api/v1/nothing-here"))).toMatchObject({
      status: 404,
      body: { error: "no such API route (GET /api/v1/routes lists them)" },
    });
    expect((await c.raw("/api/v1/nothing-here")).status).toBe(401);
    expect((await c.token("/api/v1/overview/")).status).toBe(404);
    const off = await c.raw("/nothing-here");
    expect(off.status).toBe(404);
    expect(off.headers.get("content-type")).toStartWith("text/plain");
  });

  test("a path parameter that is a dot segment names no route: 404 once the caller is admitted", async () => {
    for (const path of ["/api/v1/peers/%2e%2e", "/api/v1/messages/%2E", "/api/v1/peers/%2e%2e/policy"]) {
      const port = Number(new URL(c.base).port);
      const r = await rawExchange({
        port,
        request: requestBytes({
          method: "GET",
          path,
          fields: [
            ["Host", `127.0.0.1:${port}`],
            ["Authorization", `Bearer ${c.isched.apiToken}`],
          ],
        }),
      });
      expect({ path, status: r.status, error: JSON.parse(r.text).error }).toEqual({
        path,
        status: 404,
        error: "no such API route (GET /api/v1/routes lists them)",
      });
    }
  });

  test("HEAD on a read route answers as GET does, without a body", async () => {
    const res = await c.token("/api/v1/overview", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.text()).toBe("");
  });
});
