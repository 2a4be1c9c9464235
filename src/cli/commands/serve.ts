/** `isched serve`: run the gateway. */
import { endpointRecords, keyRecord } from "../../console/dns-records.ts";
import { publicEndpointOf } from "../../console/keys-service.ts";
import { DEFAULT_LOOKUP_LIMITS } from "../../dkim/lookup-gate.ts";
import { loadSigningKey } from "../../dkim/sign.ts";
import { DEFAULT_MAX_SIGNATURE_AGE_SECONDS, MAX_SIGNATURE_LIFETIME_SECONDS } from "../../dkim/verify.ts";
import { parseSmtpUrl, redactSmtpUrl } from "../../imip/index.ts";
import { toICalendarUtc } from "../../ischedule/capabilities.ts";
import { type Cidr, coversEveryAddress, parseCidrList } from "../../net/cidr.ts";
import { parsePeerFlag } from "../../outbound/static-routes.ts";
import { formatRetrySchedule, parseRetrySchedule } from "../../queue/retry-policy.ts";
import { type RunningServer, startServer } from "../../server/app.ts";
import {
  ConfigError,
  DEFAULT_LIMITS,
  DEFAULT_VERIFY_DEADLINE_MS,
  defaultDomain,
  describeTarget,
  hostedSignerProblem,
  parseDeliverRule,
  parsePeerKey,
  parseTrustRule,
  peerRouteKeys,
  readSecretFile,
  type ServeConfig,
  targetFor,
} from "../../server/config.ts";
import { KEY_PROBLEM, type KeyPublicationState } from "../../server/key-publication.ts";
import { createLogger, type LogLevel } from "../../server/log.ts";
import { readCertificates, readPrivateKey, readTlsPair } from "../../server/pem-files.ts";
import { loadAuthFile } from "../../smtp-intake/auth-file.ts";
import { defineCommand } from "../command.ts";
import { effectiveLines, formatEffective } from "../effective-config.ts";
import { CommandError, UsageError } from "../errors.ts";
import { attributeToSource, type FlagValues, flag, type ParsedArgs } from "../flags.ts";
import { formatDuration, parseDuration, parseListenAddress } from "../parse-values.ts";
import { writeServingInfo } from "../running-server.ts";
import { announceConsoleAccess, type ConsoleAccess, consoleAccessFromFlags } from "./admin.ts";
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
  data: flag.stringWithDefault({
    help: "folder for the database and keys (created on first start)",
    placeholder: "DIR",
    defaultValue: "data",
  }),
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
    help: "delivery attempts at once to one peer domain or local target",
    defaultValue: 8,
    min: 1,
    max: 1000,
  }),
  sync: flag.oneOf(["normal", "full"], {
    help: "SQLite durability: normal survives a crash, full also a power cut",
    defaultValue: "normal",
  }),
  logLevel: flag.oneOf(["debug", "info", "warn", "error"], {
    help: "least important log lines shown",
    defaultValue: "info",
  }),
};

export type ServeFlags = FlagValues<typeof serveFlags>;

