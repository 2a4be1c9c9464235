/**
 * A TCP front on the endpoint's public port that looks at each connection's ClientHello and passes
 * the bytes, unchanged and still encrypted, to a TLS server on a loopback port:
 * - to the TLS-ALPN-01 responder when the client offers ALPN `acme-tls/1` for a name under
 *   validation (RFC 8737 §3);
 * - otherwise to the current backend, the HTTPS server with the current certificate.
 *
 * Why: Bun.serve can neither change its certificate while it runs (`reload()` ignores `tls`) nor
 * pick a certificate by ALPN. With the front, a new certificate is a new backend: new connections go
 * to it at once, connections already open stay with the old one until they end, and the front's own
 * listening socket is never closed, so no connection is refused or reset during the swap (closing a
 * listening socket resets the connections still in its accept queue). `switchBackend()` resolves
 * when the old backend has no connection left.
 *
 * The backend sees every connection coming from 127.0.0.1; `clientAddress()` maps the port it sees
 * back to the real client, so address-based trust keeps working.
 *
 * Costs (scripts/bench/tls-front.ts, docs/acme.md): about +11 µs of CPU per request on a kept-alive
 * connection and +75-120 µs per new TLS connection, against about 1 ms for an iSchedule request.
 */
import type { Socket, TCPSocketListener } from "bun";
import { readClientHello } from "./client-hello.ts";
import { ACME_TLS_ALPN } from "./tls-alpn.ts";

export interface ClientAddress {
  address: string;
  port: number;
}

export interface TlsFrontOptions {
  host: string;
  port: number;
  /** The loopback port of the TLS server that takes ordinary connections. */
  backendPort: number;
  /** Where `acme-tls/1` connections for `name` go, if a challenge for it is waiting. */
  alpnPortFor?: (name: string) => number | undefined;
  /** A connection that has not sent its whole ClientHello in this time is closed. Default 10 s. */
  helloTimeoutS?: number;
}

export interface TlsFront {
  readonly port: number;
  /** Sends new connections to `backendPort`; resolves when none is left on the previous backend. */
  switchBackend(backendPort: number): Promise<void>;
  /** Connections open through the front to `backendPort`. */
  connections(backendPort: number): number;
  /** The real client of a backend connection, by the source port the backend sees. */
  clientAddress(sourcePort: number): ClientAddress | undefined;
  stop(): void;
}

/** Above this many bytes waiting for a slow receiver, reading from the sender pauses. */
const HIGH_WATER_BYTES = 256 * 1024;

interface Backend {
  port: number;
  open: Set<Link>;
  drained?: () => void;
}

/** One client connection and its upstream connection. */
interface Link {
  client: Socket<Link>;
  upstream?: Socket<Link>;
  backend?: Backend;
  hello: Uint8Array[];
  helloBytes: number;
  decided: boolean;
  toUpstream: Pipe;
  toClient: Pipe;
  closed: boolean;
}

/** Bytes waiting for a socket that could not take them yet. */
interface Pipe {
  queue: Uint8Array[];
  bytes: number;
  endWhenFlushed: boolean;
}

