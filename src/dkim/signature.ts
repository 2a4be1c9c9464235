/**
 * The DKIM-Signature header for HTTP (draft §7.1, RFC 6376 §3.5): parsing into a checked, typed
 * value, and writing one. Checks that need no key and no clock live here; verify.ts does the rest.
 */
import { isDomainName, isSameOrSubdomain, normalizeDomain } from "../dns/names.ts";
import { type BodyCanonicalization, type HeaderCanonicalization, lowerFieldName } from "./canonicalize.ts";
import { type Algorithm, QUERY_METHODS, type QueryMethod } from "./names.ts";
import { colonList, scanTagList, stripWhitespace, type TagSpans } from "./tag-list.ts";
import { type DkimFail, fail } from "./verdict.ts";

export interface DkimSignature {
  readonly algorithm: Algorithm;
  readonly headerCanonicalization: HeaderCanonicalization;
  readonly bodyCanonicalization: BodyCanonicalization;
  /** d=, lower-cased. */
  readonly domain: string;
  readonly selector: string;
  /** h= names as written, in order. */
  readonly signedHeaders: readonly string[];
  /** bh= without whitespace (base64). */
  readonly bodyHash: string;
  /** b= decoded. */
  readonly signature: Uint8Array;
  /** The supported q= methods, in the signer's order. */
  readonly queryMethods: readonly QueryMethod[];
  readonly timestamp?: number;
  readonly expiration?: number;
  readonly bodyLength?: number;
}

/** draft §7.1: these must be in h=. Authorization too, when the request has one. */
export const REQUIRED_SIGNED_HEADERS = [
  "content-type",
  "ischedule-version",
  "originator",
  "recipient",
] as const;

/** draft §7.1: hop-by-hop fields and Content-Length must not be signed. */
const FORBIDDEN_SIGNED_HEADERS = new Set([
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "cache-control",
  "dkim-signature",
]);

/** True for a (lower-cased) field name that h= must not include. */
export const isForbiddenLower = (lower: string): boolean =>
  FORBIDDEN_SIGNED_HEADERS.has(lower) || lower.startsWith("proxy-");

const HEADER_NAME = /^[!-9;-~]+$/;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export type SignatureParse = { ok: true; signature: DkimSignature } | DkimFail;

export interface ParseSignatureOptions {
  /** RFC 8301 forbids rsa-sha1; an operator may still allow it for old peers. */
  allowSha1?: boolean;
}

const REQUIRED_TAGS = ["v", "a", "b", "bh", "c", "d", "h", "s"] as const;

/** A base64 value without its whitespace, or undefined when it is not base64. */
function base64Value(raw: string): string | undefined {
  if (raw !== "" && BASE64.test(raw)) return raw;
  const v = stripWhitespace(raw);
  return v !== "" && BASE64.test(v) ? v : undefined;
}

/** The tags a signature uses, by name; the rest are ignored (RFC 6376 §3.2). */
interface SignatureTags {
  v: string | undefined;
  a: string | undefined;
  b: string | undefined;
  bh: string | undefined;
  c: string | undefined;
  d: string | undefined;
  h: string | undefined;
  s: string | undefined;
  q: string | undefined;
  t: string | undefined;
  x: string | undefined;
  l: string | undefined;
  i: string | undefined;
}

/** The known tags' values out of one scan (only these are copied out of the header). */
function signatureTags(value: string, spans: TagSpans): SignatureTags {
  // Every field set up front and each written by name: one object shape, no lookups by key.
  const tags: SignatureTags = {
    v: undefined,
    a: undefined,
    b: undefined,
    bh: undefined,
    c: undefined,
    d: undefined,
    h: undefined,
    s: undefined,
    q: undefined,
    t: undefined,
    x: undefined,
    l: undefined,
    i: undefined,
  };
  for (let k = 0; k < spans.count; k++) {
    const start = spans.valueStarts[k];
    const end = spans.valueEnds[k];
    switch (spans.names[k]) {
      case "v":
        tags.v = value.slice(start, end);
        break;
      case "a":
        tags.a = value.slice(start, end);
        break;
      case "b":
        tags.b = value.slice(start, end);
        break;
      case "bh":
        tags.bh = value.slice(start, end);
        break;
      case "c":
        tags.c = value.slice(start, end);
        break;
      case "d":
        tags.d = value.slice(start, end);
        break;
      case "h":
        tags.h = value.slice(start, end);
        break;
      case "s":
        tags.s = value.slice(start, end);
        break;
      case "q":
        tags.q = value.slice(start, end);
        break;
      case "t":
        tags.t = value.slice(start, end);
        break;
      case "x":
        tags.x = value.slice(start, end);
        break;
      case "l":
        tags.l = value.slice(start, end);
        break;
      case "i":
        tags.i = value.slice(start, end);
        break;
    }
  }
  return tags;
}

const ISCHEDULE_SIMPLE = ["ischedule-relaxed", "simple"] as const;

