/**
 * The endpoint's listener (`--listen`), on Elysia: `/.well-known/ischedule` and each `--path` for the
 * scheduling exchange, `/.well-known/domainkey/DOMAIN/SELECTOR` for our key records, a plain-text 404
 * for anything else. The endpoint sees each request as Bun received it: Elysia parses nothing
 * (`parse: "none"`) and normalises no header, so DKIM checks the header fields and body bytes the
 * peer signed, and the body is read only by the endpoint's capped reader.
 *
 * The usual methods on the scheduling paths (GET, HEAD, POST, OPTIONS) are routes Bun matches
 * itself. A request that no route takes reaches the not-found hook, which still hands one naming a
 * scheduling path exactly to the endpoint: other methods (answered 405 with Allow), and `--path`
 * values that Elysia's router would read as parameters (`:` or `*`), which are matched as written.
 */
import { Elysia } from "elysia";
import type { PlainRoute } from "../http/plain-route.ts";
import { idleSecondsWhileReading } from "../http/read-body.ts";
import { type ServeAppOptions, serveApp } from "../http/serve-app.ts";
import type { Cidr } from "../net/cidr.ts";
import { clientAddress } from "../net/client-address.ts";
import { type Endpoint, TEXT_HEADERS } from "./endpoint.ts";

export interface EndpointListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Scheduling paths besides /.well-known/ischedule (`--path`). */
  readonly paths: readonly string[];
  readonly trustedProxies: readonly Cidr[];
  /** How long the endpoint waits for a body (it answers 408 after that). */
  readonly bodyTimeoutMs: number;
  readonly endpoint: Endpoint;
  /** GET routes served beside the endpoint's (`/healthz`, `/readyz`), each answering for itself. */
  readonly extraRoutes?: readonly PlainRoute[];
  /** TLS-ALPN-01 challenges answered on the endpoint's port (with `tls`). */
  readonly alpn?: ServeAppOptions["alpn"];
}

export interface EndpointListener {
  readonly port: number;
  /** With TLS: a new certificate for new connections, without dropping any (src/http/serve-app.ts). */
  readonly setCertificate?: (tls: { cert: string; key: string }) => Promise<void>;
  stop(): Promise<void>;
}

/** Elysia's default; long enough for a peer's slow POST between two chunks. */
const IDLE_TIMEOUT_S = 30;

const KEY_PATH = /^\/\.well-known\/domainkey\/([^/]+)\/([^/]+)$/;

/** The path of a request; Bun gives request.url as a bare path when the Host header is empty or garbage. */
const pathOf = (request: Request) => new URL(request.url, "http://host.invalid").pathname;

export function startEndpointListener(o: EndpointListenerOptions): EndpointListener {
  const paths = new Set(["/.well-known/ischedule", ...o.paths]);
  const scheduling = ({ request }: { request: Request }) => {
    // The endpoint times the body itself and answers 408: Bun's idle timeout must not close the
    // connection first (src/http/read-body.ts).
    if (request.method === "POST") app.server?.timeout(request, idleSecondsWhileReading(o.bodyTimeoutMs));
    return o.endpoint.scheduling(
      request,
      clientAddress({
        peer: app.server?.requestIP(request)?.address ?? "",
        headers: request.headers,
        trustedProxies: o.trustedProxies,
      }),
    );
  };
  const notFound = () => new Response("Not found.\n", { status: 404, headers: TEXT_HEADERS });

  const app = new Elysia({ strictPath: true }).onError(({ code, request }) => {
    if (code === "NOT_FOUND") return paths.has(pathOf(request)) ? scheduling({ request }) : notFound();
    // The endpoint answers its own failures; anything else is isched's fault, said without details.
    return new Response("The server could not process the request.\n", {
      status: 500,
      headers: TEXT_HEADERS,
    });
  });
  for (const r of o.extraRoutes ?? []) {
    if (!paths.has(r.path)) app.get(r.path, ({ request }) => r.handle(request), { parse: "none" });
  }
  for (const path of paths) {
    if (/[:*]/.test(path)) continue;
    app
      .get(path, scheduling, { parse: "none" })
      .post(path, scheduling, { parse: "none" })
      .options(path, scheduling, { parse: "none" });
  }
  // The two segments as sent: the endpoint decodes them itself, and answers a malformed
  // percent-escape with 400 where the router would have put U+FFFD in its place. Bun matches the
  // path as sent but normalises request.url: a dot segment (%2e%2e) leaves no key path there.
  app.get(
    "/.well-known/domainkey/:domain/:selector",
    ({ request }) => {
      const key = KEY_PATH.exec(pathOf(request));
      return key ? o.endpoint.domainKey(key[1]!, key[2]!) : notFound();
    },
    { parse: "none" },
  );
  const served = serveApp(app, {
    host: o.host,
    port: o.port,
    tls: o.tls,
    idleTimeoutS: IDLE_TIMEOUT_S,
    alpn: o.alpn,
  });
  return { port: served.port, setCertificate: served.setCertificate, stop: () => served.stop() };
}
