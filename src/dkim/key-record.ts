/**
 * DKIM key records (RFC 6376 §3.6.1, RFC 8463 §4): `v=DKIM1; k=; h=; s=; t=; p=`, the same text in
 * a DNS TXT record, a line of a /.well-known/domainkey document, or an operator's private-exchange file.
 * Parsing checks what can be checked without a signature; `checkKeyForSignature` checks the rest.
 * Each refusal names its reason.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { hashOf, type KeyType, keyTypeOf } from "./crypto.ts";
import type { Algorithm } from "./names.ts";
import { colonList, parseTagList, stripWhitespace } from "./tag-list.ts";
import { type DkimFail, fail } from "./verdict.ts";

export interface DkimPublicKey {
  readonly type: KeyType;
  readonly key: KeyObject;
  /** RSA modulus length; 256 for Ed25519. */
  readonly bits: number;
  /** h= (acceptable hashes); undefined means all. */
  readonly hashes?: readonly string[];
  /** s= (service types); defaults to `*`. */
  readonly services: readonly string[];
  /** t= flags, e.g. `y` (testing), `s` (strict). */
  readonly flags: readonly string[];
  /** p= without whitespace. */
  readonly publicKeyBase64: string;
}

export type KeyRecordParse = { ok: true; key: DkimPublicKey } | DkimFail;

export const MIN_RSA_BITS = 1024;

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows (RFC 8410). */
export const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface ParseKeyRecordOptions {
  minRsaBits?: number;
}

export function parseKeyRecord(text: string, options: ParseKeyRecordOptions = {}): KeyRecordParse {
  const parsed = parseTagList(text.trim());
  if (!parsed.ok) return fail("key-malformed", `the key record is not a tag list: ${parsed.error}`);
  const tags = parsed.tags;

  const v = tags.get("v");
  if (v !== undefined && v !== "DKIM1")
    return fail("key-malformed", `the key record has v=${v}, not v=DKIM1`);

  const services = tags.has("s") ? colonList(tags.get("s")!) : ["*"];
  if (!services.includes("*") && !services.includes("ischedule")) {
    return fail(
      "key-service-not-allowed",
      `the key is restricted to s=${tags.get("s")}, not iSchedule (s=* or s=ischedule)`,
    );
  }

  const p = tags.get("p");
  if (p === undefined) return fail("key-malformed", "the key record has no p= tag");
  const publicKeyBase64 = stripWhitespace(p);
  if (publicKeyBase64 === "")
    return fail("key-revoked", "the key record has an empty p=: the key is revoked");
  if (!BASE64.test(publicKeyBase64)) {
    const hint = publicKeyBase64.includes('"')
      ? " (it contains quote characters: were the quotes of the TXT strings copied into the record?)"
      : "";
    return fail("key-malformed", `p= is not base64${hint}`);
  }

  const k = tags.get("k") ?? "rsa";
  if (k !== "rsa" && k !== "ed25519")
    return fail("key-malformed", `k=${k} is not a supported key type (rsa, ed25519)`);

  const der = Buffer.from(publicKeyBase64, "base64");
  const key = importPublicKey(k, der);
  if (key === undefined)
    return fail("key-malformed", `p= does not hold a valid ${k === "rsa" ? "RSA" : "Ed25519"} public key`);
  if (key.asymmetricKeyType !== k) {
    return fail("key-type-mismatch", `the record says k=${k} but p= holds an ${key.asymmetricKeyType} key`);
  }
  const bits = k === "rsa" ? (key.asymmetricKeyDetails?.modulusLength ?? 0) : 256;
  const minBits = options.minRsaBits ?? MIN_RSA_BITS;
  if (k === "rsa" && bits < minBits) {
    return fail("key-too-short", `the RSA key has ${bits} bits; at least ${minBits} are required (RFC 8301)`);
  }

  return {
    ok: true,
    key: {
      type: k,
      key,
      bits,
      hashes: tags.has("h") ? colonList(tags.get("h")!) : undefined,
      services,
      flags: tags.has("t") ? colonList(tags.get("t")!) : [],
      publicKeyBase64,
    },
  };
}

function importPublicKey(k: KeyType, der: Buffer): KeyObject | undefined {
  const attempts: Buffer[] =
    k === "ed25519" && der.length === 32 ? [Buffer.concat([ED25519_SPKI_PREFIX, der])] : [der];
  for (const candidate of attempts) {
    try {
      return createPublicKey({ key: candidate, format: "der", type: "spki" });
    } catch {
      // Some RSA records hold a bare PKCS#1 RSAPublicKey rather than a SubjectPublicKeyInfo.
      if (k === "rsa") {
        try {
          return createPublicKey({ key: candidate, format: "der", type: "pkcs1" });
        } catch {
          // fall through
        }
      }
    }
  }
  return undefined;
}

/** The checks between a parsed key and the signature that wants to use it. */
export function checkKeyForSignature(key: DkimPublicKey, algorithm: Algorithm): DkimFail | undefined {
  const wanted = keyTypeOf(algorithm);
  if (key.type !== wanted) {
    return fail(
      "key-type-mismatch",
      `a=${algorithm} needs an ${wanted} key but the record has k=${key.type}`,
    );
  }
  const hash = hashOf(algorithm);
  if (key.hashes && !key.hashes.includes(hash)) {
    return fail("key-hash-not-allowed", `the key record allows h=${key.hashes.join(":")}, not ${hash}`);
  }
  return undefined;
}

export interface KeyRecordFields {
  type: KeyType;
  /** DER SubjectPublicKeyInfo (RSA) or the raw 32-byte key (Ed25519). */
  publicKey: Uint8Array;
}

/** The record isched publishes for its own keys: restricted to iSchedule and SHA-256. */
export function formatKeyRecord(f: KeyRecordFields): string {
  return `v=DKIM1; k=${f.type}; h=sha256; s=ischedule; p=${Buffer.from(f.publicKey).toString("base64")}`;
}

/** The p= material for a public key object: SPKI DER for RSA, the raw key for Ed25519 (RFC 8463). */
export function publicKeyMaterial(key: KeyObject): KeyRecordFields {
  const der = key.export({ format: "der", type: "spki" });
  if (key.asymmetricKeyType === "ed25519")
    return { type: "ed25519", publicKey: der.subarray(ED25519_SPKI_PREFIX.length) };
  if (key.asymmetricKeyType === "rsa") return { type: "rsa", publicKey: der };
  throw new TypeError(`unsupported key type ${key.asymmetricKeyType}`);
}
