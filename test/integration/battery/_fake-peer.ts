/**
 * A fake iSchedule receiver over real TLS (node:tls) that answers whatever a test case says, byte for
 * byte: well-formed HTTP with hostile XML, malformed HTTP, a head and then silence, a body that never
 * ends, a reset. It reads HTTP/1.1 requests (Content-Length bodies, as isched sends them) and hands
 * each to `answer`; nothing it sends is checked, so a case can be as wrong as it likes.
 */
import tls from "node:tls";
import type { IssuedCert } from "../../support/pki.ts";

export interface PeerRequest {
  readonly method: string;
  /** The request target: `/ischedule`, `/caps/3?action=capabilities`. */
  readonly target: string;
  readonly headers: Headers;
  readonly body: Buffer;
}

export type PeerAnswer =
  /** A well-formed response: status line, these fields, Content-Length, Connection: close. */
  | { status: number; reason?: string; headers?: [string, string][]; body?: string | Uint8Array }
  /** These exact bytes, then the connection is closed (or left open, with `hang`). */
  | { raw: string | Uint8Array; hang?: boolean }
  /** These bytes, then `chunk` again and again until the client goes away. */
  | { raw: string | Uint8Array; endless: Uint8Array }
  /** These bytes, then one more byte every `gapMs` until the client goes away. */
  | { raw: string | Uint8Array; dripMs: number }
  /** No answer at all, the connection left open. */
  | { silent: true }
  /** The connection reset at once. */
  | { reset: true };

export interface FakePeer {
  readonly port: number;
  /** Requests read so far. */
  requests(): number;
  stop(): Promise<void>;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  503: "Unavailable",
};

export async function startFakePeer(o: {
  cert: IssuedCert;
  /** `port` is the fake peer's own, for Location fields. */
  answer: (request: PeerRequest, port: number) => PeerAnswer;
}): Promise<FakePeer> {
  const sockets = new Set<tls.TLSSocket>();
  let count = 0;
  let port = 0;
  const server = tls.createServer({ cert: o.cert.certPem, key: o.cert.keyPem }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffer = Buffer.alloc(0);
    let answered = false;
    socket.on("data", (chunk: Buffer) => {
      if (answered) return;
      buffer = Buffer.concat([buffer, chunk]);
      const request = readRequest(buffer);
      if (!request) return;
      answered = true;
      count++;
      let answer: PeerAnswer;
      try {
        answer = o.answer(request, port);
      } catch (e) {
        answer = { status: 599, body: `the fake peer's case threw: ${(e as Error).message}` };
      }
      respond(socket, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the fake peer has no port");
  port = address.port;
  return {
    port,
    requests: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function readRequest(data: Buffer): PeerRequest | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const lines = data.subarray(0, end).toString("latin1").split("\r\n");
  const [method = "", target = ""] = lines[0]!.split(" ");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length") ?? "0");
  if (data.length < end + 4 + length) return undefined;
  return { method, target, headers, body: data.subarray(end + 4, end + 4 + length) };
}

function respond(socket: tls.TLSSocket, a: PeerAnswer): void {
  if ("reset" in a) {
    socket.resetAndDestroy?.() ?? socket.destroy();
    return;
  }
  if ("silent" in a) return;
  if ("status" in a) {
    const body = Buffer.from(a.body ?? "");
    const fields = [...(a.headers ?? []), ["Content-Length", String(body.length)], ["Connection", "close"]];
    const head = `HTTP/1.1 ${a.status} ${a.reason ?? REASONS[a.status] ?? "Status"}\r\n${fields
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join("")}\r\n`;
    socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
    return;
  }
  const raw = typeof a.raw === "string" ? Buffer.from(a.raw, "latin1") : Buffer.from(a.raw);
  if ("endless" in a) {
    const more = (): void => {
      while (!socket.destroyed && socket.write(a.endless)) {
        // Until the kernel buffer is full; then wait for it to drain.
      }
    };
    socket.on("drain", more);
    socket.write(raw);
    more();
    return;
  }
  if ("dripMs" in a) {
    socket.write(raw);
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer);
      else socket.write("x");
    }, a.dripMs);
    socket.on("close", () => clearInterval(timer));
    return;
  }
  if (a.hang) socket.write(raw);
  else socket.end(raw);
}
