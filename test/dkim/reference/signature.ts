/**
 * REFERENCE ONLY (tests): src/dkim/signature.ts as it was at b949fb3, before the single-pass
 * scanner, kept word for word (imports aside) so that scanner-differential.test.ts can check the current
 * parser and formatter refuse and accept exactly what this one did, with the same messages.
 */

import type { BodyCanonicalization, HeaderCanonicalization } from "../../../src/dkim/canonicalize.ts";
import { type Algorithm, QUERY_METHODS, type QueryMethod } from "../../../src/dkim/names.ts";
import { type DkimFail, fail } from "../../../src/dkim/verdict.ts";
import { isDomainName, isSameOrSubdomain, normalizeDomain } from "../../../src/dns/names.ts";
import { colonList, parseTagList, stripWhitespace } from "./tag-list.ts";

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

const isForbiddenLower = (lower: string): boolean =>
  FORBIDDEN_SIGNED_HEADERS.has(lower) || lower.startsWith("proxy-");

export const isForbiddenSignedHeader = (name: string): boolean => isForbiddenLower(name.toLowerCase());

const HEADER_NAME = /^[!-9;-~]+$/;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export type SignatureParse = { ok: true; signature: DkimSignature } | DkimFail;

export interface ParseSignatureOptions {
  /** RFC 8301 forbids rsa-sha1; an operator may still allow it for old peers. */
  allowSha1?: boolean;
}

const REQUIRED_TAGS = ["v", "a", "b", "bh", "c", "d", "h", "s"] as const;

// Signatures name the same few headers over and over; lower-casing them is a measurable part of
// parsing one, so the lower-case forms are remembered (a bounded map: h= is attacker-controlled).
const LOWER = new Map<string, string>();
function lowerName(name: string): string {
  let lower = LOWER.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWER.size < 512) LOWER.set(name, lower);
  }
  return lower;
}

/** A base64 value without its whitespace, or undefined when it is not base64. */
function base64Value(raw: string): string | undefined {
  if (raw !== "" && BASE64.test(raw)) return raw;
  const v = stripWhitespace(raw);
  return v !== "" && BASE64.test(v) ? v : undefined;
}

/** Parses and checks one DKIM-Signature value. */
export function parseSignature(value: string, options: ParseSignatureOptions = {}): SignatureParse {
  const parsed = parseTagList(value);
  if (!parsed.ok)
    return fail("malformed-signature", `The DKIM-Signature is not a valid tag list: ${parsed.error}.`);
  const tags = parsed.tags;
  for (const t of REQUIRED_TAGS) {
    if (!tags.has(t)) return fail("missing-tag", `The DKIM-Signature has no ${t}= tag.`);
  }
  const domainRaw = tags.get("d")!;
  const selector = tags.get("s")!;
  if (!isDomainName(domainRaw))
    return fail("malformed-signature", `d=${clip(domainRaw)} is not a domain name.`);
  if (!isDomainName(selector))
    return fail("malformed-signature", `s=${clip(selector)} is not a valid selector.`);
  const domain = normalizeDomain(domainRaw);
  const ids = { domain, selector };

  if (tags.get("v") !== "1") {
    return fail("unsupported-version", `v=${clip(tags.get("v")!)} is not supported (only v=1).`, ids);
  }

  const a = tags.get("a")!.toLowerCase();
  if (a === "rsa-sha1" && !options.allowSha1) {
    return fail("sha1-not-allowed", "a=rsa-sha1 is refused (RFC 8301); sign with rsa-sha256.", ids);
  }
  if (a !== "rsa-sha256" && a !== "ed25519-sha256" && a !== "rsa-sha1") {
    return fail("unsupported-algorithm", `a=${clip(a)} is not supported (rsa-sha256, ed25519-sha256).`, ids);
  }

  const [hc, bc = "simple", extra] = tags.get("c")!.toLowerCase().split("/");
  if (
    extra !== undefined ||
    (hc !== "ischedule-relaxed" && hc !== "relaxed") ||
    (bc !== "simple" && bc !== "relaxed")
  ) {
    return fail(
      "unsupported-canonicalization",
      `c=${clip(tags.get("c")!)} is not supported (ischedule-relaxed/simple; relaxed also accepted).`,
      ids,
    );
  }

  const signedHeaders = colonList(tags.get("h")!);
  const lowered: string[] = [];
  for (const name of signedHeaders) {
    if (!HEADER_NAME.test(name))
      return fail("malformed-signature", "h= contains an empty or invalid header name.", ids);
    const lower = lowerName(name);
    if (isForbiddenLower(lower))
      return fail("forbidden-header-signed", `h= includes ${name}, which must not be signed.`, ids);
    // draft §7.2.1: same-named fields are combined, so h= lists each name once.
    if (hc === "ischedule-relaxed" && lowered.includes(lower)) {
      return fail("header-signed-twice", `h= lists ${displayName(lower)} more than once.`, ids);
    }
    lowered.push(lower);
  }
  for (const required of REQUIRED_SIGNED_HEADERS) {
    if (!lowered.includes(required)) {
      return fail(
        "required-header-not-signed",
        `h= does not include ${displayName(required)}, which must be signed.`,
        ids,
      );
    }
  }

  const bodyHash = base64Value(tags.get("bh")!);
  if (bodyHash === undefined) return fail("malformed-signature", "bh= is not base64.", ids);
  const b = base64Value(tags.get("b")!);
  if (b === undefined) return fail("malformed-signature", "b= is empty or not base64.", ids);

  const q = tags.has("q") ? colonList(tags.get("q")!) : ["dns/txt"];
  const queryMethods = q.filter((m): m is QueryMethod => (QUERY_METHODS as readonly string[]).includes(m));
  if (queryMethods.length === 0) {
    return fail(
      "unsupported-query-method",
      `q=${clip(tags.get("q") ?? "")} names no supported key retrieval method.`,
      ids,
    );
  }

  const timestamp = optionalNumber(tags.get("t"));
  const expiration = optionalNumber(tags.get("x"));
  const bodyLength = optionalNumber(tags.get("l"));
  if (timestamp === null) return fail("malformed-signature", "t= is not a number of seconds.", ids);
  if (expiration === null) return fail("malformed-signature", "x= is not a number of seconds.", ids);
  if (bodyLength === null) return fail("malformed-signature", "l= is not a number of bytes.", ids);
  if (timestamp !== undefined && expiration !== undefined && expiration <= timestamp) {
    return fail("malformed-signature", "x= is not after t=.", ids);
  }

  const identity = tags.get("i");
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
      signature: Buffer.from(b, "base64"),
      queryMethods,
      timestamp,
      expiration,
      bodyLength,
    },
  };
}

/** undefined when absent, null when not a plain decimal number. */
function optionalNumber(raw: string | undefined): number | undefined | null {
  if (raw === undefined) return undefined;
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
  const parts = [
    "v=1",
    `a=${f.algorithm}`,
    `d=${f.domain}`,
    `s=${f.selector}`,
    "c=ischedule-relaxed/simple",
    `q=${f.queryMethods.join(":")}`,
    `t=${f.timestamp}`,
  ];
  if (f.expiration !== undefined) parts.push(`x=${f.expiration}`);
  parts.push(`h=${f.signedHeaders.join(":")}`, `bh=${f.bodyHash}`, "b=");
  return parts.join("; ");
}
