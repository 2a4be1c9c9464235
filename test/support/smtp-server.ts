/**
 * A real SMTP server for tests (the npm `smtp-server` package) on 127.0.0.1 and a free port: it
 * records every accepted message's envelope and raw bytes, and can be told to misbehave the ways
 * relays do (temporary or permanent recipient refusals, refusing new connections, requiring AUTH,
 * offering STARTTLS or speaking implicit TLS with a test certificate).
 */

import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from "smtp-server";

export interface ReceivedMessage {
  /** MAIL FROM address ("" for the null reverse-path). */
  mailFrom: string;
  /** The RCPT TO addresses the server accepted, in order. */
  rcptTo: string[];
  /** The message as received, dot-stuffing removed (RFC 5321 §4.5.2). */
  raw: Uint8Array;
  /** True when the session was encrypted (STARTTLS or implicit TLS). */
  secure: boolean;
  /** The user name the session authenticated as, if any. */
  user?: string;
  /** The name the client gave in EHLO or HELO. */
  ehloName: string;
}

export interface SmtpServerOptions {
  /** When set, AUTH (PLAIN/LOGIN) is required and only these credentials pass. */
  auth?: {
    user: string;
    password: string;
    /** Accept AUTH before STARTTLS, so tests can check that the client does not offer it. */
    allowInsecure?: boolean;
    /** A hostile server: put the credentials it was sent into its 535 reply. */
    echoCredentialsOnFailure?: boolean;
  };
  /** A certificate and key: STARTTLS is offered (or, with `implicitTls`, TLS from the first byte). */
  tls?: { certPem: string; keyPem: string; implicit?: boolean };
  /** RCPT TO answers by address (lower-case): `{ "x@example.org": 451 }`. Others get 250. */
  recipientReplies?: Record<string, number>;
  /** MAIL FROM answers by address, like `recipientReplies`. */
  senderReplies?: Record<string, number>;
  /** The answer to the end of DATA instead of 250; the message is then not recorded. */
  dataReply?: number;
  /** After this many accepted messages, new connections get 421 and are closed. */
  refuseConnectionsAfter?: number;
}

export interface RunningSmtpServer {
  host: string;
  port: number;
  messages: ReceivedMessage[];
  /** Resolves once `n` messages have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** Number of TCP connections accepted so far (including refused ones). */
  connections(): number;
  /** The user names of every AUTH attempt, successful or not, in order. */
  logins: string[];
  stop(): Promise<void>;
}

interface ReplyError extends Error {
  responseCode: number;
}

function reply(code: number, text: string): ReplyError {
  return Object.assign(new Error(text), { responseCode: code });
}

const REPLY_TEXT: Record<number, string> = {
  421: "Service not available, closing transmission channel",
  450: "Mailbox unavailable, try again later",
  451: "Local error in processing, try again later",
  452: "Insufficient system storage",
  550: "No such user here",
  551: "User not local",
  552: "Exceeded storage allocation",
  553: "Mailbox name not allowed",
  554: "Transaction failed",
};

export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<RunningSmtpServer> {
  const host = "127.0.0.1";
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();
  let connectionCount = 0;
  const logins: string[] = [];
  const disabled: string[] = [];
  if (!options.auth) disabled.push("AUTH");
  // smtp-server otherwise offers STARTTLS with its built-in certificate, which tests must not rely on.
  if (!options.tls) disabled.push("STARTTLS");
  const byAddress = (table: Record<string, number> = {}) =>
    new Map(Object.entries(table).map(([k, v]) => [k.toLowerCase(), v] as const));
  const replies = byAddress(options.recipientReplies);
  const senderReplies = byAddress(options.senderReplies);
  const answer = (code: number | undefined, address: string, callback: (err?: Error | null) => void) => {
    if (code === undefined || code < 400) callback();
    else callback(reply(code, `${REPLY_TEXT[code] ?? "Refused"}: <${address}>`));
  };

  const server = new SMTPServer({
    logger: false,
    banner: "isched test SMTP server",
    disabledCommands: disabled,
    authOptional: !options.auth,
    allowInsecureAuth: options.auth?.allowInsecure === true,
    authMethods: ["PLAIN", "LOGIN"],
    closeTimeout: 500,
    disableReverseLookup: true,
    ...(options.tls && {
      key: options.tls.keyPem,
      cert: options.tls.certPem,
      secure: options.tls.implicit === true,
    }),
    onConnect(_session: SMTPServerSession, callback: (err?: Error | null) => void) {
      connectionCount++;
      const limit = options.refuseConnectionsAfter;
      if (limit !== undefined && messages.length >= limit) {
        callback(reply(421, "Too many messages, closing connection"));
        return;
      }
      callback();
    },
    onAuth(
      auth: SMTPServerAuthentication,
      _session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: { user?: unknown }) => void,
    ) {
      logins.push(auth.username ?? "");
      const want = options.auth;
      if (want && auth.username === want.user && auth.password === want.password) {
        callback(null, { user: auth.username });
        return;
      }
      const detail = want?.echoCredentialsOnFailure
        ? ` (got user ${auth.username} password ${auth.password ?? ""})`
        : "";
      callback(reply(535, `Authentication credentials invalid${detail}`));
    },
    onMailFrom(address, _session, callback) {
      answer(senderReplies.get(address.address.toLowerCase()), address.address, callback);
    },
    onRcptTo(address, _session, callback) {
      answer(replies.get(address.address.toLowerCase()), address.address, callback);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (options.dataReply !== undefined && options.dataReply >= 400) {
          const code = options.dataReply;
          callback(reply(code, `${REPLY_TEXT[code] ?? "Refused"}: message not accepted`));
          return;
        }
        const user = typeof session.user === "string" ? session.user : undefined;
        messages.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: new Uint8Array(Buffer.concat(chunks)),
          secure: session.secure,
          ...(user !== undefined && { user }),
          ehloName: session.hostNameAppearsAs,
        });
        for (const wake of waiters) wake();
        callback();
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Errors after start-up (a client resetting its socket) are part of what tests provoke.
  server.on("error", () => {});
  const address = server.server.address();
  if (address === null || typeof address === "string") throw new Error("SMTP test server has no TCP port");

  return {
    host,
    port: address.port,
    messages,
    connections: () => connectionCount,
    logins,
    waitFor(n, timeoutMs = 5000) {
      if (messages.length >= n) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`SMTP test server: ${messages.length} of ${n} messages after ${timeoutMs}ms`));
        }, timeoutMs);
        waiters.add(wake);
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
