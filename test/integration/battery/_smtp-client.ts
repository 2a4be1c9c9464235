/**
 * A raw SMTP client for the battery: one connection, commands written as bytes, replies read whole
 * (multi-line replies joined), so a case can send what no mail library would (a NUL byte, a 2,000-
 * byte line, AUTH with bad base64, a message without headers) and see every reply, or that the
 * server closed the connection without one.
 */
import * as net from "node:net";

export interface SmtpReply {
  readonly code: number;
  /** The text of the last line (after "250 "). */
  readonly text: string;
}

export interface SmtpConnection {
  /** The greeting. */
  readonly greeting: Promise<SmtpReply | undefined>;
  /** Writes `line` + CRLF (or the bytes as they are) and reads one reply; undefined when closed. */
  command(line: string | Uint8Array, o?: { raw?: boolean }): Promise<SmtpReply | undefined>;
  /** DATA, then the message (dot-stuffed, CRLF.CRLF added): both replies. */
  data(message: Uint8Array): Promise<[SmtpReply | undefined, SmtpReply | undefined]>;
  /** True once the server closed the connection. */
  closed(): boolean;
  close(): void;
}

export function smtpConnect(o: { port: number; from?: string; timeoutMs?: number }): SmtpConnection {
  const socket = net.connect({ port: o.port, host: "127.0.0.1", localAddress: o.from });
  socket.setNoDelay(true);
  let buffer = "";
  let isClosed = false;
  let wake: (() => void) | undefined;
  socket.on("data", (d: Buffer) => {
    buffer += d.toString("latin1");
    wake?.();
  });
  socket.on("close", () => {
    isClosed = true;
    wake?.();
  });
  socket.on("error", () => {});
  const timeoutMs = o.timeoutMs ?? 10_000;

  const take = (): SmtpReply | undefined => {
    const lines = buffer.split("\r\n");
    for (let i = 0; i < lines.length - 1; i++) {
      const m = /^(\d{3})( |$)(.*)$/.exec(lines[i]!);
      if (m) {
        buffer = lines.slice(i + 1).join("\r\n");
        return { code: Number(m[1]), text: m[3]! };
      }
    }
    return undefined;
  };
  const next = async (): Promise<SmtpReply | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = take();
      if (reply !== undefined || isClosed) return reply;
      if (Date.now() > deadline) throw new Error(`no SMTP reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  const write = (bytes: string | Uint8Array) =>
    new Promise<void>((resolve) => {
      if (isClosed) return resolve();
      socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes, () => resolve());
    });

  return {
    greeting: next(),
    async command(line, c = {}) {
      await write(c.raw || typeof line !== "string" ? line : `${line}\r\n`);
      return next();
    },
    async data(message) {
      await write("DATA\r\n");
      const first = await next();
      if (first?.code !== 354) return [first, undefined];
      await write(Buffer.concat([dotStuff(message), Buffer.from("\r\n.\r\n")]));
      return [first, await next()];
    },
    closed: () => isClosed,
    close: () => socket.destroy(),
  };
}

/** RFC 5321 §4.5.2: a line starting with "." gets another; the message ends with CRLF if it does not. */
function dotStuff(message: Uint8Array): Buffer {
  let text = Buffer.from(message).toString("latin1");
  text = text.replace(/(^|\r\n)\./g, "$1..");
  if (text.length > 0 && !text.endsWith("\r\n")) text += "\r\n";
  return Buffer.from(text.endsWith("\r\n") ? text.slice(0, -2) : text, "latin1");
}

export const authPlain = (user: string, password: string) =>
  `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString("base64")}`;
