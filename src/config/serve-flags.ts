/**
 * The flags of `isched serve`, each with its ISCHED_* variable, parser, help and default: the
 * table `isched help serve` prints. `validate`, `doctor` and `discover` take the same flags, so
 * they judge the configuration serve would run (from-flags.ts turns the values into it).
 */

import { LETS_ENCRYPT_DIRECTORY } from "../acme/client.ts";
import { parseRetrySchedule } from "../delivery/policy.ts";
import { DEFAULT_LOOKUP_LIMITS } from "../dkim/lookup-gate.ts";
import { DEFAULT_MAX_SIGNATURE_AGE_SECONDS, MAX_SIGNATURE_LIFETIME_SECONDS } from "../dkim/verify.ts";
import { DEFAULT_LIMITS } from "../inbound/limits.ts";
import { toICalendarUtc } from "../ischedule/capabilities.ts";
import { type Cidr, coversEveryAddress, parseCidrList } from "../net/cidr.ts";
import { parseListenAddress } from "../net/host-port.ts";
import { DEFAULT_LEASE_MS } from "../queue/queue.ts";
import { formatDuration, parseDuration } from "../time/duration.ts";
import { parseDatabaseUrl, parseNodeId } from "./database-flags.ts";
import { type FlagValues, flag } from "./flags.ts";
import { opsFlags } from "./ops-flags.ts";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_VERIFY_DEADLINE_MS } from "./serve-config.ts";
import { dnsServerFlag, selectorFlag } from "./shared-flags.ts";

const hostPort = (help: string, def: string) =>
  flag.custom(parseListenAddress, {
    help,
    placeholder: "HOST:PORT",
    defaultValue: parseListenAddress(def),
    defaultText: def,
  });

/** A duration flag that must lie within [minMs, maxMs]. */
const boundedDuration = (help: string, o: { defaultMs: number; minMs: number; maxMs: number }) =>
  flag.custom(
    (raw) => {
      const ms = parseDuration(raw);
      if (ms < o.minMs || ms > o.maxMs)
        throw new Error(`${raw} is outside ${formatDuration(o.minMs)}..${formatDuration(o.maxMs)}`);
      return ms;
    },
    { help, placeholder: "DURATION", defaultValue: o.defaultMs, defaultText: formatDuration(o.defaultMs) },
  );

const utcDateTime = (help: string, def: string) =>
  flag.custom(
    (raw) => {
      const v = toICalendarUtc(raw);
      if (!v)
        throw new Error(`"${raw}" is not a UTC date-time (e.g. 19000101T000000Z or 1900-01-01T00:00:00Z)`);
      return v;
    },
    { help, placeholder: "DATETIME", defaultValue: def },
  );