/** c= as header and body canonicalisation, lower-cased; undefined parts when it has more than two. */
function splitCanonicalization(raw: string): readonly [header: string, body: string] | undefined {
  if (raw === "ischedule-relaxed/simple") return ISCHEDULE_SIMPLE;
  const c = raw.toLowerCase();
  const slash = c.indexOf("/");
  if (slash === -1) return [c, "simple"];
  if (c.indexOf("/", slash + 1) !== -1) return undefined;
  return [c.slice(0, slash), c.slice(slash + 1)];
}

const DEFAULT_QUERY: readonly QueryMethod[] = ["dns/txt"];

/** Parses and checks one DKIM-Signature value. */
export function parseSignature(value: string, options: ParseSignatureOptions = {}): SignatureParse {
  const scanned = scanTagList(value);
  if (typeof scanned === "string")
    return fail("malformed-signature", `The DKIM-Signature is not a valid tag list: ${scanned}.`);
  const tags = signatureTags(value, scanned);
  for (const t of REQUIRED_TAGS) {
    if (tags[t] === undefined) return fail("missing-tag", `The DKIM-Signature has no ${t}= tag.`);
  }
  const domainRaw = tags.d!;
  const selector = tags.s!;
  let domain = DOMAINS.get(domainRaw);
  if (domain === undefined) {
    if (!isDomainName(domainRaw))
      return fail("malformed-signature", `d=${clip(domainRaw)} is not a domain name.`);
    domain = normalizeDomain(domainRaw);
    remember(DOMAINS, domainRaw, domain);
  }
  if (!SELECTORS.has(selector)) {
    if (!isDomainName(selector))
      return fail("malformed-signature", `s=${clip(selector)} is not a valid selector.`);
    remember(SELECTORS, selector, true);
  }
  const ids = { domain, selector };

  if (tags.v !== "1") {
    return fail("unsupported-version", `v=${clip(tags.v!)} is not supported (only v=1).`, ids);
  }

  const a = tags.a!.toLowerCase();
  if (a === "rsa-sha1" && !options.allowSha1) {
    return fail("sha1-not-allowed", "a=rsa-sha1 is refused (RFC 8301); sign with rsa-sha256.", ids);
  }
  if (a !== "rsa-sha256" && a !== "ed25519-sha256" && a !== "rsa-sha1") {
    return fail("unsupported-algorithm", `a=${clip(a)} is not supported (rsa-sha256, ed25519-sha256).`, ids);
  }

  const canonicalization = splitCanonicalization(tags.c!);
  const hc = canonicalization?.[0];
  const bc = canonicalization?.[1];
  if ((hc !== "ischedule-relaxed" && hc !== "relaxed") || (bc !== "simple" && bc !== "relaxed")) {
    return fail(
      "unsupported-canonicalization",
      `c=${clip(tags.c!)} is not supported (ischedule-relaxed/simple; relaxed also accepted).`,
      ids,
    );
  }

  const checked = checkSignedHeaders(tags.h!, hc === "ischedule-relaxed");
  if (!checked.ok) return { ...checked, ...ids };
  const signedHeaders = checked.names;

  const bodyHash = base64Value(tags.bh!);
  if (bodyHash === undefined) return fail("malformed-signature", "bh= is not base64.", ids);
  const signature = signatureData(tags.b!);
  if (signature === undefined) return fail("malformed-signature", "b= is empty or not base64.", ids);

  const queryMethods = tags.q === undefined ? DEFAULT_QUERY : supportedMethods(tags.q);
  if (queryMethods.length === 0) {
    return fail(
      "unsupported-query-method",
      `q=${clip(tags.q ?? "")} names no supported key retrieval method.`,
      ids,
    );
  }

  const timestamp = optionalNumber(tags.t);
  const expiration = optionalNumber(tags.x);
  const bodyLength = optionalNumber(tags.l);
  if (timestamp === null) return fail("malformed-signature", "t= is not a number of seconds.", ids);
  if (expiration === null) return fail("malformed-signature", "x= is not a number of seconds.", ids);
  if (bodyLength === null) return fail("malformed-signature", "l= is not a number of bytes.", ids);
  if (timestamp !== undefined && expiration !== undefined && expiration <= timestamp) {
    return fail("malformed-signature", "x= is not after t=.", ids);
  }

  const identity = tags.i;
  if (identity !== undefined) {
    const at = identity.lastIndexOf("@");
    if (at === -1 || !isSameOrSubdomain(identity.slice(at + 1), domain)) {
      return fail("malformed-signature", `i=${clip(identity)} is not in the signing domain ${domain}.`, ids);
    }
  }

  return {
    ok: true,
    signature: {
      algorithm: a,
      headerCanonicalization: hc,
      bodyCanonicalization: bc,
      domain,
      selector,
      signedHeaders,
      bodyHash,
      signature,
      queryMethods,
      timestamp,
      expiration,
      bodyLength,
    },
  };
}

