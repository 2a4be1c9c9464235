/**
 * Static peer routes from the operator's `--peer DOMAIN=URL[,key=FILE,selector=S,trust=...,sign=no]`
 * flags: a fixed iSchedule endpoint for a domain that publishes no SRV record (CalendarServer's
 * remoteservers.xml and Bedework's host table play this role: docs/interop.md), together with
 * how far that peer is trusted. Discovery consults these before DNS (draft §4).
 *
 * `legacy-http` is the one way to let a peer use plain HTTP, for that peer only: draft -05 removed the
 * `_ischedule._tcp` (HTTP) service and every request goes over TLS (draft §4.2, §10), but some
 * CalendarServer deployments publish only `_ischedule._tcp` or redirect to http:// (docs/interop.md). `DOMAIN=legacy-http` keeps discovery by DNS and lets it fall back to `_ischedule._tcp` and
 * follow redirects to http://; `DOMAIN=http://...,legacy-http` is a fixed plain-HTTP endpoint.
 *
 * Pure parsing: every mistake is one Error whose message names the flag, the domain and the fix, so the
 * CLI can print it as is. Key files are only named here; loading them belongs to the DKIM key sources.
 */

import { isDomainName, normalizeDomain } from "../dns/names.ts";
import { closest } from "../text/suggest.ts";

/**
 * How messages from this peer are checked on intake: `dkim` (a valid signature is required, the
 * default when absent), `unsigned` (accepted without a signature: test peers, Bedework which signs
 * nothing: docs/interop.md), `deny` (refused).
 */
export type PeerTrust = "dkim" | "unsigned" | "deny";

export interface PeerRoute {
  /** Lower case, no trailing dot. */
  readonly domain: string;
  /** The iSchedule endpoint to POST to (and to GET `?action=capabilities` from); absent: DNS discovery. */
  readonly url?: string;
  /** `legacy-http`: plain HTTP is allowed for this peer (its URL, `_ischedule._tcp`, redirects to http://). */
  readonly legacyHttp?: true;
  /** A public key file of this peer, used as a private-exchange key (draft §7.3.3). */
  readonly keyFile?: string;
  /** The DKIM selector that key is published under; absent = any selector the peer signs with. */
  readonly selector?: string;
  readonly trust?: PeerTrust;
  /** False with `sign=no`: requests to this peer go out without a DKIM-Signature. */
  readonly sign: boolean;
}

const OPTION_NAMES = ["key", "selector", "trust", "sign", "legacy-http"] as const;
type OptionName = (typeof OPTION_NAMES)[number];
const TRUST_VALUES: readonly PeerTrust[] = ["dkim", "unsigned", "deny"];

/** The draft's well-known endpoint (draft §4.4), used when a URL names only a host. */
const WELL_KNOWN_PATH = "/.well-known/ischedule";

/** The keyword that stands instead of a URL: discover by DNS, plain HTTP allowed. */
export const LEGACY_HTTP = "legacy-http";

/**
 * Parses one `--peer` value. A comma ends the URL, so a URL that contains one must write it `%2C`.
 * Throws an Error with a one-line message such as `--peer: "example.com" needs =URL`.
 */
