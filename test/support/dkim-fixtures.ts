/** Test keys, vectors and a key resolver over fixed records, shared by the DKIM tests. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createKeyResolver, type KeyResolver } from "../../src/dkim/key-resolver.ts";
import { keyRecordFromFile, privateExchangeSource } from "../../src/dkim/private-exchange-source.ts";
import { parseRawRequest, type RawRequest } from "../../src/http/raw-request.ts";

export const FIXTURES = join(import.meta.dir, "..", "fixtures", "dkim");

export const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");
export const fixtureRequest = (name: string): RawRequest =>
  parseRawRequest(readFileSync(join(FIXTURES, name)));

export const RSA_PRIVATE = fixtureText("test-rsa-2048.pem");
export const RSA_PUBLIC = fixtureText("test-rsa-2048.pub.pem");
export const ED_PRIVATE = fixtureText("test-ed25519.pem");
export const ED_PUBLIC = fixtureText("test-ed25519.pub.pem");

export interface Vector {
  bh: string;
  headerHashInput: string;
  headerHashSha256: string;
  b: string;
  dkimSignature: string;
  file: string;
}
export const VECTORS: Record<"V1" | "V2" | "V3", Vector> = JSON.parse(fixtureText("vectors.json"));

/** t= of every vector; their x= is in the past, so tests freeze the clock just after t=. */
export const VECTOR_TIME_MS = 1268069852 * 1000 + 10_000;

/** A resolver that knows exactly these (domain, selector) → record or PEM. */
export function keysFor(entries: { domain: string; selector: string; key: string }[]): KeyResolver {
  return createKeyResolver({
    sources: [
      privateExchangeSource(
        entries.map((e) => ({
          domain: e.domain,
          selector: e.selector,
          record: keyRecordFromFile(e.key),
          where: "test",
        })),
      ),
    ],
  });
}

/** The vectors' keys under every query method name they list, for verifying them offline. */
export const vectorKeys = (): KeyResolver =>
  keysFor([
    { domain: "example.com", selector: "jupiter", key: RSA_PUBLIC },
    { domain: "example.com", selector: "ed", key: ED_PUBLIC },
  ]);
