/**
 * A closed-loop HTTP load generator for tests that need a sustained stream of requests: a fixed
 * number of keep-alive connections on raw sockets, each sending its next request as soon as the last
 * one is answered. It reads only the status line and Content-Length of each answer, so it costs far
 * less CPU than the server it loads (the machine may have only two cores).
 */
import * as net from "node:net";

export interface LoadOptions {
  port: number;
  host?: string;
  connections: number;
  /** The next request's bytes (called once per request, so each may differ), or undefined to stop. */
  next: () => Uint8Array | undefined;
  /** Stops sending new requests when this turns true (answers still in flight are awaited). */
  stop: () => boolean;
}

export interface LoadResult {
  /** Answers by HTTP status. */
  statuses: Record<number, number>;
  elapsedMs: number;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const statuses: Record<number, number> = {};
  const started = performance.now();
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ port: o.port, host: o.host ?? "127.0.0.1" });
      socket.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      const send = () => {
        const request = o.stop() ? undefined : o.next();
        if (!request) {
          socket.end();
          resolve();
          return;
        }
        socket.write(request);
      };
      socket.on("connect", send);
      socket.on("data", (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const end = buffer.indexOf("\r\n\r\n");
          if (end === -1) return;
          const head = buffer.subarray(0, end).toString("latin1");
          const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? "0");
          if (buffer.length < end + 4 + length) return;
          const status = Number(head.slice(9, 12));
          statuses[status] = (statuses[status] ?? 0) + 1;
          buffer = buffer.subarray(end + 4 + length);
          send();
        }
      });
      socket.on("error", reject);
    });
  await Promise.all(Array.from({ length: o.connections }, one));
  return { statuses, elapsedMs: performance.now() - started };
}
