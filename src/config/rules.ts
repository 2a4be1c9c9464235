/**
 * The value syntaxes of serve's rule flags (--deliver, --trust, --peer-key, the keys of --peer) and
 * the checks the console's peer policies share with them: each mistake is a ConfigError naming the
 * flag.
 */
import { readFileSync } from "node:fs";
import { keyRecordFromFile, type PrivateKeyEntry } from "../dkim/private-exchange-source.ts";
import { isDomainName, normalizeDomain, selfAndParents } from "../dns/names.ts";
import { isPublicSuffix } from "../dns/organizational-domain.ts";
import type { SignerList, TrustRule } from "../inbound/trust-policy.ts";
import { type Cidr, coversEveryAddress, parseCidrList } from "../net/cidr.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import { ConfigError } from "./errors.ts";
import type { DeliverRule } from "./serve-config.ts";

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
