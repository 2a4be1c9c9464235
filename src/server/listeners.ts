/**
 * The listeners of `isched serve`, one function each: the iSchedule endpoint (`--listen`), the
 * console and API (`--console`) and the SMTP intake (`--smtp-listen`). Each turns a failure to bind
 * into a one-line ListenError naming its flag (src/config/ports.ts).
 */
import { ConfigError } from "../config/errors.ts";
import { type ListenAddress, listenError } from "../config/ports.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import { type ConsoleListener, type StartConsoleOptions, startConsole } from "../console/server.ts";
import type { PlainRoute } from "../http/plain-route.ts";
import { DEFAULT_BODY_TIMEOUT_MS } from "../http/read-body.ts";
import type { Endpoint } from "../inbound/endpoint.ts";
import { type EndpointListenerOptions, startEndpointListener } from "../inbound/listener.ts";
import { type MetricsListenerHandle, startMetricsListener } from "../ops/metrics-listener.ts";
import { type SmtpIntake, type SmtpIntakeOptions, startSmtpIntake } from "../smtp-intake/index.ts";

export interface EndpointListener {
  /** `http[s]://HOST:PORT`, with the port the system chose for port 0. */
  readonly url: string;
  readonly port: number;
  /** Until stop() (/readyz). */
  readonly up: () => boolean;
  /** With TLS: a new certificate for new connections, without dropping any. */
  readonly setCertificate?: (tls: { cert: string; key: string }) => Promise<void>;
  stop(): Promise<void>;
}

/**
 * The endpoint: the iSchedule paths and `/.well-known/domainkey/D/S` (src/inbound/listener.ts), and
 * `extraRoutes` (/healthz, /readyz).
 */
export function listenEndpoint(
  config: ServeConfig,
  endpoint: Endpoint,
  extraRoutes: readonly PlainRoute[] = [],
  /** TLS-ALPN-01 challenges (ACME) answered on the endpoint's port. */
  alpn?: EndpointListenerOptions["alpn"],
): EndpointListener {
  const listener = binding({ flag: "--listen", ...config.listen }, () =>
    startEndpointListener({
      ...config.listen,
      tls: config.tls,
      paths: config.paths,
      trustedProxies: config.trustedProxies ?? [],
      bodyTimeoutMs: config.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
      endpoint,
      extraRoutes,
      alpn,
    }),
  );
  let up = true;
  return {
    url: `${config.tls ? "https" : "http"}://${hostForUrl(config.listen.host)}:${listener.port}`,
    port: listener.port,
    up: () => up,
    stop: () => {
      up = false;
      return listener.stop();
    },
    setCertificate: listener.setCertificate,
  };
}

/** The console and its API (src/console/server.ts). */
export function listenConsole(o: StartConsoleOptions): ConsoleListener & { readonly up: () => boolean } {
  const listener = binding({ flag: "--console", ...o.config.console }, () => startConsole(o));
  let up = true;
  return {
    ...listener,
    up: () => up,
    stop: () => {
      up = false;
      return listener.stop();
    },
  };
}

/** `--metrics-listen`, when given: /metrics and the health routes on a listener of their own. */
export function listenMetrics(
  config: ServeConfig,
  routes: readonly PlainRoute[],
): MetricsListenerHandle | undefined {
  const at = config.ops?.metricsListen;
  if (!at) return undefined;
  return binding({ flag: "--metrics-listen", ...at }, () => startMetricsListener({ ...at, routes }));
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
