/**
 * DNS servers that fail, over UDP and TCP on a free loopback port, for what dnsmasq cannot be made to
 * do for its own zones: one answers every query SERVFAIL (RFC 1035 §4.1.1, RCODE 2: a resolver
 * whose upstream is broken), one takes every query and never answers (a server that hangs). Both
 * note the queries they were asked.
 */
import * as packet from "dns-packet";
import { serveDnsAnswers } from "./dns-sockets.ts";

export interface ScriptedDns {
  readonly server: { host: string; port: number };
  /** The names asked so far, with their types (`_ischedules._tcp.b.test SRV`). */
  readonly asked: string[];
  stop(): Promise<void>;
}

const RCODE_SERVFAIL = 2;

async function scripted(reply: (query: packet.Packet) => Buffer | undefined): Promise<ScriptedDns> {
  const asked: string[] = [];
  const sockets = await serveDnsAnswers((bytes) => {
    let query: packet.Packet;
    try {
      query = packet.decode(bytes);
    } catch {
      return undefined;
    }
    for (const q of query.questions ?? []) asked.push(`${q.name} ${q.type}`);
    return reply(query);
  });
  return { server: { host: "127.0.0.1", port: sockets.port }, asked, stop: () => sockets.close() };
}

/** Every answer SERVFAIL, with the question echoed. */
export function startServfailDns(): Promise<ScriptedDns> {
  return scripted((query) =>
    packet.encode({
      id: query.id,
      type: "response",
      flags: (packet.RECURSION_DESIRED & (query.flags ?? 0)) | packet.RECURSION_AVAILABLE | RCODE_SERVFAIL,
      questions: query.questions,
    }),
  );
}

/** No answer, ever. */
export function startSilentDns(): Promise<ScriptedDns> {
  return scripted(() => undefined);
}