export function startTlsFront(o: TlsFrontOptions): TlsFront {
  let current: Backend = { port: o.backendPort, open: new Set() };
  const backends = new Map<number, Backend>([[current.port, current]]);
  const clients = new Map<number, ClientAddress>();
  const helloTimeoutS = o.helloTimeoutS ?? 10;

  const close = (link: Link): void => {
    if (link.closed) return;
    link.closed = true;
    endAfterFlush(link.client, link.toClient);
    if (link.upstream) {
      clients.delete(link.upstream.localPort);
      endAfterFlush(link.upstream, link.toUpstream);
    }
    const b = link.backend;
    if (b) {
      b.open.delete(link);
      if (b.open.size === 0 && b !== current) {
        backends.delete(b.port);
        b.drained?.();
      }
    }
  };

  const connect = (link: Link, port: number, backend: Backend | undefined): void => {
    link.decided = true;
    link.client.timeout(0);
    if (backend) {
      link.backend = backend;
      backend.open.add(link);
    }
    const first = concat(link.hello, link.helloBytes);
    link.hello = [];
    send(link.upstream, link.toUpstream, first, link.client);
    Bun.connect<Link>({
      hostname: "127.0.0.1",
      port,
      data: link,
      socket: {
        open(up) {
          if (link.closed) {
            up.end();
            return;
          }
          link.upstream = up;
          clients.set(up.localPort, { address: link.client.remoteAddress, port: link.client.remotePort });
          flush(up, link.toUpstream, link.client);
        },
        data(_up, chunk) {
          send(link.client, link.toClient, chunk, link.upstream);
        },
        drain(up) {
          flush(up, link.toUpstream, link.client);
        },
        close: () => close(link),
        error: () => close(link),
        connectError: () => close(link),
      },
    }).catch(() => close(link));
  };

  const listener: TCPSocketListener<Link> = Bun.listen<Link>({
    hostname: o.host,
    port: o.port,
    socket: {
      open(client) {
        client.data = {
          client,
          hello: [],
          helloBytes: 0,
          decided: false,
          toUpstream: { queue: [], bytes: 0, endWhenFlushed: false },
          toClient: { queue: [], bytes: 0, endWhenFlushed: false },
          closed: false,
        };
        client.timeout(helloTimeoutS);
      },
      data(client, chunk) {
        const link = client.data;
        if (link.decided) {
          send(link.upstream, link.toUpstream, chunk, client);
          return;
        }
        link.hello.push(new Uint8Array(chunk));
        link.helloBytes += chunk.length;
        const hello = readClientHello(concat(link.hello, link.helloBytes));
        if (hello.kind === "incomplete") return;
        const alpnPort =
          hello.kind === "hello" && hello.serverName && hello.alpn.includes(ACME_TLS_ALPN)
            ? o.alpnPortFor?.(hello.serverName)
            : undefined;
        if (alpnPort !== undefined) connect(link, alpnPort, undefined);
        else connect(link, current.port, current);
      },
      drain(client) {
        flush(client, client.data.toClient, client.data.upstream);
      },
      timeout: (client) => close(client.data),
      close: (client) => close(client.data),
      error: (client) => close(client.data),
    },
  });

  return {
    port: listener.port,
    switchBackend(backendPort) {
      const old = current;
      if (old.port === backendPort) return Promise.resolve();
      current = backends.get(backendPort) ?? { port: backendPort, open: new Set() };
      backends.set(backendPort, current);
      if (old.open.size === 0) {
        backends.delete(old.port);
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        old.drained = resolve;
      });
    },
    connections: (backendPort) => backends.get(backendPort)?.open.size ?? 0,
    clientAddress: (sourcePort) => clients.get(sourcePort),
    stop() {
      listener.stop(true);
      for (const b of backends.values()) for (const link of [...b.open]) close(link);
    },
  };
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/**
 * Writes `chunk` to `to`, or queues it while `to` is not connected yet or is full; a queue over
 * HIGH_WATER_BYTES pauses reading from `from` until it drains.
 */
function send(
  to: Socket<Link> | undefined,
  pipe: Pipe,
  chunk: Uint8Array,
  from: Socket<Link> | undefined,
): void {
  let rest = chunk;
  if (to !== undefined && pipe.queue.length === 0) {
    const written = to.write(chunk);
    if (written >= chunk.length) return;
    rest = chunk.subarray(Math.max(0, written));
  }
  pipe.queue.push(new Uint8Array(rest)); // a copy: the caller's buffer may be reused
  pipe.bytes += rest.length;
  if (pipe.bytes > HIGH_WATER_BYTES) from?.pause();
}

function flush(to: Socket<Link>, pipe: Pipe, from: Socket<Link> | undefined): void {
  while (pipe.queue.length > 0) {
    const head = pipe.queue[0]!;
    const written = to.write(head);
    if (written < 0) return;
    if (written < head.length) {
      pipe.queue[0] = head.subarray(written);
      pipe.bytes -= written;
      return;
    }
    pipe.queue.shift();
    pipe.bytes -= head.length;
  }
  from?.resume();
  if (pipe.endWhenFlushed) to.end();
}

function endAfterFlush(s: Socket<Link>, pipe: Pipe): void {
  if (pipe.queue.length === 0) s.end();
  else pipe.endWhenFlushed = true;
}
