/**
 * serve's flags (serve-flags.ts) made into the configuration it runs with (serve-config.ts): every
 * value parsed, every file read and checked (keys, certificates, accounts, secrets), every conflict
 * refused, each mistake with a sentence that names its flag. `isched validate`, `doctor` and
 * `discover` run this same code, so they judge what serve would run.
 */
import { hostname } from "node:os";
import { LETS_ENCRYPT_DIRECTORY } from "../acme/client.ts";
import { loadSigningKey } from "../dkim/sign.ts";
import { parseSmtpUrl } from "../imip/index.ts";
import { parsePeerFlag } from "../outbound/static-routes.ts";
import { loadAuthFile } from "../smtp-intake/auth-file.ts";
import { parseNodeId } from "./database-flags.ts";
import { ConfigError } from "./errors.ts";
import { readCertificates, readFlagFile, readPrivateKey, readSecretFile, readTlsPair } from "./files.ts";
import { opsSettings } from "./ops-flags.ts";
import {
  hostedSignerProblem,
  parseDeliverRule,
  parsePeerKey,
  parseTrustRule,
  peerRouteKeys,
} from "./rules.ts";
import { type AcmeSettings, defaultDomain, type ServeConfig } from "./serve-config.ts";
import type { ServeFlags } from "./serve-flags.ts";

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
    tls:
      f.tlsCert && f.tlsKey
        ? { ...readTlsPair(f.tlsCert, f.tlsKey), certFile: f.tlsCert, keyFile: f.tlsKey }
        : undefined,
    acme: acmeSettings(f, domains),
    acmeOverridden: f.acmeEmail !== undefined && f.tlsCert !== undefined ? true : undefined,
    reloadFiles: {
      caFile: f.caFile,
      webhookSecretFile: f.webhookSecretFile,
      apiTokenFile: f.apiTokenFile,
      peerKeys: f.peerKey,
    },
    dataDir: f.data,
    database: f.database,
    nodeId: f.nodeId ?? defaultNodeId(),
    leaseMs: f.leaseTime,
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
    ops: opsSettings({ ...f, env: process.env }),
  };
}

/**
 * --acme-email and its companions: ACME runs only with --acme-email, and not when --tls-cert/--tls-key
 * give the certificate (they win; configurationWarnings() says so).
 */
function acmeSettings(f: ServeFlags, domains: readonly string[]): AcmeSettings | undefined {
  if (f.acmeEmail === undefined) {
    const stray: [string, boolean][] = [
      ["--acme-directory", f.acmeDirectory !== LETS_ENCRYPT_DIRECTORY],
      ["--hostname", f.hostname.length > 0],
      ["--acme-challenge", f.acmeChallenge !== "http-01"],
      ["--acme-http-listen", f.acmeHttpListen !== undefined],
      ["--acme-ca-file", f.acmeCaFile !== undefined],
    ];
    const given = stray.find(([, set]) => set);
    if (given) throw new ConfigError(`${given[0]} needs --acme-email (ACME is off without it)`);
    return undefined;
  }
  if (!/^[^@\s]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(f.acmeEmail))
    throw new ConfigError(`--acme-email: "${f.acmeEmail}" is not an email address`);
  let url: URL;
  try {
    url = new URL(f.acmeDirectory);
  } catch {
    throw new ConfigError(`--acme-directory: "${f.acmeDirectory}" is not a URL`);
  }
  if (url.protocol !== "https:")
    throw new ConfigError(`--acme-directory: "${f.acmeDirectory}" is not an https:// URL (RFC 8555 §6.1)`);
  const names = (f.hostname.length > 0 ? f.hostname : domains).map((raw) => {
    const n = raw.toLowerCase().replace(/\.$/, "");
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(n) || /^[0-9.]+$/.test(n))
      throw new ConfigError(`--hostname: "${raw}" is not a DNS name`);
    return n;
  });
  if (f.acmeChallenge !== "http-01" && f.acmeHttpListen !== undefined)
    throw new ConfigError("--acme-http-listen is for --acme-challenge http-01");
  if (f.tlsCert !== undefined) return undefined;
  return {
    email: f.acmeEmail,
    directoryUrl: f.acmeDirectory,
    names: [...new Set(names)],
    challenge: f.acmeChallenge,
    httpListen:
      f.acmeChallenge === "http-01" ? (f.acmeHttpListen ?? { host: f.listen.host, port: 80 }) : undefined,
    caPem: f.acmeCaFile ? readCertificates("--acme-ca-file", f.acmeCaFile).pem : undefined,
  };
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

/**
 * The operator's signing key (--dkim-key with --dkim-selector), read and checked as it is loaded at
 * start-up (src/keys/own-keys.ts); undefined when isched makes and keeps its own keys.
 */
export function operatorKeyOf(
  c: Pick<ServeConfig, "dkimKeyFile" | "dkimSelector" | "domains">,
): { pem: string; selector: string } | undefined {
  if (c.dkimKeyFile === undefined) {
    if (c.dkimSelector !== undefined)
      throw new ConfigError(
        "--dkim-selector needs --dkim-key (without both, isched makes and keeps its own key)",
      );
    return undefined;
  }
  if (c.dkimSelector === undefined) throw new ConfigError("--dkim-key needs --dkim-selector");
  const pem = readFlagFile("--dkim-key", c.dkimKeyFile);
  try {
    loadSigningKey(pem, c.domains[0] ?? "", c.dkimSelector);
  } catch (e) {
    throw new ConfigError(`--dkim-key ${c.dkimKeyFile}: ${(e as Error).message}`);
  }
  return { pem, selector: c.dkimSelector };
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

/** Settings that work but that the operator should know about (`validate` says them too). */
export function configurationWarnings(c: ServeConfig): string[] {
  const out: string[] = [];
  if (c.acmeOverridden) out.push("--acme-email is not used: --tls-cert/--tls-key give the certificate");
  if (!c.tls && !c.acme)
    out.push(
      "no --tls-cert/--tls-key: the endpoint speaks plain HTTP; put a TLS proxy in front of it (draft §10.1 requires HTTPS)",
    );
  if (c.allowPrivatePeers)
    out.push("--allow-private-peers: remote peers may point isched at private addresses");
  return out;
}

/** The host name, as --node-id's default; one a node id cannot be asks for --node-id. */
function defaultNodeId(): string {
  try {
    return parseNodeId(hostname());
  } catch {
    throw new ConfigError(
      `--node-id: the host name "${hostname()}" cannot be a node name; give --node-id NAME`,
    );
  }
}
