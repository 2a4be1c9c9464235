/**
 * The SMTP intake: the relay a calendar server (Cyrus, Nextcloud, SOGo) sends its outgoing iMIP mail
 * through (npm `smtp-server`). Recipients whose domain has an iSchedule receiver that takes the
 * message are queued for iSchedule; all other mail goes on unchanged to the smarthost (--smtp-relay).
 * transaction.ts decides and answers; this file is the SMTP session around it.
 *
 * Never an open relay (RFC 5321 §3.9 leaves relaying to local policy; this is isched's):
 * - connect: the client address must be in --smtp-allow, else `554 5.7.1` and the connection closes
 *   (RFC 5321 §3.1: 554 instead of the greeting means "no service here");
 * - AUTH (RFC 4954, PLAIN and LOGIN) is required when an auth file is given (auth-file.ts); with a
 *   certificate, only after STARTTLS (RFC 3207), so passwords never cross the network in clear.
 *   Guessing is slowed down: each password check needs a reservation of the client's address taken
 *   before the check (src/net/attempt-throttle.ts; `454 4.7.0` while it must wait), and the third
 *   failed AUTH on one connection is answered `421 4.7.0` and closes it;
 * - MAIL FROM: the reverse-path must be in a hosted domain, else `550 5.7.1`;
 * - after DATA: the Originator of an iMIP message must be in a hosted domain, else `550 5.7.1`.
 *
 * SIZE (RFC 1870) is advertised with maxSizeBytes; a client that announces more is refused at MAIL
 * FROM, and one that sends more gets `552 5.3.4` after DATA: the excess is read and dropped, never
 * held. smtp-server's own enhanced status codes are off (its table maps every 550 to 5.1.1), so the
 * RFC 3463 code at the start of each reply text is isched's.
 */
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from "smtp-server";
import { createSmtpSender, type SmtpSendable, type SmtpSender } from "../imip/smtp-sender.ts";
import { parseSmtpUrl, redactSmtpUrl } from "../imip/smtp-url.ts";
import type { IntakeService } from "../intake/accept.ts";
import type { Logger } from "../log/logger.ts";
import type { IschedMetrics } from "../metrics/isched-metrics.ts";
import { type AttemptThrottle, createAttemptThrottle } from "../net/attempt-throttle.ts";
import { anyContains, type Cidr } from "../net/cidr.ts";
import { loadAuthFile, type SmtpAccounts } from "./auth-file.ts";
import { checkEnvelopeSender } from "./decide.ts";
import { createRetryMemory } from "./retry-memory.ts";
import { handleTransaction, replyText, type ScheduleFacts, type SmtpReply } from "./transaction.ts";

export interface SmtpIntakeOptions {
  listen: { host: string; port: number };
  /** Client addresses allowed to connect (--smtp-allow, `parseCidrList()`). */
  allow: readonly Cidr[];
  /** Accounts file (auth-file.ts); when given, AUTH is required before MAIL. */
  authFile?: string;
  /** PEM certificate chain and key: STARTTLS is offered. */
  tls?: { cert: string; key: string };
  /** Largest message accepted, in octets. */
  maxSizeBytes: number;
  /** Where upgraded messages go (src/intake): it also says which domains are hosted. */
  intake: IntakeService;
  /** Does `domain` have an iSchedule receiver that takes this message (discovery and capabilities)? */
  canSchedule: (domain: string, facts: ScheduleFacts) => Promise<boolean>;
  /** Record the relayed recipients of an iMIP mail in the message log (src/intake/relayed.ts). */
  recordRelayed?: boolean;
  /** The smarthost for everything else: `smtp[s]://[user:password@]host[:port]` (--smtp-relay). */
  relay?: { url: string; ca?: string };
  log: Logger;
  /** A slower discovery answer counts as "no iSchedule": the recipient is relayed. Default 30 s. */
  canScheduleTimeoutMs?: number;
  /** Slows down password guessing per client address and overall; default: a throttle of its own. */
  authThrottle?: AttemptThrottle;
  /** The name in the greeting and in EHLO to the smarthost. Default: the machine's name. */
  name?: string;
  /** Counts each message's outcome (SMTP has no iSchedule error element: `none` or `other`). */
  metrics?: Pick<IschedMetrics, "requests">;
}

export interface SmtpIntake {
  /** The port listened on (the real one when `listen.port` was 0). */
  readonly port: number;
  /** The STARTTLS certificate for new sessions from now on (a reload). */
  setCertificate(tls: { cert: string; key: string }): void;
  /** The AUTH accounts from now on (a reload of --smtp-auth-file); only when started with an auth file. */
  setAccounts(accounts: SmtpAccounts): void;
  /** Stops accepting connections, waits briefly for open ones, closes the smarthost connections. */
  stop(): Promise<void>;
}

