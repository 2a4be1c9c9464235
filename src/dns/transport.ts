/**
 * One DNS exchange with one server: the query over UDP, repeated over TCP when the UDP response is
 * truncated (RFC 1035 section 4.2). Never throws: network trouble comes back as an outcome.
 */
import { randomInt } from "node:crypto";
import * as dgram from "node:dgram";
import * as net from "node:net";
import * as packet from "dns-packet";
import type { HostPort } from "../net/host-port.ts";
import { normalizeDomain } from "./names.ts";

export interface Query {
  readonly name: string;
  readonly type: packet.RecordType;
}

export type Outcome =
  | { readonly kind: "response"; readonly response: packet.DecodedPacket; readonly rcode: number }
  | { readonly kind: "timeout" }
  | { readonly kind: "failure"; readonly message: string };

const RCODE_FORMERR = 1;
const RCODE_NOTIMP = 4;

/** `127.0.0.1:53`, `[::1]:53`. */
export function serverText(server: HostPort): string {
  return net.isIPv6(server.host.replace(/%.*$/, ""))
    ? `[${server.host}]:${server.port}`
    : `${server.host}:${server.port}`;
}

/**
 * Asks `server` once with a fresh random ID and the RD flag. UDP and (after a truncated UDP
 * response) TCP each get `timeoutMs`. Packets that are not a response to this query are ignored,
 * as RFC 5452 section 9.1 asks, so a spoofed or late answer cannot end the wait.
 */
export async function exchange(server: HostPort, query: Query, timeoutMs: number): Promise<Outcome> {
  const id = randomInt(0, 0x10000);
  let wire: Buffer;
  try {
    wire = packet.encode({
      type: "query",
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ name: query.name, type: query.type, class: "IN" }],
    });
  } catch (e) {
    return { kind: "failure", message: `cannot encode a query for ${query.name}: ${errorText(e)}` };
  }
  const accept = (raw: Buffer): Outcome | undefined => acceptResponse(raw, id, query);
  const udp = await udpExchange(server, wire, accept, timeoutMs);
  if (udp.kind !== "response" || !udp.response.flag_tc) return udp;
  return tcpExchange(server, wire, accept, timeoutMs);
}

/** The outcome for `raw` when it answers the query with `id`; undefined for anything else. */
function acceptResponse(raw: Buffer, id: number, query: Query): Outcome | undefined {
  let response: packet.DecodedPacket;
  try {
    response = packet.decode(raw);
  } catch {
    return undefined;
  }
  if (response.type !== "response" || response.id !== id) return undefined;
  // dns-packet does not type the RCODE; it is the low 4 bits of the fourth header byte.
  const rcode = raw[3]! & 0x0f;
  const questions = response.questions ?? [];
  // A server that could not parse the query may answer FORMERR or NOTIMP without a question.
  if (questions.length === 0 && (rcode === RCODE_FORMERR || rcode === RCODE_NOTIMP)) {
    return { kind: "response", response, rcode };
  }
  const q = questions[0];
  if (questions.length !== 1 || q === undefined) return undefined;
  if (q.type !== query.type || (q.class ?? "IN") !== "IN") return undefined;
  if (normalizeDomain(q.name) !== normalizeDomain(query.name)) return undefined;
  return { kind: "response", response, rcode };
}

function udpExchange(
  server: HostPort,
  wire: Buffer,
  accept: (raw: Buffer) => Outcome | undefined,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let socket: dgram.Socket;
    try {
      socket = dgram.createSocket(net.isIPv6(server.host.replace(/%.*$/, "")) ? "udp6" : "udp4");
    } catch (e) {
      resolve({ kind: "failure", message: `${errorText(e)} (udp to ${serverText(server)})` });
      return;
    }
    let settled = false;
    const settle = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // Already closed: nothing left to release.
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
    // A connected socket only receives datagrams from the server and reports ICMP
    // "port unreachable" as ECONNREFUSED instead of letting the query time out.
    socket.on("error", (e) =>
      settle({ kind: "failure", message: `${errorText(e)} (udp to ${serverText(server)})` }),
    );
    socket.on("message", (raw: Buffer) => {
      const outcome = accept(raw);
      if (outcome !== undefined) settle(outcome);
    });
    try {
      socket.connect(server.port, server.host, () => {
        if (settled) return;
        socket.send(wire, (e) => {
          if (e) settle({ kind: "failure", message: `${errorText(e)} (udp to ${serverText(server)})` });
        });
      });
    } catch (e) {
      settle({ kind: "failure", message: `${errorText(e)} (udp to ${serverText(server)})` });
    }
  });
}

function tcpExchange(
  server: HostPort,
  wire: Buffer,
  accept: (raw: Buffer) => Outcome | undefined,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const where = `(tcp to ${serverText(server)})`;
    let settled = false;
    let socket: net.Socket | undefined;
    const settle = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
    try {
      socket = net.connect({ host: server.host, port: server.port });
    } catch (e) {
      settle({ kind: "failure", message: `${errorText(e)} ${where}` });
      return;
    }
    let pending = Buffer.alloc(0);
    socket.on("connect", () => {
      // RFC 1035 section 4.2.2: over TCP each message is preceded by its two-byte length.
      const length = Buffer.alloc(2);
      length.writeUInt16BE(wire.length);
      socket?.write(Buffer.concat([length, wire]));
    });
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const size = pending.readUInt16BE(0);
        if (pending.length < 2 + size) return;
        const outcome = accept(pending.subarray(2, 2 + size));
        pending = pending.subarray(2 + size);
        if (outcome !== undefined) {
          settle(outcome);
          return;
        }
      }
    });
    socket.on("error", (e) => settle({ kind: "failure", message: `${errorText(e)} ${where}` }));
    socket.on("close", () =>
      settle({ kind: "failure", message: `connection closed without a response ${where}` }),
    );
  });
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
