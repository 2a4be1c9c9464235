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
import { isPublicSuffix } from "../dns/organizational-domain.ts";
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

/**
 * Signing domains accepted for a peer's users besides those alignment accepts (`signers=`): a hosting
 * provider that signs for its customers' domains, a CalendarServer with one DKIM domain for several
 * mail domains (src/inbound/signer-alignment.ts).
 */
/** How a signing domain must relate to the Originator's domain (src/inbound/signer-alignment.ts). */
export type AlignmentMode = "strict" | "relaxed";

export interface SignerList {
  /** Lower-case domain names, matched exactly. */
  readonly domains: readonly string[];
  /** Which rule names them, for the message log: `--trust example.net`, `the console's policy for example.net`. */
  readonly namedBy: string;
}

export type TrustPolicy =
  | { readonly mode: "dkim"; readonly signers?: SignerList }
  | { readonly mode: "deny" }
  /** Unsigned requests accepted from these addresses; signed ones still verified. */
  | { readonly mode: "unsigned"; readonly from: readonly Cidr[]; readonly signers?: SignerList };

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

/**
 * `DOMAIN=dkim`, `DOMAIN=deny`, `DOMAIN=unsigned:CIDR[,CIDR...]`; DOMAIN may be `*`. dkim and
 * unsigned may end with `,signers=D[,D...]`: signing domains accepted for DOMAIN's users.
 */
export function parseTrustRule(raw: string): TrustRule {
  const eq = raw.indexOf("=");
  if (eq === -1)
    throw new ConfigError(`--trust: "${raw}" needs DOMAIN=POLICY (dkim, deny, unsigned:ADDRESSES)`);
  const domainText = raw.slice(0, eq).trim();
  const [policyText, signersText] = splitSigners(raw.slice(eq + 1).trim());
  if (domainText !== "*" && !isDomainName(domainText))
    throw new ConfigError(`--trust: "${domainText}" is not a domain name or *`);
  const domain = domainText === "*" ? "*" : normalizeDomain(domainText);
  const signers = signersText === undefined ? undefined : parseSigners(domainText, signersText);
  if (signers && policyText === "deny")
    throw new ConfigError(`--trust ${domainText}=deny: signers= does not go with deny`);
  if (policyText === "dkim" || policyText === "deny")
    return {
      domain,
      policy: policyText === "dkim" && signers ? { mode: "dkim", signers } : { mode: policyText },
    };
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
  return { domain, policy: signers ? { mode: "unsigned", from, signers } : { mode: "unsigned", from } };
}

/** `dkim,signers=a,b` → [`dkim`, `a,b`]. */
function splitSigners(policyText: string): [string, string | undefined] {
  const at = policyText.search(/(^|,)\s*signers=/);
  if (at === -1) return [policyText, undefined];
  const rest = policyText.slice(at);
  return [policyText.slice(0, at).trim(), rest.slice(rest.indexOf("=") + 1)];
}

function parseSigners(domainText: string, text: string): SignerList {
  const list = readSignerList(domainText, text);
  if ("problem" in list) throw new ConfigError(`--trust ${domainText}: ${list.problem}`);
  return { domains: list.domains, namedBy: `--trust ${normalizeDomain(domainText)}` };
}

/**
 * The signing domains of a `signers=` list, or why the list is refused: each must be a domain name,
 * not a public suffix (it would speak for everyone under it), and the rule must name one domain
 * (`*` with signers would let them speak for every domain). Hosted domains are checked where the
 * hosted domains are known (serve.ts, the console).
 */
export function readSignerList(
  domainText: string,
  text: string,
): { domains: string[] } | { problem: string } {
  const refuse = (problem: string) => ({ problem });
  if (domainText === "*") return refuse("signers= needs a domain: on * they could speak for every domain");
  const domains = text
    .split(/[\s,]+/)
    .map((d) => d.trim())
    .filter((d) => d !== "");
  if (domains.length === 0) return refuse("signers= names no domain");
  for (const d of domains) {
    if (!isDomainName(d)) return refuse(`signers=: "${d}" is not a domain name`);
    if (isPublicSuffix(d)) return refuse(`signers=: ${d} is a public suffix, which cannot sign for anyone`);
  }
  if (isPublicSuffix(domainText))
    return refuse(
      `signers= on ${domainText}, a public suffix, would let them speak for every domain under it`,
    );
  return { domains: [...new Set(domains.map(normalizeDomain))] };
}

/**
 * Why a signer list may not be set on `domain`, given the hosted domains: only isched signs for its
 * own domains and their subdomains, and a hosted name cannot be a remote peer's signer.
 */
export function hostedSignerProblem(
  domain: string,
  signers: readonly string[],
  hosted: (domain: string) => boolean,
): string | undefined {
  const under = (d: string) => selfAndParents(d).find(hosted);
  const own = under(domain);
  if (own !== undefined)
    return `signers= on ${domain}: ${own} is served by this server, and only this server signs for it`;
  for (const s of signers) {
    const ours = under(s);
    if (ours !== undefined)
      return `signers=: ${s} is ${ours === s ? "" : `under ${ours}, `}a domain served by this server, not a peer's signer`;
  }
  return undefined;
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
  /** strict: d= is the Originator's domain or a parent; relaxed (default): or in its organisation. */
  readonly alignment?: AlignmentMode;
  readonly limits: Limits;
  readonly administrator: string;
  /** How long the endpoint waits for a local target before answering 1.1 (held: src/inbound/intake.ts). */
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
