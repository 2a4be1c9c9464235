/**
 * KeyResolver.cached(): the key from the cache alone, which lets a verification with a warm cache
 * run without an await. It must answer only what lookup() would answer from fresh entries, and leave
 * everything else (a cold or stale entry, a key to refresh) to lookup().
 */
import { expect, test } from "bun:test";
import { createPublicKey } from "node:crypto";
import { formatKeyRecord, publicKeyMaterial } from "../../src/dkim/key-record.ts";
import { createKeyResolver } from "../../src/dkim/key-resolver.ts";
import type { KeySource, SourceResult } from "../../src/dkim/key-source.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";

const record = formatKeyRecord(publicKeyMaterial(createPublicKey(generateDkimKey("ed25519").publicKeyPem)));

/** A source answering from a table, counting its fetches. */
function tableSource(
  method: KeySource["method"],
  answer: () => SourceResult,
): KeySource & { fetches: number } {
  const source = {
    method,
    fetches: 0,
    fetch: async () => {
      source.fetches++;
      return answer();
    },
  };
  return source;
}

const query = { domain: "peer.test", selector: "s1", methods: ["dns/txt", "http/well-known"] as const };

test("cached() has the key only while lookup() would take it from a fresh entry", async () => {
  let clock = 1_000_000;
  const dns = tableSource("dns/txt", () => ({
    status: "found",
    records: [{ text: record, where: "s1._domainkey.peer.test" }],
    ttlSeconds: 60,
  }));
  const keys = createKeyResolver({ sources: [dns], nowMs: () => clock });
  expect(keys.cached?.(query)).toBeUndefined();
  const looked = await keys.lookup(query);
  expect(looked.ok).toBe(true);
  const hit = keys.cached?.(query);
  expect(hit).toMatchObject({ ok: true, fromCache: true });
  expect(hit?.ok && looked.ok && hit.candidates).toBe(looked.ok && looked.candidates);
  expect(dns.fetches).toBe(1);
  clock += 61_000;
  expect(keys.cached?.(query)).toBeUndefined();
  expect(await keys.lookup(query)).toMatchObject({ ok: true, fromCache: false });
  expect(dns.fetches).toBe(2);
});

test("cached() leaves a method it cannot answer from memory to lookup(), even when a later one has the key", async () => {
  let clock = 1_000_000;
  const dns = tableSource("dns/txt", () => ({
    status: "absent",
    where: "s1._domainkey.peer.test",
    ttlSeconds: 10,
  }));
  const web = tableSource("http/well-known", () => ({
    status: "found",
    records: [{ text: record, where: "https://peer.test/.well-known/domainkey/s1" }],
    ttlSeconds: 3600,
  }));
  const keys = createKeyResolver({ sources: [dns, web], nowMs: () => clock });
  expect((await keys.lookup(query)).ok).toBe(true);
  // dns/txt said "absent" and that answer is fresh: the key of http/well-known is the answer.
  expect(keys.cached?.(query)).toMatchObject({ ok: true, fromCache: true });
  // Once dns/txt's answer is stale, dns/txt must be asked again first.
  clock += 11_000;
  expect(keys.cached?.(query)).toBeUndefined();
  expect((await keys.lookup(query)).ok).toBe(true);
  expect(dns.fetches).toBe(2);
  // Absent everywhere is lookup()'s to word.
  const none = createKeyResolver({ sources: [dns], nowMs: () => clock });
  expect((await none.lookup(query)).ok).toBe(false);
  expect(none.cached?.(query)).toBeUndefined();
});
