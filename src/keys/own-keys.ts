/**
 * isched's own DKIM keys at start-up: one active signing key per hosted domain. An operator's key
 * (--dkim-key FILE --dkim-selector S) is used for every domain; otherwise a key is generated on first
 * start and kept in the database, and its DNS record is printed for the operator to publish. The
 * records are also served at /.well-known/domainkey/<domain>/<selector> (http/well-known retrieval).
 */
import { createPublicKey } from "node:crypto";
import { formatKeyRecord, publicKeyMaterial } from "../dkim/key-record.ts";
import { generateDkimKey } from "../dkim/keygen.ts";
import { loadSigningKey, type SigningKey } from "../dkim/sign.ts";
import type { Store } from "../store/store.ts";

export interface OwnKeys {
  /** The key that signs for a hosted domain. */
  signingKey(domain: string): SigningKey | undefined;
  /** The record published for (domain, selector), or undefined. */
  record(domain: string, selector: string): string | undefined;
  /** Keys generated during this start, to print with their records. */
  readonly generated: readonly { domain: string; selector: string; record: string }[];
}

export interface OwnKeysOptions {
  store: Store;
  domains: readonly string[];
  /** The operator's key (--dkim-key, --dkim-selector), already read and checked: it signs for every domain. */
  operatorKey?: { readonly pem: string; readonly selector: string };
  nowMs: number;
}

/** A selector that dates the key, so a rotation gets a new one: `is202611` (year and month). */
export function defaultSelector(nowMs: number): string {
  const d = new Date(nowMs);
  return `is${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

export async function loadOwnKeys(o: OwnKeysOptions): Promise<OwnKeys> {
  const signing = new Map<string, SigningKey>();
  const records = new Map<string, string>();
  const generated: { domain: string; selector: string; record: string }[] = [];

  if (o.operatorKey) {
    const { pem, selector } = o.operatorKey;
    for (const domain of o.domains) {
      // The configuration checked this key (src/config/from-flags.ts): it loads for every domain.
      const key = loadSigningKey(pem, domain, selector);
      signing.set(domain, key);
      records.set(
        `${domain}|${selector}`,
        formatKeyRecord(publicKeyMaterial(createPublicKey(key.privateKey))),
      );
    }
  } else {
    for (const domain of o.domains) {
      const existing = await o.store.keys({ domain });
      if (!existing.some((k) => k.state === "active")) {
        const selector = uniqueSelector(existing, defaultSelector(o.nowMs));
        const key = generateDkimKey("rsa");
        await o.store.insertKey({
          domain,
          selector,
          algorithm: "rsa-sha256",
          bits: key.bits,
          privateKeyPem: key.privateKeyPem,
          record: key.record,
          state: "active",
          createdAt: o.nowMs,
          activatedAt: o.nowMs,
        });
        generated.push({ domain, selector, record: key.record });
      }
    }
  }
  // Database keys are published while pending, active or retiring; only an active one signs.
  for (const k of await o.store.keys()) {
    if (k.state === "retired") continue;
    if (!records.has(`${k.domain}|${k.selector}`)) records.set(`${k.domain}|${k.selector}`, k.record);
    if (k.state === "active" && !signing.has(k.domain) && o.domains.includes(k.domain)) {
      signing.set(k.domain, loadSigningKey(k.privateKeyPem, k.domain, k.selector));
    }
  }
  return {
    signingKey: (domain) => signing.get(domain),
    record: (domain, selector) => records.get(`${domain.toLowerCase()}|${selector}`),
    generated,
  };
}

function uniqueSelector(existing: readonly { selector: string }[], base: string): string {
  const taken = new Set(existing.map((k) => k.selector));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}