/** Failed AUTH commands one connection may send; the last is answered 421 and the connection closed. */
const MAX_AUTH_FAILURES_PER_CONNECTION = 3;
/** RFC 5321 §4.5.3.1.8 requires at least 100; more than this in one transaction is not a calendar server. */
const MAX_RECIPIENTS = 1000;
const DEFAULT_CAN_SCHEDULE_TIMEOUT_MS = 30_000;

/** Throws Error with a sentence for a setting that cannot work, before listening. */
export async function startSmtpIntake(o: SmtpIntakeOptions): Promise<SmtpIntake> {
  // A message's reply: 2xx accepted, 4xx try later, 5xx refused; a failure of isched's own, failed.
  const counted = (code: number) =>
    o.metrics?.requests.inc({
      intake: "smtp",
      outcome: code === 500 ? "failed" : code < 400 ? "accepted" : code < 500 ? "unavailable" : "refused",
      error: code < 400 ? "none" : "other",
    });
  if (!Number.isInteger(o.maxSizeBytes) || o.maxSizeBytes <= 0) {
    throw new Error(`--smtp-max-size: must be a whole number of octets above 0, not ${o.maxSizeBytes}`);
  }
  if (o.allow.length === 0) throw new Error("--smtp-allow: at least one client address or range is needed");
  let accounts: SmtpAccounts | undefined = o.authFile === undefined ? undefined : loadAuthFile(o.authFile);
  const relayUrl = o.relay && parseSmtpUrl(o.relay.url, "--smtp-relay");
  const sender: SmtpSender | undefined =
    relayUrl &&
    createSmtpSender({
      url: relayUrl,
      ...(o.relay?.ca !== undefined && { ca: o.relay.ca }),
      ...(o.name !== undefined && { name: o.name }),
    });
  const memory = createRetryMemory();
  const authThrottle = o.authThrottle ?? createAttemptThrottle();
  const authFailures = new WeakMap<SMTPServerSession, number>();
  const { log } = o;
  if (accounts && !o.tls)
    log.log(
      "warn",
      "smtp intake: AUTH without STARTTLS sends passwords in clear; give a certificate unless clients are local",
    );

  const server = new SMTPServer({
    logger: false,
    banner: "isched SMTP intake",
    ...(o.name !== undefined && { name: o.name }),
    size: o.maxSizeBytes,
    disabledCommands: [...(accounts ? [] : ["AUTH"]), ...(o.tls ? [] : ["STARTTLS"])],
    authOptional: !accounts,
    allowInsecureAuth: accounts !== undefined && !o.tls,
    authMethods: ["PLAIN", "LOGIN"],
    disableReverseLookup: true,
    closeTimeout: 2000,
    ...(o.tls && { key: o.tls.key, cert: o.tls.cert, secure: false, minVersion: "TLSv1.2" as const }),

    onConnect(session, callback) {
      if (anyContains(o.allow, session.remoteAddress)) return callback();
      log.log("warn", "smtp intake refused a client outside --smtp-allow", { client: session.remoteAddress });
      callback(
        smtpError({
          code: 554,
          status: "5.7.1",
          text: `Client ${session.remoteAddress} may not use this relay`,
        }),
      );
    },

    onAuth(auth, session, callback) {
      const user = auth.username ?? "";
      const client = session.remoteAddress;
      // Every AUTH that does not succeed counts against the connection; the last one closes it.
      const fail = (reply: SmtpReply) => {
        const failures = (authFailures.get(session) ?? 0) + 1;
        authFailures.set(session, failures);
        if (failures < MAX_AUTH_FAILURES_PER_CONNECTION) return callback(smtpError(reply));
        log.log("warn", "smtp intake closed a connection after failed logins", { client, failures });
        callback(
          smtpError({
            code: 421,
            status: "4.7.0",
            text: `${failures} failed authentication attempts; closing the connection`,
          }),
        );
      };
      const invalid = () => {
        log.log("warn", "smtp intake refused a login", { client, user });
        fail({ code: 535, status: "5.7.8", text: "Authentication credentials invalid" });
      };
      if (!accounts || (auth.method !== "PLAIN" && auth.method !== "LOGIN")) return invalid();
      // Reserved before the password is checked, so logins sent in parallel wait their turn.
      const reservation = authThrottle.reserve(client);
      if (!reservation.ok) {
        const seconds = Math.ceil(reservation.waitMs / 1000);
        log.log("warn", "smtp intake slowed down a login", { client, user, scope: reservation.scope });
        return fail({
          code: 454,
          status: "4.7.0",
          text: `Too many failed logins from ${reservation.scope === "address" ? "your address" : "all addresses"}; try again in ${seconds} s`,
        });
      }
      accounts.verify(user, auth.password ?? "").then(
        (ok) => {
          reservation.settle(ok ? "success" : "failure");
          if (ok) callback(null, { user });
          else invalid();
        },
        () => {
          reservation.settle("failure");
          invalid();
        },
      );
    },

    onMailFrom(address: SMTPServerAddress, session, callback) {
      const problem = checkEnvelopeSender(address.address, o.intake.hosted);
      if (!problem) return callback();
      log.log("warn", "smtp intake refused a relay attempt", {
        client: session.remoteAddress,
        from: address.address,
      });
      callback(smtpError({ code: 550, status: "5.7.1", text: problem }));
    },

    onRcptTo(_address, session, callback) {
      if (session.envelope.rcptTo.length < MAX_RECIPIENTS) return callback();
      callback(
        smtpError({
          code: 452,
          status: "4.5.3",
          text: `Too many recipients (at most ${MAX_RECIPIENTS} per message)`,
        }),
      );
    },

    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= o.maxSizeBytes) chunks.push(chunk);
      });
      stream.on("error", (e: Error) => {
        log.log("warn", "smtp intake: the message stream failed", {
          client: session.remoteAddress,
          error: e.message,
        });
      });
      stream.on("end", () => {
        if (stream.sizeExceeded || size > o.maxSizeBytes) {
          counted(552);
          log.log("info", "smtp intake refused an oversized message", {
            client: session.remoteAddress,
            octets: size,
          });
          return callback(
            smtpError({
              code: 552,
              status: "5.3.4",
              text: `The message exceeds the limit of ${o.maxSizeBytes} octets; nothing was queued or relayed`,
            }),
          );
        }
        handleTransaction(
          {
            raw: new Uint8Array(Buffer.concat(chunks)),
            envelope: envelopeOf(session),
            peerAddress: session.remoteAddress,
          },
          {
            intake: o.intake,
            canSchedule: o.canSchedule,
            canScheduleTimeoutMs: o.canScheduleTimeoutMs ?? DEFAULT_CAN_SCHEDULE_TIMEOUT_MS,
            recordRelayed: o.recordRelayed === true,
            ...(sender &&
              relayUrl && {
                relay: { send: (m: SmtpSendable) => sender.send(m), label: redactSmtpUrl(relayUrl) },
              }),
            memory,
            log,
          },
        ).then(
          (r) => {
            counted(r.code);
            return r.code < 400 ? callback(null, `${r.status} ${r.text}`) : callback(smtpError(r));
          },
          (e: unknown) => {
            counted(500);
            log.log("error", "smtp intake failed on a message", {
              client: session.remoteAddress,
              error: e instanceof Error ? e.message : String(e),
            });
            callback(
              smtpError({
                code: 451,
                status: "4.3.0",
                text: "Local error while handling the message; try again later",
              }),
            );
          },
        );
      });
    },
  });
  // Errors of single connections (a client resetting its socket) are not the server's.
  const listening = new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `--smtp-listen: cannot listen on ${o.listen.host}:${o.listen.port}: ${e.code ?? e.message}`,
        ),
      ),
    );
    server.listen(o.listen.port, o.listen.host, () => resolve());
  });
  await listening;
  server.on("error", (e: Error) => log.log("debug", "smtp intake connection error", { error: e.message }));
  const address = server.server.address();
  if (address === null || typeof address === "string")
    throw new Error("--smtp-listen: the SMTP intake has no TCP port");
  log.log("info", "smtp intake listening", {
    address: `${o.listen.host}:${address.port}`,
    auth: accounts ? `${accounts.size} account(s)` : "none",
    starttls: o.tls !== undefined,
    relay: relayUrl ? redactSmtpUrl(relayUrl) : "none",
  });

  return {
    port: address.port,
    setCertificate(tls) {
      if (o.tls) server.updateSecureContext({ key: tls.key, cert: tls.cert });
    },
    setAccounts(next) {
      if (accounts) accounts = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          sender?.close();
          resolve();
        });
      }),
  };
}

function envelopeOf(session: SMTPServerSession): { mailFrom: string; rcptTo: string[] } {
  const from = session.envelope.mailFrom;
  return { mailFrom: from ? from.address : "", rcptTo: session.envelope.rcptTo.map((r) => r.address) };
}

/** smtp-server answers an Error with its responseCode and message. */
function smtpError(r: SmtpReply): Error {
  return Object.assign(new Error(`${r.status} ${replyText(r.text)}`), { responseCode: r.code });
}