/** The q= methods isched knows, in the signer's order. */
function supportedMethods(q: string): readonly QueryMethod[] {
  let methods = METHODS.get(q);
  if (methods === undefined) {
    methods = colonList(q).filter((m): m is QueryMethod => (QUERY_METHODS as readonly string[]).includes(m));
    remember(METHODS, q, methods);
  }
  return methods;
}

type SignedHeadersCheck = { ok: true; names: readonly string[] } | DkimFail;

/**
 * h= as a list of names, checked: valid field names, none that must not be signed, the required
 * ones present and, under ischedule-relaxed, none twice. A peer sends the same h= on every request,
 * so good lists are remembered (keyed by the text and the canonicalisation that decides the
 * duplicate rule); refusals are worked out each time.
 */
function checkSignedHeaders(h: string, onceEach: boolean): SignedHeadersCheck {
  const known = (onceEach ? GOOD_H_ONCE : GOOD_H).get(h);
  if (known !== undefined) return { ok: true, names: known };
  const names = colonList(h);
  const lowered: string[] = [];
  for (const name of names) {
    if (!HEADER_NAME.test(name))
      return fail("malformed-signature", "h= contains an empty or invalid header name.");
    const lower = lowerFieldName(name);
    if (isForbiddenLower(lower))
      return fail("forbidden-header-signed", `h= includes ${name}, which must not be signed.`);
    // draft §7.2.1: same-named fields are combined, so h= lists each name once.
    if (onceEach && lowered.includes(lower)) {
      return fail("header-signed-twice", `h= lists ${displayName(lower)} more than once.`);
    }
    lowered.push(lower);
  }
  for (const required of REQUIRED_SIGNED_HEADERS) {
    if (!lowered.includes(required)) {
      return fail(
        "required-header-not-signed",
        `h= does not include ${displayName(required)}, which must be signed.`,
      );
    }
  }
  remember(onceEach ? GOOD_H_ONCE : GOOD_H, h, names);
  return { ok: true, names };
}

// h= and q= are the signer's text: the memory for them is bounded, and forgets everything when full.
const MAX_REMEMBERED = 256;
const GOOD_H_ONCE = new Map<string, readonly string[]>();
const GOOD_H = new Map<string, readonly string[]>();
const METHODS = new Map<string, readonly QueryMethod[]>();
// d= as written to d= normalised, and s= values, each found valid once.
const DOMAINS = new Map<string, string>();
const SELECTORS = new Map<string, true>();

function remember<T>(map: Map<string, T>, key: string, value: T): void {
  if (map.size >= MAX_REMEMBERED) map.clear();
  map.set(key, value);
}

/**
 * b= decoded, or undefined when it is empty or not base64 (base64Value's rule). The built-in decoder
 * accepts only the base64 alphabet, whitespace and correct padding, all of which that rule accepts
 * too, so what it decodes needs no separate check; what it refuses (a last group of one character,
 * padding that does not fit) is checked by the rule and then decoded by Buffer, which takes it.
 */
function signatureData(raw: string): Uint8Array | undefined {
  try {
    const bytes = Uint8Array.fromBase64(raw);
    if (bytes.length > 0) return bytes;
  } catch {
    // Checked and decoded below.
  }
  const b = base64Value(raw);
  return b === undefined ? undefined : Buffer.from(b, "base64");
}

/** undefined when absent, null when not a plain decimal number (at most 15 digits). */
function optionalNumber(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined;
  // The usual t=, x= or l=: digits only, read without a regular expression or a copy.
  if (raw.length >= 1 && raw.length <= 15) {
    let n = 0;
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c < 48 || c > 57) {
        n = -1;
        break;
      }
      n = n * 10 + (c - 48);
    }
    if (n >= 0) return n;
  }
  const v = raw.trim();
  return /^\d{1,15}$/.test(v) ? Number(v) : null;
}

const DISPLAY: Record<string, string> = {
  "content-type": "Content-Type",
  "ischedule-version": "iSchedule-Version",
  originator: "Originator",
  recipient: "Recipient",
  authorization: "Authorization",
};
export const displayName = (lower: string): string => DISPLAY[lower] ?? lower;

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export interface SignatureFields {
  algorithm: Algorithm;
  domain: string;
  selector: string;
  queryMethods: readonly QueryMethod[];
  timestamp: number;
  expiration?: number;
  signedHeaders: readonly string[];
  bodyHash: string;
}

/**
 * Writes the signature value with an empty b= in the tag order of the draft's examples, on one
 * line (folding is obsolete in HTTP).
 */
export function formatSignatureWithoutData(f: SignatureFields): string {
  // One concatenation rather than a list of parts and a join: this runs for every request signed.
  let value = `v=1; a=${f.algorithm}; d=${f.domain}; s=${f.selector}; c=ischedule-relaxed/simple; q=${f.queryMethods.join(":")}; t=${f.timestamp}`;
  if (f.expiration !== undefined) value += `; x=${f.expiration}`;
  return `${value}; h=${f.signedHeaders.join(":")}; bh=${f.bodyHash}; b=`;
}
