/**
 * The server's configuration, checked once at start-up: typed values from the `isched serve` flags,
 * every mistake refused with a sentence that names the flag (never silently replaced by a default).
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { HostPort } from "../cli/parse-values.ts";
import type { PrivateKeyEntry } from "../dkim/private-exchange-source.ts";
import { keyRecordFromFile } from "../dkim/private-exchange-source.ts";
import { isDomainName, normalizeDomain, selfAndParents } from "../dns/names.ts";
import { type Cidr, coversEveryAddress, parseCidrList } from "../net/cidr.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";

/** A configuration mistake; the command line reports it as a usage error. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export type LocalTargetSpec =
  | { readonly kind: "store" }
  | {
      readonly kind: "ischedule";
      readonly url: string;
      readonly username?: string;
      readonly password?: string;
    }
  | { readonly kind: "webhook"; readonly url: string }
  | { readonly kind: "imip" };

export interface DeliverRule {
  /** undefined: every hosted domain without a rule of its own. */
  readonly domain?: string;
  readonly target: LocalTargetSpec;
}

export type TrustPolicy =
  | { readonly mode: "dkim" }
  | { readonly mode: "deny" }
  /** Unsigned requests accepted from these addresses; signed ones still verified. */
  | { readonly mode: "unsigned"; readonly from: readonly Cidr[] };

export interface TrustRule {
  /** A domain, or "*" for every domain without a rule. */
  readonly domain: string;
  readonly policy: TrustPolicy;
}

/** What a target label looks like in logs, the database and the console: never a password. */
export function describeTarget(t: LocalTargetSpec): string {
  switch (t.kind) {
    case "store":
      return "store";
    case "imip":
      return "imip";
    default:
      return `${t.kind}:${t.url}`;
  }
}

