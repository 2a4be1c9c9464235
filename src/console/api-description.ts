/**
 * The API described from the route table itself, so that it cannot drift from what is served:
 * GET /api/v1/routes (each route's method, path, access level, summary, and the JSON Schemas of its
 * body, query and parameters) and GET /api/v1/openapi.json (the same as an OpenAPI 3.1 document,
 * whose schema dialect is the JSON Schema the routes' schemas already are).
 */
import type { TSchema } from "elysia";
import { VERSION } from "../version.ts";
import { API_PREFIX, type Route } from "./http.ts";

/** A schema as plain JSON Schema: TypeBox's symbol keys dropped, and the console's `error` messages. */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema, (key, value) => (key === "error" ? undefined : value)));
}

export function routeList(routes: readonly Route[]) {
  return routes.map((r) => ({
    method: r.method,
    path: `${API_PREFIX}${r.path}`,
    access: r.access,
    summary: r.summary,
    ...(r.body ? { body: plain(r.body.schema) } : {}),
    ...(r.query ? { query: plain(r.query) } : {}),
    ...(r.params ? { params: plain(r.params) } : {}),
  }));
}

/** `:name` segments as OpenAPI writes them: `{name}`. */
const openApiPath = (path: string) => `${API_PREFIX}${path.replace(/:([a-zA-Z]+)/g, "{$1}")}`;

function parameters(r: Route): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const params = r.params ? plain(r.params) : undefined;
  for (const m of r.path.matchAll(/:([a-zA-Z]+)/g)) {
    const schema = (params?.properties as Record<string, unknown> | undefined)?.[m[1]!] ?? { type: "string" };
    out.push({ name: m[1], in: "path", required: true, schema });
  }
  if (r.query) {
    const q = plain(r.query);
    const required = new Set((q.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((q.properties as Record<string, unknown>) ?? {}))
      out.push({ name, in: "query", required: required.has(name), schema });
  }
  return out;
}

export function openApiDocument(routes: readonly Route[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const operation: Record<string, unknown> = {
      summary: r.summary,
      "x-access": r.access,
      security: r.access === "public" ? [] : [{ token: [] }, { session: [] }],
      parameters: parameters(r),
      responses: { default: { description: "JSON; an error is { error: string }" } },
    };
    if (r.body) {
      const content: Record<string, unknown> = {};
      for (const type of r.body.types ?? ["application/json"])
        content[type] =
          type === "application/json" ? { schema: plain(r.body.schema) } : { schema: { type: "string" } };
      operation.requestBody = { required: true, content };
    }
    const path = openApiPath(r.path);
    paths[path] = { ...paths[path], [r.method.toLowerCase()]: operation };
  }
  return {
    openapi: "3.1.0",
    info: { title: "isched console API", version: VERSION },
    components: {
      securitySchemes: {
        token: { type: "http", scheme: "bearer", description: "the API token (DATA/api-token)" },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "isched_session",
          description:
            "a signed-in session (__Host-isched_session under TLS); changes also need its X-CSRF-Token",
        },
      },
    },
    paths,
  };
}
