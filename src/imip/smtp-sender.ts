/**
 * Hands finished iMIP messages to the SMTP relay named by --smtp (nodemailer's pooled SMTP client)
 * and says what happened in terms the queue can act on: sent, with the recipients the relay refused;
 * or not sent, temporary or permanent.
 *
 * Classification (RFC 5321 §4.2.1): a 4yz reply is temporary and a 5yz reply to the mail transaction
 * (MAIL FROM, RCPT TO, DATA) is permanent. Everything that goes wrong before the transaction starts
 * (no connection, timeout, greeting, TLS, AUTH, even with a 5yz) is temporary: it says nothing about
 * the message, and the mail should wait in the queue until the relay or its configuration is fixed,
 * as Postfix defers mail for a relayhost that refuses its login. Unknown failures are temporary too.
 *
 * TLS is always verified; `ca` adds trust anchors for a relay with a private CA. Nothing is logged, and
 * every text that reaches a result has the password, in every encoding AUTH sends it, replaced.
 */

import tls from "node:tls";
import nodemailer from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport";
import type { ImipEnvelope } from "./message.ts";
import type { ParsedSmtpUrl } from "./smtp-url.ts";
import { redactSmtpUrl } from "./smtp-url.ts";

export interface SmtpSenderOptions {
  url: ParsedSmtpUrl;
  /** PEM CA certificates (--ca-file) trusted in addition to the default store. */
  ca?: string;
  /** For the TCP connection, the TLS handshake and the server's greeting each. Default 10000. */
  connectTimeoutMs?: number;
  /** Longest silence of the server once connected. Default 60000. */
  socketTimeoutMs?: number;
  /** The EHLO name (RFC 5321 §4.1.1.1: the client's host name). Default: the machine's name. */
  name?: string;
  /** Connections kept open to the relay. Default 2. */
  maxConnections?: number;
}

export interface SmtpSendable {
  raw: Uint8Array;
  envelope: ImipEnvelope;
  /** Reported back in the result; read from the message's Message-ID header when absent. */
  messageId?: string;
}

export interface RecipientRejection {
  address: string;
  /** The RCPT TO reply code, when the server sent one. */
  code?: number;
  response?: string;
  temporary: boolean;
}

/** Where a failed attempt stopped. */
export type SmtpFailureKind =
  | "connect"
  | "timeout"
  | "tls"
  | "auth"
  | "protocol"
  /** MAIL FROM or every RCPT TO refused, or an envelope nodemailer would not send. */
  | "envelope"
  /** DATA refused. */
  | "message"
  | "other";

export type SmtpResult =
  | {
      ok: true;
      /** The relay's reply to the end of DATA: "250 2.0.0 Ok: queued as ...". */
      response: string;
      accepted: string[];
      rejected: string[];
      /** Why each of `rejected` was refused. */
      rejections: RecipientRejection[];
      messageId: string;
    }
  | {
      ok: false;
      /**
       * Trying again later may succeed. When every recipient was refused it is true if any refusal
       * was temporary: look at `rejections` to retry only those.
       */
      temporary: boolean;
      kind: SmtpFailureKind;
      code?: number;
      response?: string;
      /** "Cannot send through smtp://isched:***@mail.example.net:587: ..." */
      message: string;
      rejections: RecipientRejection[];
    };

export interface SmtpSender {
  /** Never throws: every failure is a result. */
  send(msg: SmtpSendable): Promise<SmtpResult>;
  /** Closes the pooled connections; sends still queued fail. */
  close(): void;
}