/** `[DOMAIN=]store | imip | ischedule:URL | webhook:URL`; a URL may carry user:password (basic auth). */
export function parseDeliverRule(raw: string): DeliverRule {
  let domain: string | undefined;
  let spec = raw.trim();
  const eq = spec.indexOf("=");
  const colon = spec.indexOf(":");
  if (eq !== -1 && (colon === -1 || eq < colon)) {
    domain = spec.slice(0, eq);
    spec = spec.slice(eq + 1);
    if (!isDomainName(domain)) throw new ConfigError(`--deliver: "${domain}" is not a domain name`);
    domain = normalizeDomain(domain);
  }
  if (spec === "store" || spec === "imip") return { domain, target: { kind: spec } };
  const m = /^(ischedule|webhook):(.*)$/.exec(spec);
  if (!m) {
    throw new ConfigError(`--deliver: "${raw}" is not [DOMAIN=]store, imip, ischedule:URL or webhook:URL`);
  }
  let url: URL;
  try {
    url = new URL(m[2]!);
  } catch {
    throw new ConfigError(`--deliver: "${m[2]}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`--deliver: ${m[1]} targets need an http: or https: URL, not ${url.protocol}`);
  }
  if (m[1] === "webhook") {
    if (url.username || url.password)
      throw new ConfigError(
        "--deliver: webhook URLs authenticate with --webhook-secret-file, not a password in the URL",
      );
    return { domain, target: { kind: "webhook", url: url.toString() } };
  }
  const username = url.username ? decodeURIComponent(url.username) : undefined;
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  url.username = "";
  url.password = "";
  return { domain, target: { kind: "ischedule", url: url.toString(), username, password } };
}

/** `DOMAIN=dkim`, `DOMAIN=deny`, `DOMAIN=unsigned:CIDR[,CIDR...]`; DOMAIN may be `*`. */
export function parseTrustRule(raw: string): TrustRule {
  const eq = raw.indexOf("=");
  if (eq === -1)
    throw new ConfigError(`--trust: "${raw}" needs DOMAIN=POLICY (dkim, deny, unsigned:ADDRESSES)`);
  const domainText = raw.slice(0, eq).trim();
  const policyText = raw.slice(eq + 1).trim();
  if (domainText !== "*" && !isDomainName(domainText))
    throw new ConfigError(`--trust: "${domainText}" is not a domain name or *`);
  const domain = domainText === "*" ? "*" : normalizeDomain(domainText);
  if (policyText === "dkim" || policyText === "deny") return { domain, policy: { mode: policyText } };
  const m = /^unsigned:(.+)$/.exec(policyText);
  if (!m)
    throw new ConfigError(`--trust ${domainText}: "${policyText}" is not dkim, deny or unsigned:ADDRESSES`);
  let from: Cidr[];
  try {
    from = parseCidrList(m[1]!);
  } catch (e) {
    throw new ConfigError(`--trust ${domainText}: ${(e as Error).message}`);
  }
  const open = openRelayProblem(from, domainText);
  if (open) throw new ConfigError(`--trust ${domainText}=${policyText}: ${open}`);
  return { domain, policy: { mode: "unsigned", from } };
}

/**
 * Why accepting unsigned requests from these addresses is refused, or undefined: ranges that cover
 * every IPv4 or every IPv6 address let anyone on the Internet speak, unsigned, for `domain` (for `*`,
 * for every domain: an open relay into your calendars).
 */
export function openRelayProblem(from: readonly Cidr[], domain: string): string | undefined {
  const family = coversEveryAddress(from);
  if (family === undefined) return undefined;
  return (
    `unsigned requests from every IPv${family} address would let anyone speak for ` +
    `${domain === "*" ? "every domain" : domain} without a signature; list your own servers' addresses`
  );
}

/** `DOMAIN:SELECTOR=FILE`: a peer's public key received out of band (private-exchange). */
export function parsePeerKey(raw: string): PrivateKeyEntry {
  const m = /^([^:=]+):([^=]+)=(.+)$/.exec(raw);
  if (!m) throw new ConfigError(`--peer-key: "${raw}" is not DOMAIN:SELECTOR=FILE`);
  const [, domain, selector, file] = m as unknown as [string, string, string, string];
  if (!isDomainName(domain)) throw new ConfigError(`--peer-key: "${domain}" is not a domain name`);
  if (!isDomainName(selector)) throw new ConfigError(`--peer-key: "${selector}" is not a selector`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(
      `--peer-key ${domain}:${selector}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  try {
    return { domain: normalizeDomain(domain), selector, record: keyRecordFromFile(text), where: file };
  } catch (e) {
    throw new ConfigError(`--peer-key ${domain}:${selector}: ${file}: ${(e as Error).message}`);
  }
}

/** The hosted domain used when none is given: this host's domain, or localhost. */
export function defaultDomain(): string {
  const host = hostname().toLowerCase();
  const dot = host.indexOf(".");
  return dot !== -1 && isDomainName(host.slice(dot + 1)) ? host.slice(dot + 1) : "localhost";
}

export function readSecretFile(flag: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    throw new ConfigError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (text === "") throw new ConfigError(`${flag}: ${path} is empty`);
  return text;
}

export interface Limits {
  readonly maxRecipients: number;
  readonly maxContentLength: number;
  /** iCalendar UTC DATE-TIME, e.g. 19000101T000000Z. */
  readonly minDateTime: string;
  readonly maxDateTime: string;
  readonly maxInstances: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxRecipients: 100,
  maxContentLength: 1024 * 1024,
  minDateTime: "19000101T000000Z",
  maxDateTime: "21001231T235959Z",
  maxInstances: 10_000,
};

export const DEFAULT_VERIFY_DEADLINE_MS = 10_000;

export interface ServeConfig {
  readonly domains: readonly string[];
  readonly listen: HostPort;
  readonly tls?: { readonly cert: string; readonly key: string; readonly certFile: string };
  readonly dataDir: string;
  readonly dkimKeyFile?: string;
  readonly dkimSelector?: string;
  readonly deliver: readonly DeliverRule[];
  readonly webhookSecret?: string;
  readonly paths: readonly string[];
  readonly trust: readonly TrustRule[];
  readonly limits: Limits;
  readonly administrator: string;
  /** How long the endpoint waits for a local target before answering 1.0;Pending. */
  readonly deliveryDeadlineMs: number;
  /** How long the endpoint waits for a request body to arrive in full (default 30 s). */
  readonly bodyTimeoutMs?: number;
  readonly retryScheduleMs: readonly number[];
  readonly dnsServer?: HostPort;
  readonly ca?: string;
  readonly allowPrivatePeers: boolean;
  readonly allowSha1: boolean;
  readonly peerKeys: readonly PrivateKeyEntry[];
  readonly console: HostPort;
  readonly apiToken?: string;
  readonly smtpUrl?: string;
  readonly imipFrom?: string;
  readonly sync: "normal" | "full";
  /** Static routes to peers (`--peer`). */
  readonly peers?: readonly PeerRoute[];
  /** Remote deliveries not done by then go by iMIP (when --smtp is set); undefined: only when retries run out. */
  readonly fallbackAfterMs?: number;
  /** Sign with a key before it is seen in DNS (--sign-unpublished); default: wait (key-publication.ts). */
  readonly signUnpublished?: boolean;
  /** Strip leftmost labels of a recipient domain without SRV (draft §4.1). */
  readonly walkParents?: boolean;
  /** Delivery attempts at once, in all and per target (a peer domain or a local target). */
  readonly maxDeliveries?: number;
  readonly maxPerTarget?: number;
  /**
   * Reverse proxies whose Forwarded / X-Forwarded-For headers give the client's address, for the
   * endpoint and the console (src/net/client-address.ts).
   */
  readonly trustedProxies?: readonly Cidr[];
  /** One deadline for an inbound request's DKIM verification, key retrieval included (default 10 s). */
  readonly verifyDeadlineMs?: number;
  /** A signature without x= is refused this long after its t= (default 1 hour). */
  readonly maxSignatureAgeMs?: number;
  /** Inbound requests waiting for a signer's key from the network, in all and per signing domain. */
  readonly maxKeyFetches?: number;
  readonly maxKeyFetchesPerDomain?: number;
  /** The SMTP intake (issue 6): where it listens, who may use it, where other mail goes. */
  readonly smtpIntake?: {
    readonly listen: HostPort;
    readonly allow: readonly Cidr[];
    readonly authFile?: string;
    readonly relay?: string;
    readonly maxSizeBytes: number;
  };
}

/** The rule for a domain: its own or its nearest parent's, else the catch-all `*`, else DKIM required. */
export function trustFor(rules: readonly TrustRule[], domain: string): TrustPolicy {
  const nearest = selfAndParents(domain)
    .map((d) => rules.find((r) => r.domain === d))
    .find((r) => r !== undefined);
  return (nearest ?? rules.find((r) => r.domain === "*"))?.policy ?? { mode: "dkim" };
}

/** The local target of a hosted domain: its own rule, else the catch-all, else the store. */
export function targetFor(rules: readonly DeliverRule[], domain: string): LocalTargetSpec {
  return (
    (rules.find((r) => r.domain === domain) ?? rules.find((r) => r.domain === undefined))?.target ?? {
      kind: "store",
    }
  );
}

/** `--peer D=URL,key=FILE[,selector=S]`: the peer's key as a private-exchange key. */
export function peerRouteKeys(routes: readonly PeerRoute[]): PrivateKeyEntry[] {
  return routes
    .filter((r) => r.keyFile)
    .map((r) => {
      let text: string;
      try {
        text = readFileSync(r.keyFile!, "utf8");
      } catch (e) {
        throw new ConfigError(
          `--peer ${r.domain}: cannot read key=${r.keyFile} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
        );
      }
      try {
        return {
          domain: r.domain,
          selector: r.selector ?? "*",
          record: keyRecordFromFile(text),
          where: r.keyFile!,
        };
      } catch (e) {
        throw new ConfigError(`--peer ${r.domain}: key=${r.keyFile}: ${(e as Error).message}`);
      }
    });
}