export function parsePeerFlag(raw: string): PeerRoute {
  const text = raw.trim();
  const eq = text.indexOf("=");
  // "example.com,key=FILE" forgot the URL too: the "=" found belongs to an option.
  const comma = text.indexOf(",");
  if (eq === -1 || (comma !== -1 && comma < eq)) {
    throw new Error(`--peer: "${comma === -1 ? text : text.slice(0, comma)}" needs =URL`);
  }
  const domainText = text.slice(0, eq).trim();
  if (!isDomainName(domainText)) throw new Error(`--peer: "${domainText}" is not a domain name`);
  const domain = normalizeDomain(domainText);
  const fail = (message: string): never => {
    throw new Error(`--peer ${domain}: ${message}`);
  };

  const [first = "", ...items] = text.slice(eq + 1).split(",");
  const urlText = first.trim();
  const legacyOnly = urlText.toLowerCase() === LEGACY_HTTP;

  const seen = new Map<OptionName, string>();
  for (const item of items) {
    const part = item.trim();
    if (part === "") fail("an option is empty (two commas in a row, or a comma at the end?)");
    const at = part.indexOf("=");
    const name = (at === -1 ? part : part.slice(0, at)).trim().toLowerCase();
    if (!(OPTION_NAMES as readonly string[]).includes(name)) {
      // With four options the nearest one is always worth naming, even for a wild guess.
      fail(`unknown option "${name}" (did you mean "${closest(name, OPTION_NAMES)?.word}"?)`);
    }
    const option = name as OptionName;
    const value = at === -1 ? "" : part.slice(at + 1).trim();
    if (seen.has(option) || (option === LEGACY_HTTP && legacyOnly)) fail(`option "${option}" is given twice`);
    if (option === LEGACY_HTTP) {
      if (at !== -1) fail(`option "${LEGACY_HTTP}" takes no value`);
    } else if (value === "") fail(`option "${option}" needs a value (${option}=${PLACEHOLDER[option]})`);
    seen.set(option, value);
  }
  const legacyHttp = legacyOnly || seen.has(LEGACY_HTTP);

  const route: { -readonly [K in keyof PeerRoute]: PeerRoute[K] } = { domain, sign: true };
  if (!legacyOnly) route.url = parseRouteUrl(urlText, legacyHttp, domain, fail);
  if (legacyHttp) route.legacyHttp = true;
  const key = seen.get("key");
  if (key !== undefined) route.keyFile = key;
  const selector = seen.get("selector");
  if (selector !== undefined) {
    // RFC 6376 §3.1: a selector is one or more labels.
    if (!isDomainName(selector))
      fail(`selector "${selector}" is not a DKIM selector (labels of letters, digits, "-", "_")`);
    // A selector names a key; without key= there is nothing for it to name.
    if (key === undefined) fail(`selector=${selector} needs key=FILE (the selector names that key)`);
    route.selector = selector;
  }
  const trust = seen.get("trust");
  if (trust !== undefined) {
    if (!(TRUST_VALUES as readonly string[]).includes(trust)) {
      fail(`trust "${trust}" is not one of ${TRUST_VALUES.join(", ")}`);
    }
    route.trust = trust as PeerTrust;
    // Refusing everything from the peer leaves nothing for its key to verify: a contradiction.
    if (trust === "deny" && key !== undefined)
      fail("trust=deny refuses this peer, so key= would never be used");
  }
  const sign = seen.get("sign");
  if (sign !== undefined) {
    if (sign !== "no" && sign !== "yes") fail(`sign "${sign}" is not yes or no`);
    route.sign = sign === "yes";
  }
  return route;
}

/** Parses every `--peer` value; a domain given twice is a mistake, not an override. */
export function parsePeerFlags(raws: readonly string[]): PeerRoute[] {
  const routes: PeerRoute[] = [];
  const seen = new Set<string>();
  for (const raw of raws) {
    const route = parsePeerFlag(raw);
    if (seen.has(route.domain))
      throw new Error(`--peer ${route.domain}: given more than once (one --peer per domain)`);
    seen.add(route.domain);
    routes.push(route);
  }
  return routes;
}

const PLACEHOLDER: Record<Exclude<OptionName, "legacy-http">, string> = {
  key: "FILE",
  selector: "S",
  trust: TRUST_VALUES.join("|"),
  sign: "no",
};

function parseRouteUrl(
  text: string,
  legacyHttp: boolean,
  domain: string,
  fail: (message: string) => never,
): string {
  if (text === "") fail(`needs a URL (or ${LEGACY_HTTP}) after "="`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`"${text}" is not a URL (example: https://cal.example.com/ischedule)`);
  }
  if (url.protocol === "http:" && !legacyHttp) {
    fail(
      `"${text}" is plain http; iSchedule peers are reached over https (draft §10), unless this one is named legacy: --peer ${domain}=${text},${LEGACY_HTTP}`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(`"${text}" is not an https URL`);
  if (url.username !== "" || url.password !== "") fail(`"${url.host}": a URL with credentials is refused`);
  if (url.hash !== "") fail(`"${text}" has a fragment (#...), which HTTP never sends`);
  if (url.hostname === "") fail(`"${text}" has no host`);
  // "https://cal.example.com" (no path at all) means the draft's well-known endpoint on that host.
  if (/^https?:\/\/[^/?#]*$/i.test(text)) url.pathname = WELL_KNOWN_PATH;
  return url.href;
}
