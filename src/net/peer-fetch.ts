/**
 * The one way isched talks HTTP to a remote peer (DKIM key records, iSchedule capabilities, POSTs).
 * isched resolves the host itself, refuses non-public addresses unless allowed, and connects to the
 * address it checked with the host name as SNI and certificate name, so a second DNS lookup can never
 * redirect the request (DNS rebinding). TLS is always verified; bodies are capped; time is bounded.
 * Redirects are returned, never followed: callers re-check every hop through this function.
 */

import tls from "node:tls";
import { isAllowedPeerAddress, isIpAddress, refusalSentence } from "./address-policy.ts";

/**
 * What peerFetch asks of a resolver: a host's A and AAAA addresses (src/dns/client.ts's resolver,
 * or its address cache). Declared here, in the shape peerFetch reads, so the network layer does
 * not depend on the DNS client.
 */
export interface AddressResolver {
  addresses(
    host: string,
  ): Promise<
    | { readonly status: "ok"; readonly records: readonly PeerAddress[]; readonly ttl?: number }
    | { readonly status: "nxdomain" | "nodata"; readonly ttl?: number }
    | { readonly status: "error"; readonly message: string }
  >;
}

interface PeerAddress {
  readonly address: string;
  readonly family: 4 | 6;
  readonly ttl?: number;
}

export interface PeerFetchOptions {
  resolver: AddressResolver;
  /** --allow-private-peers: also connect to loopback, private, link-local... addresses. */
  allowPrivate: boolean;
  /** PEM CA certificates (--ca-file) trusted in addition to the default store. */
  ca?: string;
  /** Until the response head arrives (connection, TLS handshake and the peer's processing). Default 10000. */
  connectTimeoutMs?: number;
  /** DNS, connection, request and the whole response body. Default 15000. */
  totalTimeoutMs?: number;
  /** Default 1 MiB. */
  maxResponseBytes?: number;
  /** The caller's own deadline: when it aborts, the request stops like at the total timeout. */
  signal?: AbortSignal;
}

export interface PeerRequest {
  method: "GET" | "POST";
  url: string;
  headers?: Record<string, string> | [string, string][];
  body?: Uint8Array | string;
  /**
   * Accept an `http:` URL: only for a peer the operator named with `--peer D=legacy-http`
   * (static-routes.ts). Default false: peers are reached over https (draft §10).
   */
  allowHttp?: boolean;
}

export interface PeerResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** The URL requested (with the host name, not the address). */
  url: string;
  /** The IP address connected to. */
  address: string;
  durationMs: number;
}

export type PeerFetchErrorKind =
  | "bad-url"
  | "dns"
  | "no-address"
  | "refused-address"
  | "connect"
  | "tls"
  | "timeout"
  | "too-large"
  | "protocol";

