/**
 * Generating isched's own DKIM keys: RSA (2048 bits by default, RFC 8301 asks for at least 1024)
 * or Ed25519 (RFC 8463), with the key record to publish.
 */
import { generateKeyPairSync } from "node:crypto";
import type { KeyType } from "./crypto.ts";
import { formatKeyRecord, publicKeyMaterial } from "./key-record.ts";

export interface GeneratedKey {
  readonly type: KeyType;
  readonly bits: number;
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
  /** The DKIM key record, as for DNS TXT and /.well-known/domainkey. */
  readonly record: string;
}

export const DEFAULT_RSA_BITS = 2048;

export function generateDkimKey(type: KeyType = "rsa", bits: number = DEFAULT_RSA_BITS): GeneratedKey {
  const pair =
    type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: 65537 })
      : generateKeyPairSync("ed25519");
  return {
    type,
    bits: type === "rsa" ? bits : 256,
    privateKeyPem: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKeyPem: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
    record: formatKeyRecord(publicKeyMaterial(pair.publicKey)),
  };
}
