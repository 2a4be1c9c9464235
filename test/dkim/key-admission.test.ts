/**
 * Key admission counts only lookups that may wait on the network (src/dkim/key-resolver.ts
 * reserve()): a request signed with a key the operator configured (--peer-key, private exchange)
 * takes no place among them once that key has been read, however many such requests are in progress
 * together (with group commit, a peer's requests wait for their batch's commit holding whatever they
 * reserved).
 */
import { describe, expect, test } from "bun:test";
import { createKeyResolver } from "../../src/dkim/key-resolver.ts";
import type { KeySource } from "../../src/dkim/key-source.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { keyRecordFromFile, privateExchangeSource } from "../../src/dkim/private-exchange-source.ts";

/** A DNS key source whose server never answers: anything that reaches it would wait. */
const silentDns: KeySource = { method: "dns/txt", fetch: () => new Promise(() => {}) };

describe("key admission", () => {
  test("requests signed with an operator's key, once read, are never refused for network lookups in progress", async () => {
    const key = generateDkimKey("rsa", 2048);
    const resolver = createKeyResolver({
      sources: [
        privateExchangeSource([
          {
            domain: "peer.test",
            selector: "s1",
            record: keyRecordFromFile(key.publicKeyPem),
            where: "peer.pub",
          },
        ]),
        silentDns,
      ],
      limits: { maxWaiting: 4, maxWaitingPerDomain: 2 },
    });
    const query = { domain: "peer.test", selector: "s1", methods: ["dns/txt", "http/well-known"] as const };
    const first = resolver.reserve({ ...query, methods: [...query.methods] });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect((await first.keys.lookup({ ...query, methods: [...query.methods] })).ok).toBe(true);
    // Twenty more at once, none released: the key is in memory, no place is taken.
    const more = Array.from({ length: 20 }, () =>
      resolver.reserve({ ...query, methods: [...query.methods] }),
    );
    expect(more.map((r) => r.ok)).toEqual(Array(20).fill(true));
    // A domain whose key only DNS has still takes a place, and is refused past the limit.
    const other = { domain: "other.test", selector: "s1", methods: ["dns/txt" as const] };
    expect([resolver.reserve(other).ok, resolver.reserve(other).ok, resolver.reserve(other).ok]).toEqual([
      true,
      true,
      false,
    ]);
  });
});
