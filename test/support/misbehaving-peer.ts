/**
 * iSchedule receivers that misbehave, over real HTTPS on 127.0.0.1 (a certificate from pki.ts for
 * every host name they answer as), for fault-injection tests of isched as a sender. One server
 * answers the capabilities GET properly for every host, and each host's POST its own way:
 *
 * - `ok`: a schedule-response with 2.0 for each Recipient.
 * - `garbage`: 200 and an XML document cut short, followed by bytes that are no XML at all.
 * - `huge`: 200 and 50 MB of body, chunked (no Content-Length to refuse it by).
 * - `slow-body`: 200 and the head at once, then the body a byte a second, for ever.
 * - `loop`: 307 to its own URL, again and again.
 *
 * The `slow-head` host has a raw TLS server of its own that writes even the status line a byte a
 * second (Bun.serve sends a head at once). Every POST is counted per host, with its time.
 */
import * as tls from "node:tls";
import { EVENT_AND_TODO_METHODS } from "../../src/delivery/target.ts";
import { buildCapabilities } from "../../src/inbound/capabilities.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { capabilitiesXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import type { IssuedCert } from "./pki.ts";

export type Misbehaviour = "ok" | "garbage" | "huge" | "slow-body" | "loop";

export interface MisbehavingPeers {
  /** The port of the HTTPS server for every host of `hosts`. */
  readonly port: number;
  /** The port of the slow-head TLS server. */
  readonly slowHeadPort: number;
  /** POSTs received, by host name (slow-head included), with their arrival times. */
  posts(host: string): number[];
  stop(): Promise<void>;
}

export const HUGE_BYTES = 50 * 1024 * 1024;

const CAPABILITIES = capabilitiesXml(
  buildCapabilities(
    {
      targets: [EVENT_AND_TODO_METHODS],
      limits: DEFAULT_LIMITS,
      administrator: "mailto:postmaster@peer.test",
      inlineAttachments: false,
    },
    1,
  ),
);

const XML = { "Content-Type": "application/xml; charset=utf-8", "iSchedule-Version": "1.0" };

export function startMisbehavingPeers(o: {
  /** Host name -> what its POST answer does. */
  hosts: Record<string, Misbehaviour>;
  slowHeadHost: string;
  cert: IssuedCert;
}): MisbehavingPeers {
  const posts = new Map<string, number[]>();
  const note = (host: string) => posts.set(host, [...(posts.get(host) ?? []), Date.now()]);
  const timers = new Set<ReturnType<typeof setInterval>>();

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: o.cert.certPem, key: o.cert.keyPem },
    async fetch(request) {
      const url = new URL(request.url);
      const host = (request.headers.get("host") ?? "").replace(/:\d+$/, "");
      if (request.method === "GET") return new Response(CAPABILITIES, { headers: XML });
      await request.arrayBuffer();
      note(host);
      switch (o.hosts[host]) {
        case "ok": {
          const recipients = (request.headers.get("recipient") ?? "").split(",").map((r) => r.trim());
          const items = recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" }));
          return new Response(scheduleResponseXml(items), { headers: XML });
        }
        case "garbage":
          return new Response(
            `<?xml version="1.0" encoding="utf-8"?>\n<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule"><response><recipient>mai\u0000\u0001<<&&]]>>\uFFFF garbage`,
            { headers: XML },
          );
        case "huge":
          return new Response(hugeBody(), { headers: XML });
        case "slow-body":
          return new Response(slowBody(timers), { headers: XML });
        case "loop":
          return new Response(null, { status: 307, headers: { Location: url.href, ...XML } });
        default:
          return new Response("unknown host", { status: 404 });
      }
    },
  });

  const sockets = new Set<tls.TLSSocket>();
  const slowHead = tls.createServer({ cert: o.cert.certPem, key: o.cert.keyPem }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let seen = "";
    socket.on("data", (chunk: Buffer) => {
      const before = seen.length;
      seen += chunk.toString("latin1");
      if (before === 0 && seen.startsWith("POST")) note(o.slowHeadHost);
      if (seen.startsWith("GET") && seen.includes("\r\n\r\n")) {
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\niSchedule-Version: 1.0\r\nContent-Length: ${Buffer.byteLength(CAPABILITIES)}\r\nConnection: close\r\n\r\n${CAPABILITIES}`,
        );
        return;
      }
      if (before === 0 && seen.startsWith("POST")) {
        const head = Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n");
        let at = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || at >= head.length) {
            clearInterval(timer);
            timers.delete(timer);
            return;
          }
          socket.write(head.subarray(at, ++at));
        }, 1000);
        timers.add(timer);
      }
    });
  });
  slowHead.listen(0, "127.0.0.1");

  return {
    port: server.port!,
    get slowHeadPort() {
      return (slowHead.address() as { port: number }).port;
    },
    posts: (host) => posts.get(host) ?? [],
    async stop() {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => slowHead.close(() => resolve()));
      await server.stop(true);
    },
  };
}

/** 50 MB of XML-looking text, in 64 KB chunks, as fast as the client reads. */
function hugeBody(): ReadableStream<Uint8Array> {
  const chunk = new TextEncoder().encode("<x>".repeat(65_536 / 3 + 1).slice(0, 65_536));
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= HUGE_BYTES) {
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

/** One byte a second until the client goes away. */
function slowBody(timers: Set<ReturnType<typeof setInterval>>): ReadableStream<Uint8Array> {
  let timer: ReturnType<typeof setInterval> | undefined;
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("<"));
      timer = setInterval(() => {
        try {
          controller.enqueue(new TextEncoder().encode("x"));
        } catch {
          clearInterval(timer);
        }
      }, 1000);
      timers.add(timer);
    },
    cancel() {
      clearInterval(timer);
      if (timer) timers.delete(timer);
    },
  });
}
