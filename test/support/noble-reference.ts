/**
 * The independent reference the DKIM tests check every signature against: SHA-256/SHA-1 from
 * @noble/hashes, Ed25519 from @noble/curves, and RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) written out with
 * BigInt. Nothing here goes through node:crypto's signing or hashing; the key components are read
 * from the keys' JWK export.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Algorithm } from "../../src/dkim/names.ts";

const DIGEST_INFO: Record<"sha256" | "sha1", Uint8Array> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha1: Buffer.from("3021300906052b0e03021a05000414", "hex"),
};

const b64urlToBigInt = (s: string): bigint => BigInt(`0x${Buffer.from(s, "base64url").toString("hex")}`);

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

function toBytes(n: bigint, length: number): Uint8Array {
  const hex = n.toString(16).padStart(length * 2, "0");
  return Buffer.from(hex, "hex");
}

/** EMSA-PKCS1-v1_5 encoding (RFC 8017 §9.2). */
function emsaPkcs1(digest: Uint8Array, hash: "sha256" | "sha1", k: number): Uint8Array {
  const t = Buffer.concat([DIGEST_INFO[hash], digest]);
  const ps = Buffer.alloc(k - t.length - 3, 0xff);
  return Buffer.concat([Buffer.from([0x00, 0x01]), ps, Buffer.from([0x00]), t]);
}

const hashFor = (a: Algorithm) => (a === "rsa-sha1" ? "sha1" : "sha256");
const digest = (hash: "sha256" | "sha1", data: Uint8Array) => (hash === "sha1" ? sha1(data) : sha256(data));

export function referenceBodyHash(chunks: readonly Uint8Array[], hash: "sha256" | "sha1" = "sha256"): string {
  return Buffer.from(digest(hash, Buffer.concat(chunks))).toString("base64");
}

export function referenceSign(algorithm: Algorithm, privatePem: string, input: string): Uint8Array {
  const key = createPrivateKey(privatePem);
  const data = Buffer.from(input, "latin1");
  const jwk = key.export({ format: "jwk" });
  if (algorithm === "ed25519-sha256") {
    return ed25519.sign(sha256(data), Buffer.from(jwk.d!, "base64url"));
  }
  const n = b64urlToBigInt(jwk.n!);
  const d = b64urlToBigInt(jwk.d!);
  const k = Buffer.from(jwk.n!, "base64url").length;
  const hash = hashFor(algorithm);
  const m = BigInt(`0x${Buffer.from(emsaPkcs1(digest(hash, data), hash, k)).toString("hex")}`);
  return toBytes(modPow(m, d, n), k);
}

export function referenceVerify(
  algorithm: Algorithm,
  publicKey: KeyObject | string,
  input: string,
  signature: Uint8Array,
): boolean {
  const key = typeof publicKey === "string" ? createPublicKey(publicKey) : publicKey;
  const data = Buffer.from(input, "latin1");
  const jwk = key.export({ format: "jwk" });
  if (algorithm === "ed25519-sha256") {
    return ed25519.verify(signature, sha256(data), Buffer.from(jwk.x!, "base64url"));
  }
  const n = b64urlToBigInt(jwk.n!);
  const e = b64urlToBigInt(jwk.e!);
  const k = Buffer.from(jwk.n!, "base64url").length;
  if (signature.length !== k) return false;
  const s = BigInt(`0x${Buffer.from(signature).toString("hex")}`);
  if (s >= n) return false;
  const em = toBytes(modPow(s, e, n), k);
  const hash = hashFor(algorithm);
  return Buffer.from(em).equals(Buffer.from(emsaPkcs1(digest(hash, data), hash, k)));
}