/** Turns the flags into a checked configuration; every problem names its flag. */
export function configFromFlags(f: ServeFlags): ServeConfig {
  const domains = f.domain.length > 0 ? f.domain.map(checkDomain) : [defaultDomain()];
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined))
    throw new ConfigError("--tls-cert and --tls-key go together");
  const deliver = f.deliver.map(parseDeliverRule);
  for (const rule of deliver) {
    if (rule.domain && !domains.includes(rule.domain))
      throw new ConfigError(`--deliver ${rule.domain}=...: ${rule.domain} is not a --domain`);
    if (rule.target.kind === "webhook" && !f.webhookSecretFile)
      throw new ConfigError("--deliver webhook:...: needs --webhook-secret-file");
    if (rule.target.kind === "imip" && !f.smtp) throw new ConfigError("--deliver imip: needs --smtp");
  }
  if (f.smtp) parseSmtpUrl(f.smtp);
  checkDkimKey(f, domains[0]!);
  if (f.smtpListen) checkSmtpIntake(f);
  if (f.minDateTime >= f.maxDateTime) throw new ConfigError("--min-date-time must be before --max-date-time");
  const peers = f.peer.map((raw) => {
    try {
      return parsePeerFlag(raw);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  });
  const trust = f.trust.map(parseTrustRule);
  const hosted = (d: string) => domains.includes(d);
  for (const t of trust) {
    const signers = t.policy.mode === "deny" ? undefined : t.policy.signers;
    const problem = signers && hostedSignerProblem(t.domain, signers.domains, hosted);
    if (problem) throw new ConfigError(`--trust ${t.domain}: ${problem}`);
  }
  for (const p of peers) {
    if (p.trust === "unsigned")
      throw new ConfigError(
        `--peer ${p.domain}: trust=unsigned needs addresses: use --trust ${p.domain}=unsigned:CIDR`,
      );
    if (p.trust && !trust.some((t) => t.domain === p.domain))
      trust.push({ domain: p.domain, policy: { mode: p.trust } });
  }
  return {
    domains,
    listen: f.listen,
    tls: f.tlsCert && f.tlsKey ? { ...readTlsPair(f.tlsCert, f.tlsKey), certFile: f.tlsCert } : undefined,
    dataDir: f.data,
    dkimKeyFile: f.dkimKey,
    dkimSelector: f.dkimSelector,
    deliver,
    webhookSecret: f.webhookSecretFile
      ? readSecretFile("--webhook-secret-file", f.webhookSecretFile)
      : undefined,
    paths: f.path.map((p) => {
      if (!/^\/[^\s?#]*$/.test(p)) throw new ConfigError(`--path: "${p}" is not an absolute path`);
      return p;
    }),
    trust,
    alignment: f.alignment,
    trustedProxies: f.trustedProxy,
    peers,
    fallbackAfterMs: f.fallbackAfter,
    walkParents: f.walkParents,
    signUnpublished: f.signUnpublished,
    maxDeliveries: f.maxDeliveries,
    maxPerTarget: f.maxPerPeer,
    verifyDeadlineMs: f.verifyDeadline,
    maxSignatureAgeMs: f.maxSignatureAge,
    maxKeyFetches: f.maxKeyFetches,
    maxKeyFetchesPerDomain: f.maxKeyFetchesPerDomain,
    smtpIntake: f.smtpListen
      ? {
          listen: f.smtpListen,
          allow: f.smtpAllow,
          authFile: f.smtpAuthFile,
          relay: f.smtpRelay,
          maxSizeBytes: f.smtpMaxSize,
        }
      : undefined,
    limits: {
      maxRecipients: f.maxRecipients,
      maxContentLength: f.maxContentLength,
      minDateTime: f.minDateTime,
      maxDateTime: f.maxDateTime,
      maxInstances: f.maxInstances,
    },
    administrator: f.administrator ?? `mailto:postmaster@${domains[0]}`,
    deliveryDeadlineMs: f.deliveryDeadline,
    retryScheduleMs: f.retry,
    dnsServer: f.dnsServer,
    ca: f.caFile ? readCertificates("--ca-file", f.caFile).pem : undefined,
    allowPrivatePeers: f.allowPrivatePeers,
    allowSha1: f.allowSha1,
    peerKeys: [...f.peerKey.map(parsePeerKey), ...peerRouteKeys(peers)],
    console: f.console,
    apiToken: f.apiTokenFile ? readSecretFile("--api-token-file", f.apiTokenFile) : undefined,
    smtpUrl: f.smtp,
    imipFrom: f.imipFrom,
    sync: f.sync,
  };
}

/** --trusted-proxy: proxies that may name the client; all of the Internet may not. */
function parseTrustedProxies(raw: string): Cidr[] {
  const ranges = parseCidrList(raw);
  if (ranges.length === 0) throw new Error("give the proxies' addresses");
  if (coversEveryAddress(ranges) !== undefined)
    throw new Error(`"${raw}" covers every address: anyone could name any client address`);
  return ranges;
}

/** --dkim-key and --dkim-selector go together, and the file holds a key isched can sign with. */
function checkDkimKey(f: ServeFlags, domain: string): void {
  if (f.dkimKey === undefined) {
    if (f.dkimSelector !== undefined)
      throw new ConfigError(
        "--dkim-selector needs --dkim-key (without both, isched makes and keeps its own key)",
      );
    return;
  }
  if (f.dkimSelector === undefined) throw new ConfigError("--dkim-key needs --dkim-selector");
  const { pem } = readPrivateKey("--dkim-key", f.dkimKey);
  try {
    loadSigningKey(pem, domain, f.dkimSelector);
  } catch (e) {
    throw new ConfigError(`--dkim-key ${f.dkimKey}: ${(e as Error).message}`);
  }
}

/** The SMTP intake's settings, checked here rather than when it starts (after the data folder). */
function checkSmtpIntake(f: ServeFlags): void {
  if (f.smtpAllow.length === 0)
    throw new ConfigError("--smtp-allow: at least one client address or range is needed");
  try {
    if (f.smtpAuthFile !== undefined) loadAuthFile(f.smtpAuthFile);
    if (f.smtpRelay !== undefined) parseSmtpUrl(f.smtpRelay, "--smtp-relay");
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

function checkDomain(raw: string): string {
  const d = raw.toLowerCase().replace(/\.$/, "");
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(d))
    throw new ConfigError(`--domain: "${raw}" is not a domain name`);
  return d;
}

/** One line per hosted domain: can peers find the key isched signs with? */
function keyLines(c: ServeConfig, states: readonly KeyPublicationState[]): string[] {
  return states.map((k) => {
    const head = `  DKIM key      ${k.domain}: ${k.name}`;
    if (k.visible) return `${head} is in DNS`;
    if (c.signUnpublished) return `${head} is not in DNS yet; signing anyway (--sign-unpublished)`;
    return `${head} is not in DNS yet: outbound iSchedule waits until it is (isched looks every minute; --sign-unpublished signs anyway)`;
  });
}

/**
 * The configuration `serve` runs with, checked as `serve` checks it (files read, keys loaded,
 * conflicts refused): one UsageError naming the flag, or its ISCHED_* variable when it came from
 * there. `validate`, `doctor` and `discover` call this too, so they judge what serve would run.
 */
export function serveSettings(parsed: Pick<ParsedArgs<typeof serveFlags>, "flags" | "sources">): {
  config: ServeConfig;
  access: ConsoleAccess;
} {
  try {
    const config = configFromFlags(parsed.flags);
    return { config, access: consoleAccessFromFlags(parsed.flags, config) };
  } catch (e) {
    if (e instanceof ConfigError || e instanceof SyntaxError || e instanceof UsageError)
      throw new UsageError(attributeToSource(e.message, parsed));
    throw e;
  }
}

/** The flags set on the command line or in the environment (secrets redacted), and stray variables. */
export function startupConfiguration(
  parsed: Pick<ParsedArgs<typeof serveFlags>, "sources" | "strayVariables">,
): string {
  const given = effectiveLines(serveFlags, parsed, { onlyGiven: true });
  const rest = Object.keys(serveFlags).length - given.length;
  const lines = [
    given.length > 0
      ? formatEffective(given, "configuration (secrets redacted):")
      : "configuration: no flag or ISCHED_* variable given",
    `  and ${rest} flags at their defaults ('isched validate' with the same flags lists them all)`,
    ...strayWarnings(parsed),
  ];
  return lines.join("\n");
}

/** One warning per ISCHED_* variable no command knows. */
export function strayWarnings(parsed: Pick<ParsedArgs<typeof serveFlags>, "strayVariables">): string[] {
  return (parsed.strayVariables ?? []).map(
    (v) =>
      `warning: ${v.name} is set but is no flag's variable, so it is ignored${v.hint ? ` (did you mean ${v.hint}?)` : ""}`,
  );
}

/**
 * For each key made at this start, every record a peer needs: the SRV record that says where our
 * endpoint is (draft §4.2), the TXT path record when the path is not the well-known one (§4.3), and
 * the key's TXT record.
 */
function newKeyRecords(c: ServeConfig, server: RunningServer): string {
  const publicEndpoint = publicEndpointOf({
    db: server.db,
    domains: c.domains,
    tls: c.tls !== undefined,
    listenPort: Number(new URL(server.url).port),
  });
  const out: string[] = [];
  for (const k of server.keys.generated) {
    const records = [
      ...endpointRecords(k.domain, publicEndpoint.endpoint).filter((r) => !r.optional),
      keyRecord(k.domain, k.selector, k.record, "active"),
    ];
    out.push("", `New DKIM key for ${k.domain}: publish these records:`, ...records.map((r) => r.zoneLine));
  }
  if (!publicEndpoint.fromSetting)
    out.push(
      `(the SRV record names ${publicEndpoint.endpoint.host}:${publicEndpoint.endpoint.port}, a guess: set where peers reach you on the console's Keys page)`,
    );
  return `${out.join("\n")}\n`;
}

/** Settings that work but that the operator should know about (`validate` says them too). */
export function configurationWarnings(c: ServeConfig): string[] {
  const out: string[] = [];
  if (!c.tls)
    out.push(
      "no --tls-cert/--tls-key: the endpoint speaks plain HTTP; put a TLS proxy in front of it (draft §10.1 requires HTTPS)",
    );
  if (c.allowPrivatePeers)
    out.push("--allow-private-peers: remote peers may point isched at private addresses");
  return out;
}

/** What the operator sees at start-up: every setting that matters, defaults included. */
function summary(
  c: ServeConfig,
  server: { url: string; consoleUrl: string; problems: () => readonly { id: string; text: string }[] },
  keys: readonly KeyPublicationState[],
): string {
  const urls = server;
  const lines = [
    `isched is serving ${c.domains.join(", ")}`,
    `  endpoint      ${urls.url}/.well-known/ischedule${c.paths.length ? ` (also ${c.paths.join(", ")})` : ""}`,
    `  console/API   ${urls.consoleUrl}/api/v1 (token in ${c.apiToken ? "--api-token-file" : `${c.dataDir}/api-token`})`,
    `  data          ${c.dataDir}`,
    ...c.domains.map((d) => `  deliver       ${d} -> ${describeTarget(targetFor(c.deliver, d))}`),
    `  limits        ${c.limits.maxRecipients} recipients, ${c.limits.maxContentLength} bytes, ${c.limits.minDateTime}..${c.limits.maxDateTime}, ${c.limits.maxInstances} instances`,
    `  retry         ${formatRetrySchedule(c.retryScheduleMs)}; answer 1.1 (held) after ${c.deliveryDeadlineMs} ms`,
    `  iMIP          ${c.smtpUrl ? redactSmtpUrl(c.smtpUrl) : "off (no --smtp)"}`,
    `  SMTP intake   ${c.smtpIntake ? `${c.smtpIntake.listen.host}:${c.smtpIntake.listen.port}, relay ${c.smtpIntake.relay ? redactSmtpUrl(c.smtpIntake.relay) : "none"}` : "off (no --smtp-listen)"}`,
    ...keyLines(c, keys),
  ];
  for (const w of configurationWarnings(c)) lines.push(`warning: ${w}`);
  // The DKIM key lines above already say what the key problems would.
  for (const p of server.problems()) if (!p.id.startsWith(KEY_PROBLEM)) lines.push(`warning: ${p.text}`);
  if (c.signUnpublished && keys.some((k) => !k.visible))
    lines.push(
      "warning: --sign-unpublished: a peer that verifies before the TXT record is visible refuses the request (CalendarServer keeps refusing until it restarts)",
    );
  const legacy = (c.peers ?? []).filter((p) => p.legacyHttp).map((p) => p.domain);
  if (legacy.length > 0)
    lines.splice(
      lines.findIndex((l) => l.startsWith("  SMTP intake")) + 1,
      0,
      `  legacy HTTP   ${legacy.join(", ")} (--peer D=legacy-http: plain-HTTP iSchedule allowed for these peers only)`,
    );
  return `${lines.join("\n")}\n`;
}

export const serveCommand = defineCommand({
  name: "serve",
  summary: "Run the gateway: the iSchedule endpoint, delivery workers and the admin API",
  usage:
    "serve [--domain D ...] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--data DIR] [--deliver TARGET ...] ...",
  description: [
    "Without flags it serves this host's domain on 127.0.0.1:8080 (plain HTTP), keeps messages in",
    "its own inbox (the store target), and keeps its database and keys in ./data. On first start it",
    "makes a DKIM key for each domain and prints the DNS record to publish.",
  ].join("\n"),
  flags: serveFlags,
  positionals: { min: 0, max: 0 },
  async run(parsed) {
    const f = parsed.flags;
    // Whatever isched creates (the database, its WAL, the API token) is for its own user only.
    process.umask(0o077);
    const { config, access: consoleAccess } = serveSettings(parsed);
    const log = createLogger({ level: f.logLevel as LogLevel });
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer({ config, log });
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message);
      throw new CommandError((e as Error)?.message ?? String(e));
    }
    process.stdout.write(summary(config, server, server.keyPublication.states()));
    process.stdout.write(`${startupConfiguration(parsed)}\n`);
    if (server.keys.generated.length > 0) process.stdout.write(newKeyRecords(config, server));
    await announceConsoleAccess(server, consoleAccess);
    // Where the other commands find this server (its ports may be ones the system chose).
    const forgetServing = writeServingInfo(config.dataDir, {
      endpoint: server.url,
      console: server.consoleUrl,
      smtp: server.smtpPort ? `${config.smtpIntake!.listen.host}:${server.smtpPort}` : undefined,
    });
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string) => {
        log.log("info", "shutting down", { signal });
        forgetServing();
        server.stop().then(resolve, resolve);
      };
      process.once("SIGINT", () => shutdown("SIGINT"));
      process.once("SIGTERM", () => shutdown("SIGTERM"));
    });
    return 0;
  },
});
