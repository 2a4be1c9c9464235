/**
 * The listeners of `isched serve`, one function each: the iSchedule endpoint (`--listen`), the
 * console and API (`--console`) and the SMTP intake (`--smtp-listen`). Each turns a failure to bind
 * into a one-line ListenError naming its flag (src/config/ports.ts).
 */
import { Elysia } from "elysia";
import { ConfigError } from "../config/errors.ts";
import { type ListenAddress, listenError } from "../config/ports.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import { type ConsoleListener, type StartConsoleOptions, startConsole } from "../console/server.ts";
import { DEFAULT_BODY_TIMEOUT_MS, idleSecondsWhileReading, UNCAPPED_AT_LISTENER } from "../http/read-body.ts";
import { type Endpoint, TEXT_HEADERS } from "../inbound/endpoint.ts";
import { clientAddress } from "../net/client-address.ts";
import { type SmtpIntake, type SmtpIntakeOptions, startSmtpIntake } from "../smtp-intake/index.ts";

export interface EndpointListener {
  /** `http[s]://HOST:PORT`, with the port the system chose for port 0. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The endpoint: the iSchedule paths and `/.well-known/domainkey/D/S`; everything else is 404. */
export function listenEndpoint(config: ServeConfig, endpoint: Endpoint): EndpointListener {
  const ischedulePaths = new Set(["/.well-known/ischedule", ...config.paths]);
  const trustedProxies = config.trustedProxies ?? [];
  const notFound = () => new Response("Not found.\n", { status: 404, headers: TEXT_HEADERS });
  // Three kinds of path, matched by hand: the endpoint must see the raw, unparsed request.
  const app = new Elysia().all(
    "*",
    ({ request, server }) => {
      // request.url is a bare path when the Host header is empty or garbage (Bun); Host is not used here.
      const path = new URL(request.url, "http://host.invalid").pathname;
      if (ischedulePaths.has(path)) {
        // The endpoint times the body itself and answers 408: Elysia's 30 s idle timeout must not
        // close the connection first (src/http/read-body.ts).
        if (request.method === "POST") {
          server?.timeout(request, idleSecondsWhileReading(config.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS));
        }
        const peer = server?.requestIP(request)?.address ?? "";
        return endpoint.scheduling(
          request,
          clientAddress({ peer, headers: request.headers, trustedProxies }),
        );
      }
      const key = /^\/\.well-known\/domainkey\/([^/]+)\/([^/]+)$/.exec(path);
      if (key && (request.method === "GET" || request.method === "HEAD")) {
        return endpoint.domainKey(key[1]!, key[2]!);
      }
      return notFound();
    },
    { parse: "none" },
  );
  const listener = binding({ flag: "--listen", ...config.listen }, () =>
    app.listen({
      hostname: config.listen.host,
      port: config.listen.port,
      tls: config.tls ? { cert: config.tls.cert, key: config.tls.key } : undefined,
      // The endpoint's reader refuses bodies over the limit with the iSchedule error (read-body.ts).
      maxRequestBodySize: UNCAPPED_AT_LISTENER,
      // Elysia's default is true; never share a port with another process (src/config/ports.ts).
      reusePort: false,
    }),
  );
  const port = listener.server!.port!;
  return {
    url: `${config.tls ? "https" : "http"}://${hostForUrl(config.listen.host)}:${port}`,
    port,
    stop: async () => {
      await listener.stop();
    },
  };
}

/** The console and its API (src/console/server.ts). */
export function listenConsole(o: StartConsoleOptions): ConsoleListener {
  return binding({ flag: "--console", ...o.config.console }, () => startConsole(o));
}

/** The SMTP intake, when `--smtp-listen` is given; a setting it cannot start with is a ConfigError. */
export async function listenSmtp(
  config: ServeConfig,
  o: Omit<SmtpIntakeOptions, "listen" | "allow" | "authFile" | "tls" | "maxSizeBytes" | "relay">,
): Promise<(SmtpIntake & { readonly url: string }) | undefined> {
  const smtp = config.smtpIntake;
  if (!smtp) return undefined;
  const intake = await startSmtpIntake({
    ...o,
    listen: smtp.listen,
    allow: smtp.allow,
    authFile: smtp.authFile,
    tls: config.tls ? { cert: config.tls.cert, key: config.tls.key } : undefined,
    maxSizeBytes: smtp.maxSizeBytes,
    relay: smtp.relay ? { url: smtp.relay, ca: config.ca } : undefined,
  }).catch((e: Error) => {
    throw new ConfigError(e.message);
  });
  return { ...intake, url: `smtp://${hostForUrl(smtp.listen.host)}:${intake.port}` };
}

/** Runs `start` (which binds `address`), turning a failure to bind into a one-line ListenError. */
function binding<T>(address: ListenAddress, start: () => T): T {
  try {
    return start();
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException)?.code === "string") throw listenError(address, e);
    throw e;
  }
}

export function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
