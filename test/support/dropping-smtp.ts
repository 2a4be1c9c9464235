/**
 * A scripted SMTP server (RFC 5321) on raw sockets, for what smtp-server.ts cannot do: drop the
 * connection in the middle of DATA, after part of the message has arrived and before the final
 * reply. The first `dropFirst` connections that reach DATA are dropped so; later ones are served
 * properly (250 after the end of data) and their messages recorded.
 */
import * as net from "node:net";

export interface DroppingSmtp {
  readonly port: number;
  /** Messages accepted (after the drops), as received (dot-stuffing left as is). */
  readonly messages: { rcptTo: string[]; data: string }[];
  /** Connections dropped during DATA so far, with the bytes of the message received by then. */
  readonly drops: number[];
  stop(): Promise<void>;
}

export async function startDroppingSmtp(o: { dropFirst: number }): Promise<DroppingSmtp> {
  const messages: { rcptTo: string[]; data: string }[] = [];
  const drops: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffered = "";
    let inData = false;
    let data = "";
    let rcptTo: string[] = [];
    const reply = (line: string) => socket.write(`${line}\r\n`);
    reply("220 dropping.test ESMTP scripted");
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("latin1");
      if (inData) {
        data += buffered;
        buffered = "";
        if (drops.length < o.dropFirst) {
          // Part of the message is here: go away without a word.
          drops.push(data.length);
          socket.destroy();
          return;
        }
        const end = data.indexOf("\r\n.\r\n");
        if (end === -1) return;
        messages.push({ rcptTo, data: data.slice(0, end + 2) });
        buffered = data.slice(end + 5);
        [inData, data, rcptTo] = [false, "", []];
        reply(`250 2.0.0 queued as ${messages.length}`);
      }
      for (let eol = buffered.indexOf("\r\n"); eol !== -1 && !inData; eol = buffered.indexOf("\r\n")) {
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") reply("250 dropping.test");
        else if (verb === "MAIL" || verb === "RSET" || verb === "NOOP") reply("250 2.0.0 OK");
        else if (verb === "RCPT") {
          rcptTo.push(/<([^>]*)>/.exec(line)?.[1] ?? "");
          reply("250 2.1.5 OK");
        } else if (verb === "DATA") {
          inData = true;
          reply("354 go ahead");
        } else if (verb === "QUIT") {
          reply("221 2.0.0 bye");
          socket.end();
        } else reply("502 5.5.1 not implemented");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    messages,
    drops,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
