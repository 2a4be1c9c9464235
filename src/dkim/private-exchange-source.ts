/**
 * private-exchange keys (draft §7.3.3): public keys an operator received out of band and configured
 * with `--peer-key DOMAIN:SELECTOR=FILE`. A file holds a DKIM key record (`v=DKIM1; p=...`) or a PEM
 * public key.
 */
import { createPublicKey } from "node:crypto";
import { formatKeyRecord, publicKeyMaterial } from "./key-record.ts";
import type { KeySource, SourceResult } from "./key-source.ts";

const STATIC_TTL_SECONDS = 86_400;

export interface PrivateKeyEntry {
  readonly domain: string;
  /** "*" for any selector. */
  readonly selector: string;
  /** A DKIM key record text. */
  readonly record: string;
  /** Where it came from, e.g. the file name. */
  readonly where: string;
}

/**
 * Turns a file's text into a key record: a PEM public key becomes `v=DKIM1; k=...; p=...`,
 * anything else is taken as a record and checked later like a DNS one.
 */
export function keyRecordFromFile(text: string): string {
  if (text.includes("-----BEGIN")) {
    try {
      return formatKeyRecord(publicKeyMaterial(createPublicKey({ key: text, format: "pem" })));
    } catch {
      throw new TypeError("the file holds a PEM block that is not a public key");
    }
  }
  // A record may be written over several lines; a key document has one record per line.
  return text.trim().replace(/\r?\n\s*/g, " ");
}

export function privateExchangeSource(entries: readonly PrivateKeyEntry[]): KeySource {
  const byKey = new Map<string, PrivateKeyEntry[]>();
  for (const e of entries) {
    const k = `${e.domain.toLowerCase()}|${e.selector}`;
    byKey.set(k, [...(byKey.get(k) ?? []), e]);
  }
  return {
    method: "private-exchange",
    async fetch(domain, selector): Promise<SourceResult> {
      // A key configured without a selector (`--peer D=URL,key=FILE`) stands for any selector of D.
      const found =
        byKey.get(`${domain.toLowerCase()}|${selector}`) ?? byKey.get(`${domain.toLowerCase()}|*`);
      // Configured keys change only with the configuration: cache them as long as the cache allows.
      if (!found) {
        return {
          status: "absent",
          where: `no --peer-key for ${domain}:${selector}`,
          ttlSeconds: STATIC_TTL_SECONDS,
        };
      }
      const records = found.map((e) => ({ text: e.record, where: e.where }));
      return { status: "found", records, ttlSeconds: STATIC_TTL_SECONDS };
    },
  };
}