/** The fields of nodemailer's errors this module reads. */
interface SmtpClientError {
  message?: unknown;
  code?: unknown;
  /** The socket's own code, kept when nodemailer files a TLS failure under ESOCKET. */
  originalCode?: unknown;
  responseCode?: unknown;
  response?: unknown;
  recipient?: unknown;
  rejectedErrors?: unknown;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_SOCKET_TIMEOUT_MS = 60_000;

/** OpenSSL and Node codes of a failed certificate check or handshake. */
const TLS_ERROR_CODE =
  /^(?:ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|HOSTNAME_)/;

const KIND_BY_CODE: Readonly<Record<string, SmtpFailureKind>> = {
  ECONNECTION: "connect",
  ESOCKET: "connect",
  EDNS: "connect",
  ETIMEDOUT: "timeout",
  ETLS: "tls",
  EREQUIRETLS: "tls",
  EAUTH: "auth",
  ENOAUTH: "auth",
  EPROTOCOL: "protocol",
  EENVELOPE: "envelope",
  EMESSAGE: "message",
};

/** nodemailer's settings for the relay: verified TLS as the URL asks, AUTH, timeouts, no logging. */
function transportSettings(o: SmtpSenderOptions): SMTPTransport.Options {
  const { url } = o;
  const connectMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const isIp = url.host.includes(":") || /^[\d.]+$/.test(url.host);
  return {
    host: url.host,
    port: url.port,
    secure: url.tls === "implicit",
    requireTLS: url.tls === "starttls",
    ...(url.auth && { auth: { user: url.auth.user, pass: url.auth.password } }),
    ...(o.name !== undefined && { name: o.name }),
    connectionTimeout: connectMs,
    greetingTimeout: connectMs,
    dnsTimeout: connectMs,
    socketTimeout: o.socketTimeoutMs ?? DEFAULT_SOCKET_TIMEOUT_MS,
    logger: false,
    debug: false,
    tls: {
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      // RFC 6066 §3: no SNI for an IP address.
      ...(!isIp && { servername: url.host }),
      // A `ca` replaces the default store rather than adding to it.
      ...(o.ca !== undefined && { ca: [...tls.getCACertificates("default"), o.ca] }),
    },
  };
}

export function createSmtpSender(o: SmtpSenderOptions): SmtpSender {
  const { url } = o;
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: o.maxConnections ?? 2,
    // One more try covers a pooled connection the relay closed while idle; the isched queue does
    // the real retrying, with its own schedule.
    maxRequeues: 1,
    ...transportSettings(o),
  });
  const where = redactSmtpUrl(url);
  const scrub = scrubber(url);

  return {
    async send(msg) {
      const rejections: RecipientRejection[] = [];
      if (msg.envelope.to.length === 0) {
        return failure({ kind: "envelope", temporary: false, message: "there is no recipient" });
      }
      try {
        const info = await transport.sendMail({
          envelope: { from: msg.envelope.from, to: [...msg.envelope.to] },
          raw: Buffer.from(msg.raw.buffer, msg.raw.byteOffset, msg.raw.byteLength),
        });
        rejections.push(...recipientRejections(info.rejectedErrors, scrub));
        return {
          ok: true,
          response: scrub(String(info.response ?? "")),
          accepted: info.accepted.map(String),
          rejected: info.rejected.map(String),
          rejections,
          messageId: msg.messageId ?? messageIdOf(msg.raw) ?? "",
        };
      } catch (caught) {
        const err: SmtpClientError = typeof caught === "object" && caught !== null ? caught : {};
        rejections.push(...recipientRejections(err.rejectedErrors, scrub));
        const kind = failureKind(err);
        const code = typeof err.responseCode === "number" ? err.responseCode : undefined;
        const response = typeof err.response === "string" ? scrub(err.response) : undefined;
        const text = typeof err.message === "string" ? err.message : String(caught);
        return failure({
          kind,
          temporary: isTemporary(kind, code, rejections),
          ...(code !== undefined && { code }),
          ...(response !== undefined && { response }),
          message: scrub(text),
          rejections,
        });
      }
    },
    close() {
      transport.close();
    },
  };

  function failure(f: {
    kind: SmtpFailureKind;
    temporary: boolean;
    code?: number;
    response?: string;
    message: string;
    rejections?: RecipientRejection[];
  }): SmtpResult {
    return {
      ok: false,
      ...f,
      message: `Cannot send through ${where}: ${f.message}`,
      rejections: f.rejections ?? [],
    };
  }
}

export type RelayCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly kind: SmtpFailureKind; readonly code?: number; readonly message: string };

/**
 * Connects to the relay as sending would (greeting, EHLO, STARTTLS as the URL asks, AUTH with its
 * credentials) and says goodbye without sending: what `isched doctor` checks.
 */
export async function checkSmtpRelay(o: SmtpSenderOptions): Promise<RelayCheck> {
  const transport = nodemailer.createTransport(transportSettings(o));
  const scrub = scrubber(o.url);
  try {
    await transport.verify();
    return { ok: true };
  } catch (caught) {
    const err: SmtpClientError = typeof caught === "object" && caught !== null ? caught : {};
    const code = typeof err.responseCode === "number" ? err.responseCode : undefined;
    const text = typeof err.message === "string" ? err.message : String(caught);
    return {
      ok: false,
      kind: failureKind(err),
      ...(code !== undefined && { code }),
      message: `Cannot use ${redactSmtpUrl(o.url)}: ${scrub(text)}`,
    };
  } finally {
    transport.close();
  }
}

function failureKind(err: SmtpClientError): SmtpFailureKind {
  if (typeof err.originalCode === "string" && TLS_ERROR_CODE.test(err.originalCode)) return "tls";
  return (typeof err.code === "string" && KIND_BY_CODE[err.code]) || "other";
}

function isTemporary(
  kind: SmtpFailureKind,
  code: number | undefined,
  rejections: readonly RecipientRejection[],
): boolean {
  if (rejections.length > 0) return rejections.some((r) => r.temporary);
  if (kind === "envelope" || kind === "message") {
    // Without a reply code nodemailer refused the envelope itself (say, an invalid address).
    return code === undefined ? false : code < 500;
  }
  return true;
}

function recipientRejections(list: unknown, scrub: (s: string) => string): RecipientRejection[] {
  if (!Array.isArray(list)) return [];
  return list.map((e: SmtpClientError) => {
    const code = typeof e.responseCode === "number" ? e.responseCode : undefined;
    return {
      address: typeof e.recipient === "string" ? e.recipient : "",
      ...(code !== undefined && { code }),
      ...(typeof e.response === "string" && { response: scrub(e.response) }),
      temporary: code === undefined || code < 500,
    };
  });
}

/**
 * Replaces the password as it may appear in a server's reply or a client error: as typed,
 * percent-encoded, and base64 alone or inside AUTH PLAIN's "\0user\0password" (RFC 4616).
 */
function scrubber(url: ParsedSmtpUrl): (text: string) => string {
  const auth = url.auth;
  if (!auth) return (text) => text;
  const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
  const secrets = [
    auth.password,
    encodeURIComponent(auth.password),
    b64(auth.password),
    b64(`\u0000${auth.user}\u0000${auth.password}`),
    b64(`${auth.user}\u0000${auth.user}\u0000${auth.password}`),
  ]
    .filter((s) => s !== "")
    .sort((a, b) => b.length - a.length);
  return (text) => secrets.reduce((t, s) => t.split(s).join("***"), text);
}

/** The Message-ID of a raw message (RFC 5322 §3.6.4), from its header section. */
function messageIdOf(raw: Uint8Array): string | undefined {
  const head = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
  const end = head.indexOf("\r\n\r\n");
  const unfolded = (end === -1 ? head : head.slice(0, end)).replace(/\r\n[ \t]/g, " ");
  return /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(unfolded)?.[1];
}
