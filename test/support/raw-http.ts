/**
 * A raw HTTP/1.1 client for tests that must send what fetch() will not: a field repeated on its own
 * line, obs-text bytes, a tab inside a value, a chunked body that never ends, a body trickled byte
 * by byte, a source address other than 127.0.0.1. It reads exactly one response (Content-Length,
 * chunked, or until the server closes) and reports how long it took and how much was sent by then.
 */
import * as net from "node:net";

export type RawField = readonly [name: string, value: string];

export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly elapsedMs: number;
  /** Bytes of the request written to the socket when the response was complete. */
  readonly bytesSent: number;
}

export interface RawExchange {
  port: number;
  host?: string;
  /** Connect from this local address (e.g. 127.0.0.2, to be a client the server does not trust). */
  localAddress?: string;
  /** The request bytes written at once (usually the head and a complete body). */
  request: Uint8Array;
  /**
   * Writes more after `request` (a body trickled or streamed); `answered()` turns true as soon as the
   * response has arrived, so a writer can stop. Its errors (the server closed) are ignored.
   */
  stream?: (send: (bytes: Uint8Array) => Promise<void>, answered: () => boolean) => Promise<void>;
  /** Gives up (rejects) when no complete response came in this time. Default 10 s. */
  timeoutMs?: number;
}

/** Header lines as bytes: each character of names and values is one byte (latin1), unchanged. */
export function requestBytes(o: {
  method?: string;
  path: string;
  fields: readonly RawField[];
  body?: Uint8Array | string;
  /** Adds Content-Length for the body unless the fields have one already or this is false. */
  contentLength?: boolean;
}): Buffer {
  const body = typeof o.body === "string" ? Buffer.from(o.body, "utf8") : Buffer.from(o.body ?? []);
  const fields = [...o.fields];
  const hasLength = fields.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n));
  if (o.contentLength !== false && !hasLength && (body.length > 0 || o.method !== "GET")) {
    fields.push(["Content-Length", String(body.length)]);
  }
  const head = `${o.method ?? "POST"} ${o.path} HTTP/1.1\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/** Sends a request on a new connection and reads one response. */
export function rawExchange(o: RawExchange): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ port: o.port, host: o.host ?? "127.0.0.1", localAddress: o.localAddress });
    let received = Buffer.alloc(0);
    let sent = 0;
    let finished = false;
    const finish = (outcome: RawResponse | Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(
      () => finish(new Error(`no complete response within ${o.timeoutMs ?? 10_000} ms`)),
      o.timeoutMs ?? 10_000,
    );
    const send = (bytes: Uint8Array) =>
      new Promise<void>((done, fail) => {
        if (finished || socket.destroyed) return fail(new Error("the connection is closed"));
        sent += bytes.byteLength;
        socket.write(bytes, (e) => (e ? fail(e) : done()));
      });
    const tryParse = (closed: boolean) => {
      const parsed = parseResponse(received, closed);
      if (parsed) finish({ ...parsed, elapsedMs: performance.now() - started, bytesSent: sent });
      else if (closed) finish(new Error(`the server closed the connection after ${received.length} bytes`));
    };
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      tryParse(false);
    });
    socket.on("end", () => tryParse(true));
    socket.on("close", () => tryParse(true));
    socket.on("error", () => tryParse(true));
    socket.on("connect", () => {
      send(o.request)
        .then(() => o.stream?.(send, () => finished))
        .catch(() => {});
    });
  });
}

/** One response from the start of `data`, or undefined when it is not complete yet. */
function parseResponse(
  data: Buffer,
  closed: boolean,
): { status: number; headers: Headers; text: string } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
  if (!Number.isInteger(status)) throw new Error(`not an HTTP response: ${lines[0]}`);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const rest = data.subarray(end + 4);
  if (status === 304 || status === 204 || (status >= 100 && status < 200)) {
    return { status, headers, text: "" };
  }
  const length = headers.get("content-length");
  if (length !== null) {
    if (rest.length < Number(length)) return undefined;
    return { status, headers, text: rest.subarray(0, Number(length)).toString("utf8") };
  }
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    const body = dechunk(rest);
    return body === undefined ? undefined : { status, headers, text: body.toString("utf8") };
  }
  return closed ? { status, headers, text: rest.toString("utf8") } : undefined;
}

function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", pos);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(data.subarray(pos, lineEnd).toString("latin1"), 16);
    if (size === 0) return Buffer.concat(parts);
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
}
