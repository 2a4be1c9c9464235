/**
 * The SMTP intake with real sockets all round: nodemailer as the calendar server's mail client, the
 * intake on 127.0.0.1, and the SMTP test server (test/support/smtp-server.ts) as the smarthost. The
 * queue is the real one on the store given (test/support/store-backends.ts) or an in-memory SQLite
 * database, so tests see what was committed; `canSchedule`
 * is a stand-in that says yes for the domains given and records what it was asked.
 */
import net from "node:net";
import nodemailer from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import { Dispatcher } from "../../src/delivery/dispatcher.ts";
import { createIntake } from "../../src/intake/accept.ts";
import { createLogger } from "../../src/log/logger.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { DeliveryQueue, type MessageDetail } from "../../src/queue/queue.ts";
import {
  type ScheduleFacts,
  type SmtpIntake,
  type SmtpIntakeOptions,
  startSmtpIntake,
} from "../../src/smtp-intake/index.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { type RunningSmtpServer, type SmtpServerOptions, startSmtpServer } from "../support/smtp-server.ts";

export const HOSTED = "example.com";

export interface Harness {
  intake: SmtpIntake;
  sink: RunningSmtpServer;
  queue: DeliveryQueue;
  /** What canSchedule was asked, in order. */
  asked: { domain: string; facts: ScheduleFacts }[];
  logs: string[];
  /** Every stored message with its deliveries, oldest first. */
  queued(): Promise<MessageDetail[]>;
  send(m: Sendable): Promise<SendOutcome>;
  stop(): Promise<void>;
}

export interface Sendable {
  from: string;
  to: readonly string[];
  raw: string | Uint8Array;
  /** Extra nodemailer SMTP transport options (auth, TLS). */
  transport?: SMTPTransport.Options;
}

export type SendOutcome =
  | { ok: true; response: string; accepted: string[] }
  | { ok: false; code?: number; response: string; command?: string };

export interface HarnessOptions {
  intake?: Partial<SmtpIntakeOptions>;
  sink?: SmtpServerOptions;
  /** Domains canSchedule says yes for. Default: ischedule.example. */
  schedulable?: readonly string[];
  /** Where the relay URL points instead of the sink (a port with nothing behind it, a proxy). */
  relayPort?: number;
  /** Hosted domains; default example.com. */
  hosted?: readonly string[];
  /** Log relayed iMIP recipients in the queue, as `isched serve` does (recordRelayed). */
  record?: boolean;
  /** The queue's store (its owner closes it); default a SQLite database in memory, closed by stop(). */
  store?: Store;
}

export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const sink = await startSmtpServer(o.sink);
  const own = o.store === undefined ? createSqliteStore(openDatabase(":memory:")) : undefined;
  const queue = new DeliveryQueue(o.store ?? own!);
  const hostedDomains = new Set(o.hosted ?? [HOSTED]);
  const schedulable = new Set(o.schedulable ?? ["ischedule.example"]);
  const asked: Harness["asked"] = [];
  const logs: string[] = [];
  const intake = await startSmtpIntake({
    listen: { host: "127.0.0.1", port: 0 },
    allow: parseCidrList("127.0.0.0/8,::1"),
    maxSizeBytes: 64 * 1024,
    // The real intake, its dispatcher never started: tests see what the SMTP intake committed.
    intake: createIntake({
      queue,
      dispatcher: new Dispatcher({
        queue,
        targetFor: () => undefined,
        scheduleMs: [60_000],
        imipAvailable: false,
        owner: "harness",
      }),
      routes: { local: new Map([...hostedDomains].map((d) => [d, "store"])) },
      nowMs: Date.now,
    }),
    canSchedule: async (domain, facts) => {
      asked.push({ domain, facts });
      return schedulable.has(domain);
    },
    recordRelayed: o.record === true,
    relay: { url: `smtp://127.0.0.1:${o.relayPort ?? sink.port}` },
    log: createLogger({ level: "debug", write: (line) => logs.push(line) }),
    ...o.intake,
  });

  return {
    intake,
    sink,
    queue,
    asked,
    logs,
    async queued() {
      const ids = (await queue.listMessages({ limit: 100 })).messages.map((m) => m.id);
      return Promise.all(ids.reverse().map(async (id) => (await queue.getMessage(id))!));
    },
    send: (m) => sendThrough(intake.port, m),
    async stop() {
      await intake.stop();
      await sink.stop();
      await own?.close();
    },
  };
}

/** One SMTP transaction with nodemailer; a refusal is an outcome, not an exception. */
export async function sendThrough(port: number, m: Sendable): Promise<SendOutcome> {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: m.transport?.auth === undefined && m.transport?.requireTLS !== true,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
    socketTimeout: 10_000,
    ...m.transport,
  });
  try {
    const raw = typeof m.raw === "string" ? Buffer.from(m.raw, "utf8") : Buffer.from(m.raw);
    const info = await transport.sendMail({ envelope: { from: m.from, to: [...m.to] }, raw });
    return { ok: true, response: String(info.response), accepted: info.accepted.map(String) };
  } catch (e) {
    const err = e as { responseCode?: number; response?: string; message?: string; command?: string };
    return {
      ok: false,
      ...(err.responseCode !== undefined && { code: err.responseCode }),
      response: err.response ?? err.message ?? String(e),
      ...(err.command !== undefined && { command: err.command }),
    };
  } finally {
    transport.close();
  }
}

export const asText = (raw: Uint8Array): string => Buffer.from(raw).toString("utf8");

/**
 * A raw SMTP dialog over TCP, for what nodemailer will not do (DATA without SIZE, reading the
 * greeting of a refused connection): one reply is read before each line is sent; the replies come
 * back in order, and stop when the server closes the connection.
 */
export async function dialog(port: number, lines: readonly string[]): Promise<string[]> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setEncoding("latin1");
  let buffer = "";
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on("data", (d: string) => {
    buffer += d;
    wake?.();
  });
  socket.on("close", () => {
    closed = true;
    wake?.();
  });
  socket.on("error", () => {});
  const take = (): string | undefined => {
    const all = buffer.split("\r\n");
    for (let i = 0; i < all.length - 1; i++) {
      if (/^\d{3}(?: |$)/.test(all[i]!)) {
        buffer = all.slice(i + 1).join("\r\n");
        return all.slice(0, i + 1).join("\r\n");
      }
    }
    return undefined;
  };
  const next = async (): Promise<string | undefined> => {
    for (;;) {
      const reply = take();
      if (reply !== undefined || closed) return reply;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  const replies: string[] = [];
  const greeting = await next();
  if (greeting !== undefined) replies.push(greeting);
  for (const line of lines) {
    if (closed) break;
    socket.write(`${line}\r\n`);
    const reply = await next();
    if (reply === undefined) break;
    replies.push(reply);
  }
  socket.destroy();
  return replies;
}

/**
 * A TCP forwarder in front of the smarthost whose target can be switched or cut (undefined: every
 * connection is closed at once), to make the smarthost fail and come back. Switching closes the
 * open connections, so the intake's pooled connection cannot keep talking to the old target.
 */
export interface Switch {
  port: number;
  point(target: number | undefined): void;
  stop(): Promise<void>;
}

export async function startSwitch(initial: number | undefined): Promise<Switch> {
  let target = initial;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    if (target === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const closeAll = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    point(next) {
      target = next;
      closeAll();
    },
    stop() {
      closeAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