export class PeerFetchError extends Error {
  override readonly name = "PeerFetchError";
  constructor(
    readonly kind: PeerFetchErrorKind,
    message: string,
    /** True when trying again later may succeed without anyone changing a configuration. */
    readonly temporary: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_TOTAL_TIMEOUT_MS = 15_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

// Bun's `tls.ca` replaces the default store instead of adding to it, so the operator's CAs are
// appended to a copy of it. Bun copies and compares the `ca` value on every fetch (it builds no TLS
// context per request, but it does read all of it), at a cost that grows with its size: 398 KB of
// PEM as 263 strings cost about 140 µs of CPU per request, about as much as a third of the DKIM
// signature. So the store is prepared once per CA text, as one buffer (cheaper for Bun to take than
// an array of strings) holding each root once: the default store can list a root twice (Bun's own
// roots and NODE_EXTRA_CA_CERTS's system bundle overlap). Same certificates, same trust.
const trustStores = new Map<string, Buffer>();
function trustStore(extra: string): Buffer {
  let store = trustStores.get(extra);
  if (!store) {
    if (trustStores.size > 8) trustStores.clear();
    store = Buffer.from([...distinctCertificates(tls.getCACertificates("default")), extra].join("\n"));
    trustStores.set(extra, store);
  }
  return store;
}

/** The PEM certificates, each certificate once (compared by its DER bytes, not its PEM layout). */
function distinctCertificates(pems: readonly string[]): string[] {
  const seen = new Set<string>();
  return pems.filter((pem) => {
    const der = pem.replace(/-----[^-]+-----|\s/g, "");
    if (seen.has(der)) return false;
    seen.add(der);
    return true;
  });
}

export async function peerFetch(req: PeerRequest, o: PeerFetchOptions): Promise<PeerResponse> {
  const started = performance.now();
  const url = parsePeerUrl(req.url, req.allowHttp === true);
  // A trailing dot (SRV targets have one) must not reach SNI, the certificate check or Host.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  const total = new AbortController();
  const totalMs = o.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS;
  const late = new PeerFetchError("timeout", `No complete response from ${host} within ${totalMs}ms`, true);
  const timer = setTimeout(() => total.abort(late), totalMs);
  const stopped = () =>
    total.abort(
      new PeerFetchError("timeout", `The request to ${host} was stopped (its deadline passed)`, true),
    );
  if (o.signal?.aborted) stopped();
  o.signal?.addEventListener("abort", stopped, { once: true });
  try {
    const addresses = await checkedAddresses(host, o, total.signal);
    const failures: string[] = [];
    for (const [i, address] of addresses.entries()) {
      const attempt = await attemptOne(req, url, host, address, o, total.signal);
      if (attempt.ok) return { ...attempt.response, durationMs: performance.now() - started };
      failures.push(`${address}: ${attempt.error.message}`);
      if (!attempt.retryNext || i === addresses.length - 1 || total.signal.aborted) {
        if (failures.length === 1) throw attempt.error;
        const message = `Could not get a response from ${host} (${failures.join("; ")})`;
        throw new PeerFetchError(attempt.error.kind, message, attempt.error.temporary, {
          cause: attempt.error,
        });
      }
    }
    throw new PeerFetchError("no-address", `${host} has no address to connect to`, false);
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener("abort", stopped);
  }
}

function parsePeerUrl(raw: string, allowHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PeerFetchError("bad-url", `"${raw}" is not a URL`, false);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && allowHttp)) {
    throw new PeerFetchError("bad-url", `Refusing ${raw}: peers are reached over https only`, false);
  }
  if (url.username !== "" || url.password !== "") {
    throw new PeerFetchError("bad-url", `Refusing a URL with credentials (host ${url.hostname})`, false);
  }
  return url;
}

/** The addresses policy allows, IPv4 first; throws when there are none. */
async function checkedAddresses(host: string, o: PeerFetchOptions, signal: AbortSignal): Promise<string[]> {
  if (isIpAddress(host)) {
    if (!isAllowedPeerAddress(host, o.allowPrivate)) {
      throw new PeerFetchError("refused-address", refusalSentence(host, [host]), false);
    }
    return [host];
  }
  let answer: Awaited<ReturnType<AddressResolver["addresses"]>>;
  try {
    answer = await abortable(o.resolver.addresses(host), signal);
  } catch (err) {
    if (err instanceof PeerFetchError) throw err;
    throw new PeerFetchError("dns", `Looking up the address of ${host} failed: ${messageOf(err)}`, true, {
      cause: err,
    });
  }
  if (answer.status === "error") {
    throw new PeerFetchError("dns", `Looking up the address of ${host} failed: ${answer.message}`, true);
  }
  if (answer.status !== "ok" || answer.records.length === 0) {
    const why = answer.status === "nxdomain" ? "does not exist" : "has no A or AAAA record";
    throw new PeerFetchError("no-address", `${host} ${why}`, false);
  }
  const sorted = [...answer.records].sort((a, b) => a.family - b.family);
  const all = [...new Set(sorted.map((r) => r.address.replace(/%.*$/, "")))];
  const allowed = all.filter((a) => isAllowedPeerAddress(a, o.allowPrivate));
  if (allowed.length === 0) throw new PeerFetchError("refused-address", refusalSentence(host, all), false);
  return allowed;
}

type Attempt =
  | { ok: true; response: Omit<PeerResponse, "durationMs"> }
  | { ok: false; error: PeerFetchError; retryNext: boolean };

