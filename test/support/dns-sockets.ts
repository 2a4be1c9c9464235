/**
 * A UDP socket and a TCP server on the same free loopback port, for DNS servers scripted in tests
 * (DNS answers over both, RFC 7766). The port is taken for TCP first, where the kernel knows which
 * ports are held in TIME_WAIT by earlier connections, then for UDP; a port taken since is skipped.
 * Taking a UDP port first and then listening on it over TCP fails with EADDRINUSE when a test run
 * has left that port in TIME_WAIT.
 */
import * as dgram from "node:dgram";
import * as net from "node:net";

export interface DnsSockets {
  readonly port: number;
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
  close(): Promise<void>;
}

export async function bindDnsSockets(onTcp: (socket: net.Socket) => void): Promise<DnsSockets> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = net.createServer(onTcp);
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, "127.0.0.1", resolve);
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = dgram.createSocket("udp4");
    const bound = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    if (bound) {
      return {
        port,
        udp,
        tcp,
        async close() {
          udp.close();
          await new Promise<void>((resolve) => tcp.close(() => resolve()));
        },
      };
    }
    udp.close();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
  throw new Error("no loopback port free for both UDP and TCP after 20 tries");
}

/**
 * A DNS server on bindDnsSockets() whose every answer comes from `answer` (undefined: no answer),
 * over UDP and over TCP with its two-byte length prefix (RFC 1035 §4.2.2).
 */
export function serveDnsAnswers(answer: (query: Buffer) => Buffer | undefined): Promise<DnsSockets> {
  return bindDnsSockets((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const reply = answer(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        if (reply === undefined) continue;
        const head = Buffer.alloc(2);
        head.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([head, reply]));
      }
    });
  }).then((sockets) => {
    sockets.udp.on("message", (query, from) => {
      const reply = answer(query);
      if (reply !== undefined) sockets.udp.send(reply, from.port, from.address);
    });
    return sockets;
  });
}
