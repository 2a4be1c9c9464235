/**
 * Signing an iSchedule request (draft §7.1): which headers to sign, the tags, and the signature.
 * Pure apart from the clock, which callers pass in.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import {
  canonicalBody,
  type HeaderFields,
  type HeaderIndex,
  headerHashInput,
  indexHeaders,
  lowerFieldName,
} from "./canonicalize.ts";
import { hashChunksBase64, signHeaderInput } from "./crypto.ts";
import { MIN_RSA_BITS } from "./key-record.ts";
import type { QueryMethod } from "./names.ts";
import {
  displayName,
  formatSignatureWithoutData,
  isForbiddenLower,
  REQUIRED_SIGNED_HEADERS,
} from "./signature.ts";

export type SigningAlgorithm = "rsa-sha256" | "ed25519-sha256";

export interface SigningKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: SigningAlgorithm;
  readonly privateKey: KeyObject;
}

/** Loads a PEM private key (PKCS#8 or PKCS#1) and picks the algorithm from its type. */
export function loadSigningKey(pem: string | Uint8Array, domain: string, selector: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: typeof pem === "string" ? pem : Buffer.from(pem), format: "pem" });
  } catch {
    throw new TypeError("the file does not hold a PEM private key");
  }
  const type = privateKey.asymmetricKeyType;
  if (type === "ed25519") return { domain, selector, algorithm: "ed25519-sha256", privateKey };
  if (type !== "rsa")
    throw new TypeError(`the private key is ${type}; isched signs with RSA or Ed25519 keys`);
  const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS)
    throw new TypeError(`the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  return { domain, selector, algorithm: "rsa-sha256", privateKey };
}

/** Signed when present (draft §7.1: SHOULD for these two, MUST for Authorization). */
const OPTIONAL_SIGNED_HEADERS = ["iSchedule-Message-ID", "User-Agent", "Authorization"] as const;
const DEFAULT_ORDER = ["Originator", "Recipient", "Content-Type", "iSchedule-Version"] as const;

export const DEFAULT_QUERY_METHODS: readonly QueryMethod[] = ["dns/txt", "http/well-known"];
export const DEFAULT_EXPIRE_SECONDS = 3600;

export interface SignRequestOptions {
  key: SigningKey;
  /** The request's header fields, in wire order (DKIM-Signature not among them). */
  fields: HeaderFields;
  body: Uint8Array;
  /** Clock in milliseconds; t= is its whole seconds. */
  nowMs: number;
  /** x = t + expireSeconds; 0 leaves x= out. Default 3600 (draft §7.1: at least 60). */
  expireSeconds?: number;
  queryMethods?: readonly QueryMethod[];
  /** h=, in order; by default the four required headers and those of iSchedule-Message-ID, User-Agent, Authorization present. */
  signedHeaders?: readonly string[];
}

/** The four required headers, then those of OPTIONAL_SIGNED_HEADERS the request has. */
function defaultSignedHeaders(index: HeaderIndex): string[] {
  const names: string[] = [...DEFAULT_ORDER];
  for (const name of OPTIONAL_SIGNED_HEADERS) if (index.has(lowerFieldName(name))) names.push(name);
  return names;
}

/** Throws TypeError when the request cannot be signed as asked (missing or forbidden headers). */
export function signRequest(o: SignRequestOptions): string {
  const index = indexHeaders(o.fields);
  const signedHeaders = o.signedHeaders ?? defaultSignedHeaders(index);
  const lowered: string[] = [];
  for (let i = 0; i < signedHeaders.length; i++) lowered.push(lowerFieldName(signedHeaders[i]!));
  for (const required of REQUIRED_SIGNED_HEADERS) {
    if (!index.has(required))
      throw new TypeError(`cannot sign: the request has no ${displayName(required)} header`);
    if (!lowered.includes(required))
      throw new TypeError(`cannot sign: h= must include ${displayName(required)}`);
  }
  if (index.has("authorization") && !lowered.includes("authorization")) {
    throw new TypeError("cannot sign: the request has an Authorization header, which must be signed");
  }
  const forbidden = signedHeaders.find((_, i) => isForbiddenLower(lowered[i]!));
  if (forbidden) throw new TypeError(`cannot sign: ${forbidden} must not be signed`);
  const dup = lowered.find((n, i) => lowered.indexOf(n) !== i);
  if (dup) throw new TypeError(`cannot sign: ${dup} is listed twice`);

  const expireSeconds = o.expireSeconds ?? DEFAULT_EXPIRE_SECONDS;
  if (expireSeconds !== 0 && expireSeconds < 60)
    throw new TypeError("cannot sign: the expiry must be at least 60 seconds");
  const timestamp = Math.floor(o.nowMs / 1000);
  const value = formatSignatureWithoutData({
    algorithm: o.key.algorithm,
    domain: o.key.domain,
    selector: o.key.selector,
    queryMethods: o.queryMethods ?? DEFAULT_QUERY_METHODS,
    timestamp,
    expiration: expireSeconds === 0 ? undefined : timestamp + expireSeconds,
    signedHeaders,
    bodyHash: hashChunksBase64(canonicalBody(o.body, "simple"), "sha256"),
  });
  const input = headerHashInput({
    index,
    signedHeaders,
    canonicalization: "ischedule-relaxed",
    signatureWithoutData: value,
  });
  return value + signHeaderInput(o.key.algorithm, o.key.privateKey, input).toString("base64");
}