async function attemptOne(
  req: PeerRequest,
  url: URL,
  host: string,
  address: string,
  o: PeerFetchOptions,
  totalSignal: AbortSignal,
): Promise<Attempt> {
  const secure = url.protocol === "https:";
  const target = new URL(url.href);
  target.hostname = address.includes(":") ? `[${address}]` : address;
  target.hash = "";
  const where = `${host}${host === address ? "" : ` at ${address}`}:${url.port || (secure ? 443 : 80)}`;

  const local = new AbortController();
  const onTotalAbort = (): void => local.abort(totalSignal.reason);
  totalSignal.addEventListener("abort", onTotalAbort, { once: true });
  let connected = false;
  const connectMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const connectTimer = setTimeout(() => {
    if (!connected) {
      // Connected or not, the head did not come: say both, since fetch does not tell which it was.
      const why = "the connection, TLS handshake or response head did not come in time";
      local.abort(
        new PeerFetchError("timeout", `No answer from ${where} within ${connectMs}ms (${why})`, true),
      );
    }
  }, connectMs);

  const headers = new Headers(req.headers);
  headers.set("host", `${host.includes(":") ? `[${host}]` : host}${url.port ? `:${url.port}` : ""}`);
  // Compressed bodies could expand past the size cap in one step inside the runtime; ask for none.
  headers.set("accept-encoding", "identity");
  const init: BunFetchRequestInit = {
    method: req.method,
    headers,
    redirect: "manual",
    proxy: false,
    decompress: false,
    signal: local.signal,
  };
  // The DOM typing wants an ArrayBuffer-backed view; Bun sends any Uint8Array as is.
  if (req.body !== undefined) init.body = req.body as string | Uint8Array<ArrayBuffer>;
  if (secure) {
    init.tls = {
      // Verification against `host`: Bun checks the name given here (not the URL's IP, not Host).
      ...(isIpAddress(host) ? {} : { serverName: host }),
      ...(o.ca ? { ca: trustStore(o.ca) } : {}),
      // No checkServerIdentity callback: Bun verifies the name itself, and a callback would stop it
      // from reusing connections (a TLS handshake per request, as costly as the DKIM signature).
      // Bun's pool keeps connections apart by server name and CAs (checked), so a reused connection
      // was verified for this host.
    };
  }
  try {
    const res = await fetch(target, init);
    connected = true;
    const max = o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    const body = await readCapped(res, max, () => {
      const e = new PeerFetchError("too-large", `The response from ${where} exceeds ${max} bytes`, false);
      local.abort(e);
      return e;
    });
    return { ok: true, response: { status: res.status, headers: res.headers, body, url: url.href, address } };
  } catch (err) {
    const reason: unknown = local.signal.aborted ? local.signal.reason : undefined;
    const error =
      err instanceof PeerFetchError ? err : reason instanceof PeerFetchError ? reason : classify(err, where);
    const retryNext = !connected && (error.kind === "connect" || error.kind === "timeout");
    return { ok: false, error, retryNext };
  } finally {
    clearTimeout(connectTimer);
    totalSignal.removeEventListener("abort", onTotalAbort);
  }
}

/** The body, reading no further than `max` bytes; `tooLarge` drops the connection and names the error. */
async function readCapped(res: Response, max: number, tooLarge: () => PeerFetchError): Promise<Uint8Array> {
  if (Number(res.headers.get("content-length") ?? Number.NaN) > max) throw tooLarge();
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

const CONNECT_CODES = new Set([
  ..."ECONNREFUSED ECONNRESET ECONNABORTED EHOSTUNREACH ENETUNREACH EHOSTDOWN ENETDOWN".split(" "),
  ..."ETIMEDOUT EPIPE EADDRNOTAVAIL ConnectionRefused ConnectionClosed".split(" "),
]);

function classify(err: unknown, where: string): PeerFetchError {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  const detail = messageOf(err);
  if (CONNECT_CODES.has(code)) {
    return new PeerFetchError("connect", `Connecting to ${where} failed: ${detail}`, true, { cause: err });
  }
  // EPROTO is Bun's "the TLS handshake failed" (e.g. the port speaks plain HTTP).
  if (code === "EPROTO" || /TLS|SSL|CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/i.test(code)) {
    return new PeerFetchError("tls", `TLS with ${where} failed: ${detail}`, false, { cause: err });
  }
  return new PeerFetchError("protocol", `HTTP exchange with ${where} failed: ${detail}`, true, {
    cause: err,
  });
}

function messageOf(err: unknown): string {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  // Bun appends advice about `verbose: true`; it is noise in an operator's log.
  const text = (err instanceof Error ? err.message : String(err)).replace(
    /\.? ?For more information, pass.*$/s,
    "",
  );
  return code && !text.startsWith(code) ? `${code}: ${text}` : text;
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