/** The flags of `serve`; `validate`, `doctor` and `discover` take the same, to check what serve runs. */
export const serveFlags = {
  domain: flag.list({ help: "a domain whose users isched delivers for", placeholder: "DOMAIN" }),
  listen: hostPort("address and port of the iSchedule endpoint", "127.0.0.1:8080"),
  tlsCert: flag.string({ help: "TLS certificate chain (PEM) for the endpoint", placeholder: "FILE" }),
  tlsKey: flag.string({ help: "TLS private key (PEM) for the endpoint", placeholder: "FILE" }),
  acmeEmail: flag.string({
    help: "get and renew the endpoint's certificate from an ACME CA (Let's Encrypt by default); the CA's mail goes here",
    placeholder: "ADDRESS",
  }),
  acmeDirectory: flag.stringWithDefault({
    help: "the ACME CA's directory URL",
    placeholder: "URL",
    defaultValue: LETS_ENCRYPT_DIRECTORY,
  }),
  hostname: flag.list({
    help: "a name peers reach the endpoint by, for the ACME certificate [default: each --domain]",
    placeholder: "NAME",
  }),
  acmeChallenge: flag.oneOf(["http-01", "tls-alpn-01"], {
    help: "how the CA checks the names: http-01 on --acme-http-listen, or tls-alpn-01 on the endpoint's port",
    defaultValue: "http-01",
  }),
  acmeHttpListen: flag.custom<ReturnType<typeof parseListenAddress> | undefined>(parseListenAddress, {
    help: "the plain-HTTP listener for http-01 challenges; it sends everything else to https [default: the --listen host, port 80]",
    placeholder: "HOST:PORT",
    defaultValue: undefined,
    defaultText: "the --listen host, port 80",
  }),
  acmeCaFile: flag.string({
    help: "CA certificates (PEM) trusted for the ACME server's own HTTPS (a private CA)",
    placeholder: "FILE",
  }),
  data: flag.stringWithDefault({
    help: "folder for the database and keys (created on first start)",
    placeholder: "DIR",
    defaultValue: "data",
  }),
  database: flag.custom<string | undefined>(parseDatabaseUrl, {
    help: "keep messages, queue, keys and settings in this PostgreSQL database instead of DATA/isched.db, so that several nodes serve together (postgres://USER:PASSWORD@HOST:PORT/DB)",
    placeholder: "URL",
    defaultValue: undefined,
    defaultText: "SQLite in --data",
  }),
  nodeId: flag.custom<string | undefined>(parseNodeId, {
    help: "this node's name among the nodes on one --database: its leases and heartbeat carry it",
    placeholder: "NAME",
    defaultValue: undefined,
    defaultText: "the host name",
  }),
  leaseTime: boundedDuration(
    "how long a delivery attempt holds its deliveries without renewing; with --database, how soon another node takes over those of a node that died",
    { defaultMs: DEFAULT_LEASE_MS, minMs: 2000, maxMs: 3_600_000 },
  ),
  dkimKey: flag.string({ help: "sign with this private key instead of isched's own", placeholder: "FILE" }),
  dkimSelector: selectorFlag("the selector of --dkim-key"),
  deliver: flag.list({
    help: "local delivery: [DOMAIN=]store | imip | ischedule:URL | webhook:URL (default store)",
    placeholder: "TARGET",
  }),
  webhookSecretFile: flag.string({
    help: "shared secret for signing webhook requests (HMAC-SHA256)",
    placeholder: "FILE",
  }),
  smtp: flag.string({ help: "mail relay for iMIP: smtp[s]://[user:pass@]host[:port]", placeholder: "URL" }),
  imipFrom: flag.string({
    help: "From address of iMIP mail [default: isched@FIRST-DOMAIN]",
    placeholder: "ADDRESS",
  }),
  path: flag.list({ help: "another path that serves the endpoint (e.g. /ischedule)", placeholder: "PATH" }),
  trust: flag.list({
    help: "peer policy: DOMAIN=dkim | deny | unsigned:CIDR[,CIDR] (DOMAIN may be *); dkim and unsigned may end with ,signers=D[,D]: signing domains also accepted for DOMAIN's users",
    placeholder: "RULE",
  }),
  alignment: flag.oneOf(["relaxed", "strict"], {
    help: "which signing domains d= may speak for an Originator: relaxed, any in its organisation (Public Suffix List, RFC 7489 §3.1); strict, its domain or a parent",
    defaultValue: "relaxed",
  }),
  trustedProxy: flag.custom(parseTrustedProxies, {
    help: "reverse proxies whose Forwarded/X-Forwarded-For headers give the client's address",
    placeholder: "CIDR,...",
    defaultValue: [],
    defaultText: "none",
  }),
  peerKey: flag.list({
    help: "a peer's public key received out of band (PEM or DKIM record)",
    placeholder: "DOMAIN:SELECTOR=FILE",
  }),
  maxRecipients: flag.int({
    help: "recipients per request",
    defaultValue: DEFAULT_LIMITS.maxRecipients,
    min: 1,
    max: 100_000,
  }),
  maxContentLength: flag.int({
    help: "largest request body in bytes",
    placeholder: "BYTES",
    defaultValue: DEFAULT_LIMITS.maxContentLength,
    min: 1024,
    max: 64 * 1024 * 1024,
  }),
  minDateTime: utcDateTime("earliest date accepted in a message", DEFAULT_LIMITS.minDateTime),
  maxDateTime: utcDateTime("latest date accepted in a message", DEFAULT_LIMITS.maxDateTime),
  maxInstances: flag.int({
    help: "recurrence instances of a bounded rule (COUNT/UNTIL)",
    defaultValue: DEFAULT_LIMITS.maxInstances,
    min: 1,
  }),
  administrator: flag.string({
    help: "contact URI advertised in capabilities [default: mailto:postmaster@FIRST-DOMAIN]",
    placeholder: "URI",
  }),
  deliveryDeadline: flag.durationMs({
    help: "how long a POST waits for the local calendar before answering 1.1 (held: isched delivers it later)",
    defaultValue: 3000,
  }),
  retry: flag.custom(parseRetrySchedule, {
    help: "retry schedule for deliveries",
    placeholder: "SCHEDULE",
    defaultValue: parseRetrySchedule("1m,5m,15m,1h,4h,12h"),
    defaultText: "1m,5m,15m,1h,4h,12h",
  }),
  dnsServer: dnsServerFlag(),
  caFile: flag.string({
    help: "extra CA certificates (PEM) trusted for peers, key servers and targets",
    placeholder: "FILE",
  }),
  allowPrivatePeers: flag.bool({
    help: "let peers' DNS point isched at loopback/private addresses (tests, labs)",
  }),
  allowSha1: flag.bool({ help: "accept a=rsa-sha1 signatures (RFC 8301 forbids them)" }),
  console: hostPort("address and port of the admin console and API", "127.0.0.1:8081"),
  apiTokenFile: flag.string({
    help: "API token [default: DATA/api-token, made on first start]",
    placeholder: "FILE",
  }),
  adminPasswordFile: flag.string({
    help: "the console's administrator password [default: set it with the setup token printed at start]",
    placeholder: "FILE",
  }),
  consoleInsecure: flag.bool({
    help: "allow --console on a non-loopback address without TLS (passwords in clear)",
  }),
  peer: flag.list({
    help: "static route: DOMAIN=URL[,key=FILE,selector=S,trust=dkim|deny,sign=no,legacy-http]; DOMAIN=legacy-http allows this peer plain HTTP (_ischedule._tcp, redirects to http://)",
    placeholder: "ROUTE",
  }),
  fallbackAfter: flag.custom<number | undefined>(parseDuration, {
    help: "email (iMIP) a remote recipient not reached by iSchedule within this time [default: when retries run out]",
    placeholder: "DURATION",
    defaultValue: undefined,
  }),
  signUnpublished: flag.bool({
    help: "sign with a key before isched sees it in DNS (a peer that looks too early refuses, CalendarServer until it restarts)",
  }),
  walkParents: flag.bool({
    help: "look for _ischedules._tcp SRV records at parent domains too (draft §4.1)",
  }),
  smtpListen: flag.custom<ReturnType<typeof parseListenAddress> | undefined>(parseListenAddress, {
    help: "run the SMTP intake here: iMIP from your calendar servers becomes iSchedule",
    placeholder: "HOST:PORT",
    defaultValue: undefined,
  }),
  smtpAllow: flag.custom(parseCidrList, {
    help: "client addresses allowed to use the SMTP intake",
    placeholder: "CIDR,...",
    defaultValue: parseCidrList("127.0.0.1,::1"),
    defaultText: "127.0.0.1,::1",
  }),
  smtpAuthFile: flag.string({
    help: "require SMTP AUTH with these accounts (user:password lines)",
    placeholder: "FILE",
  }),
  smtpRelay: flag.string({
    help: "smarthost for mail that does not go by iSchedule: smtp[s]://host[:port]",
    placeholder: "URL",
  }),
  smtpMaxSize: flag.int({
    help: "largest message the SMTP intake accepts",
    placeholder: "BYTES",
    defaultValue: 10 * 1024 * 1024,
    min: 1024,
  }),
  verifyDeadline: boundedDuration(
    "one deadline for an inbound signature's check, key retrieval included (temporary failure, 503, after it)",
    { defaultMs: DEFAULT_VERIFY_DEADLINE_MS, minMs: 1000, maxMs: 120_000 },
  ),
  maxSignatureAge: boundedDuration(
    "an inbound signature without x= is refused this long after its t= (x= itself counts for 24h at most)",
    {
      defaultMs: DEFAULT_MAX_SIGNATURE_AGE_SECONDS * 1000,
      minMs: 60_000,
      maxMs: MAX_SIGNATURE_LIFETIME_SECONDS * 1000,
    },
  ),
  maxKeyFetches: flag.int({
    help: "inbound requests waiting at once for a signer's key from the network (more get 503)",
    defaultValue: DEFAULT_LOOKUP_LIMITS.maxWaiting,
    min: 1,
    max: 10_000,
  }),
  maxKeyFetchesPerDomain: flag.int({
    help: "of those, for one signing domain",
    defaultValue: DEFAULT_LOOKUP_LIMITS.maxWaitingPerDomain,
    min: 1,
    max: 10_000,
  }),
  maxDeliveries: flag.int({ help: "delivery attempts at once", defaultValue: 32, min: 1, max: 1000 }),
  maxPerPeer: flag.int({
    help: "delivery attempts at once to one peer domain or local target (from all the nodes together on PostgreSQL)",
    defaultValue: 8,
    min: 1,
    max: 1000,
  }),
  shutdownTimeout: boundedDuration(
    "on SIGTERM or SIGINT: stop accepting, let delivery attempts finish or give them back to the queue, and close the database, all within this time (keep it below systemd's TimeoutStopSec)",
    { defaultMs: DEFAULT_SHUTDOWN_TIMEOUT_MS, minMs: 1000, maxMs: 600_000 },
  ),
  sync: flag.oneOf(["normal", "full"], {
    help: "SQLite durability: normal survives a crash, full also a power cut",
    defaultValue: "normal",
  }),
  logLevel: flag.oneOf(["debug", "info", "warn", "error"], {
    help: "least important log lines shown",
    defaultValue: "info",
  }),
  ...opsFlags,
};

export type ServeFlags = FlagValues<typeof serveFlags>;

/** --trusted-proxy: proxies that may name the client; all of the Internet may not. */
function parseTrustedProxies(raw: string): Cidr[] {
  const ranges = parseCidrList(raw);
  if (ranges.length === 0) throw new Error("give the proxies' addresses");
  if (coversEveryAddress(ranges) !== undefined)
    throw new Error(`"${raw}" covers every address: anyone could name any client address`);
  return ranges;
}
