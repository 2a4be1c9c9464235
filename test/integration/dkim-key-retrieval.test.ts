/**
 * Key retrieval against real servers: dnsmasq on loopback for dns/txt (and the SRV of
 * http/well-known), a Bun HTTPS server with a test CA for /.well-known/domainkey.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { dnsTxtSource } from "../../src/dkim/dns-txt-source.ts";
import { formatKeyRecord, publicKeyMaterial } from "../../src/dkim/key-record.ts";
import { createKeyResolver } from "../../src/dkim/key-resolver.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import type { QueryMethod } from "../../src/dkim/names.ts";
import { createNetworkKeyResolver } from "../../src/dkim/network-key-resolver.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { createResolver, type DnsResolver } from "../../src/dns/client.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

const NOW = Date.UTC(2026, 10, 25, 15, 0, 0);
const BODY = Buffer.from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n");
const FIELDS: HeaderField[] = [
  ["iSchedule-Version", "1.0"],
  ["Originator", "mailto:a@example.test"],
  ["Recipient", "mailto:b@other.test"],
  ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
];

const rsa = generateDkimKey("rsa");
const rsaB = generateDkimKey("rsa");
const ed = generateDkimKey("ed25519");
const small = generateKeyPairSync("rsa", { modulusLength: 512 });
const smallRecord = formatKeyRecord(publicKeyMaterial(small.publicKey));
const rsaP = rsa.record.slice(rsa.record.indexOf("p=") + 2);

function sign(
  pem: string,
  selector: string,
  domain = "example.test",
  queryMethods: QueryMethod[] = ["dns/txt"],
) {
  const key = loadSigningKey(pem, domain, selector);
  const value = signRequest({ key, fields: FIELDS, body: BODY, nowMs: NOW, queryMethods });
  return { fields: [["DKIM-Signature", value] as HeaderField, ...FIELDS], body: BODY };
}

let dns: RunningDnsmasq;
let resolver: DnsResolver;
let ca: TestCa;
let keyServer: ReturnType<typeof Bun.serve>;
let keyServerHits = 0;

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["keys.wk.test"]);
  keyServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    fetch(req) {
      keyServerHits++;
      const path = new URL(req.url).pathname;
      if (path === "/.well-known/domainkey/wk.test/sel") {
        return new Response(`${ed.record}\r\n`, {
          headers: { "Content-Type": "text/plain; charset=us-ascii" },
        });
      }
      if (path === "/.well-known/domainkey/wk.test/html") {
        return new Response(ed.record, { headers: { "Content-Type": "text/html" } });
      }
      return new Response("not found", { status: 404 });
    },
  });
  dns = await startDnsmasq({
    zones: ["example.test", "wk.test"],
    ttl: 300,
    txt: [
      { name: "split._domainkey.example.test", strings: splitTxtValue(rsa.record) },
      {
        name: "spaces._domainkey.example.test",
        strings: [`v=DKIM1; k=rsa; p=${rsaP.slice(0, 100)} ${rsaP.slice(100, 200)}`, ` ${rsaP.slice(200)}`],
      },
      { name: "ed._domainkey.example.test", strings: [ed.record] },
      { name: "revoked._domainkey.example.test", strings: ["v=DKIM1; k=rsa; p="] },
      {
        name: "kmismatch._domainkey.example.test",
        strings: splitTxtValue(rsa.record.replace("k=rsa", "k=ed25519")),
      },
      {
        name: "email._domainkey.example.test",
        strings: splitTxtValue(rsa.record.replace("s=ischedule", "s=email")),
      },
      { name: "small._domainkey.example.test", strings: [smallRecord] },
      // Two records at one name: the wrong one first. Glued together they would be garbage.
      { name: "two._domainkey.example.test", strings: splitTxtValue(rsaB.record) },
      { name: "two._domainkey.example.test", strings: splitTxtValue(rsa.record) },
      {
        name: "quoted._domainkey.example.test",
        strings: [`v=DKIM1; k=rsa; p="${rsaP.slice(0, 200)}"`, ` "${rsaP.slice(200)}"`],
      },
    ],
    srv: [{ name: "_domainkey_lookup._tcp.wk.test", target: "keys.wk.test", port: keyServer.port! }],
    hosts: [{ name: "keys.wk.test", address: "127.0.0.1" }],
  });
  resolver = createResolver({ servers: [dns.server], timeoutMs: 1000 });
});

afterAll(async () => {
  await dns?.stop();
  keyServer?.stop(true);
  ca?.remove();
});

const network = (o: { allowPrivatePeers?: boolean; ca?: string } = {}) =>
  createNetworkKeyResolver({
    dns: resolver,
    allowPrivatePeers: o.allowPrivatePeers ?? true,
    ca: o.ca ?? ca.caCertPem,
    nowMs: () => NOW,
  });

async function verdict(request: ReturnType<typeof sign>, keys = network()) {
  return verifyRequest(request, { keys, nowMs: NOW });
}

describe("dns/txt through a real DNS server", () => {
  test("a 2048-bit RSA record split into 255-byte strings of one TXT record verifies", async () => {
    expect(splitTxtValue(rsa.record).length).toBeGreaterThan(1);
    expect(await verdict(sign(rsa.privateKeyPem, "split"))).toMatchObject({
      ok: true,
      keySource: "dns/txt",
      keyBits: 2048,
    });
  });

  test("spaces inside p= (across the strings) are ignored", async () => {
    expect((await verdict(sign(rsa.privateKeyPem, "spaces"))).ok).toBe(true);
  });

  test("an ed25519 record verifies an ed25519-sha256 signature", async () => {
    expect(await verdict(sign(ed.privateKeyPem, "ed"))).toMatchObject({
      ok: true,
      algorithm: "ed25519-sha256",
    });
  });

  const refusals: [string, string, string][] = [
    ["revoked", "key-revoked", "empty p="],
    ["kmismatch", "key-type-mismatch", "k=ed25519"],
    ["email", "key-service-not-allowed", "s=email"],
    ["small", "key-too-short", "512 bits"],
    ["quoted", "key-malformed", "quote"],
  ];
  for (const [selector, reason, words] of refusals) {
    test(`${selector}._domainkey is refused as ${reason}, naming the record`, async () => {
      const v = await verdict(sign(rsa.privateKeyPem, selector));
      expect(v).toMatchObject({ ok: false, reason });
      if (!v.ok) {
        expect(v.message).toContain(`${selector}._domainkey.example.test`);
        expect(v.message).toContain(words);
      }
    });
  }

  test("two TXT records at one name are tried one by one, never glued together", async () => {
    expect((await verdict(sign(rsa.privateKeyPem, "two"))).ok).toBe(true);
    expect((await verdict(sign(rsaB.privateKeyPem, "two"))).ok).toBe(true);
    const other = generateDkimKey("rsa");
    expect(await verdict(sign(other.privateKeyPem, "two"))).toMatchObject({
      ok: false,
      reason: "signature-mismatch",
    });
  });

  test("a selector with no record is key-not-found, naming the DNS name", async () => {
    const v = await verdict(sign(rsa.privateKeyPem, "missing"));
    expect(v).toMatchObject({ ok: false, reason: "key-not-found", temporary: false });
    if (!v.ok) expect(v.message).toContain("missing._domainkey.example.test");
  });

  test("an unreachable DNS server makes the failure temporary (key-unavailable)", async () => {
    const dead = createResolver({ servers: [{ host: "127.0.0.1", port: 9 }], timeoutMs: 200, attempts: 1 });
    const keys = createNetworkKeyResolver({ dns: dead, nowMs: () => NOW });
    expect(await verdict(sign(rsa.privateKeyPem, "split"), keys)).toMatchObject({
      ok: false,
      reason: "key-unavailable",
      temporary: true,
    });
  });
});

describe("caching", () => {
  function counting(inner: DnsResolver) {
    const calls: string[] = [];
    const wrapped: DnsResolver = {
      txt: (n) => {
        calls.push(n);
        return inner.txt(n);
      },
      srv: (n) => inner.srv(n),
      addresses: (n) => inner.addresses(n),
    };
    return { wrapped, calls };
  }

  test("a key is fetched once within its TTL, and again after it", async () => {
    const { wrapped, calls } = counting(resolver);
    let clock = NOW;
    const keys = createKeyResolver({ sources: [dnsTxtSource(wrapped)], nowMs: () => clock });
    const request = sign(rsa.privateKeyPem, "split");
    for (let i = 0; i < 3; i++) expect((await verifyRequest(request, { keys, nowMs: NOW })).ok).toBe(true);
    expect(calls).toEqual(["split._domainkey.example.test"]);
    clock += 301_000;
    expect((await verifyRequest(request, { keys, nowMs: NOW })).ok).toBe(true);
    expect(calls.length).toBe(2);
  });

  test("a missing key is remembered as missing within the negative TTL", async () => {
    const { wrapped, calls } = counting(resolver);
    const keys = createKeyResolver({ sources: [dnsTxtSource(wrapped)], nowMs: () => NOW });
    for (let i = 0; i < 3; i++) {
      expect(await verifyRequest(sign(rsa.privateKeyPem, "missing"), { keys, nowMs: NOW })).toMatchObject({
        reason: "key-not-found",
      });
    }
    expect(calls).toEqual(["missing._domainkey.example.test"]);
  });

  test("after a key rotation, a mismatch with the cached key refetches once and verifies", async () => {
    // The domain first serves key A at selector "split", then key B (rotated in place).
    const rotated = await startDnsmasq({
      zones: ["example.test"],
      ttl: 300,
      txt: [{ name: "split._domainkey.example.test", strings: splitTxtValue(rsaB.record) }],
    });
    try {
      const after = createResolver({ servers: [rotated.server], timeoutMs: 1000 });
      let current = resolver;
      const calls: string[] = [];
      const switching: DnsResolver = {
        txt: (n) => {
          calls.push(n);
          return current.txt(n);
        },
        srv: (n) => current.srv(n),
        addresses: (n) => current.addresses(n),
      };
      let clock = NOW;
      const keys = createKeyResolver({ sources: [dnsTxtSource(switching)], nowMs: () => clock });
      expect((await verifyRequest(sign(rsa.privateKeyPem, "split"), { keys, nowMs: NOW })).ok).toBe(true);
      current = after;
      clock += 11_000;
      expect((await verifyRequest(sign(rsaB.privateKeyPem, "split"), { keys, nowMs: NOW })).ok).toBe(true);
      expect(calls.length).toBe(2);
      // A forged signature does not make isched ask again right away (no DNS amplification).
      expect((await verifyRequest(sign(rsa.privateKeyPem, "split"), { keys, nowMs: NOW })).ok).toBe(false);
      expect(calls.length).toBe(2);
    } finally {
      await rotated.stop();
    }
  });
});

describe("http/well-known over HTTPS with a test CA", () => {
  test("SRV _domainkey_lookup._tcp names the key server; its text/plain record verifies", async () => {
    const before = keyServerHits;
    const v = await verdict(sign(ed.privateKeyPem, "sel", "wk.test", ["http/well-known"]));
    expect(v).toMatchObject({ ok: true, keySource: "http/well-known" });
    expect(keyServerHits).toBe(before + 1);
  });

  test("concurrent verifications that need one key make one fetch of it", async () => {
    const before = keyServerHits;
    const keys = network();
    const request = sign(ed.privateKeyPem, "sel", "wk.test", ["http/well-known"]);
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => verdict(request, keys)));
    expect(verdicts.map((v) => v.ok)).toEqual([true, true, true, true, true]);
    expect(keyServerHits).toBe(before + 1);
  });

  test("past the per-domain limit a lookup fails at once as temporary, naming the limit", async () => {
    const keys = createNetworkKeyResolver({
      dns: resolver,
      allowPrivatePeers: true,
      ca: ca.caCertPem,
      nowMs: () => NOW,
      limits: { maxWaiting: 10, maxWaitingPerDomain: 1 },
    });
    const [first, second] = await Promise.all([
      verdict(sign(ed.privateKeyPem, "sel", "wk.test", ["http/well-known"]), keys),
      verdict(sign(ed.privateKeyPem, "html", "wk.test", ["http/well-known"]), keys),
    ]);
    expect(first.ok).toBe(true);
    expect(second).toMatchObject({ ok: false, reason: "key-unavailable", temporary: true });
    if (!second.ok) expect(second.message).toContain("too many key retrievals for wk.test");
  });

  test("a key server on a private address is refused unless private peers are allowed", async () => {
    const v = await verdict(
      sign(ed.privateKeyPem, "sel", "wk.test", ["http/well-known"]),
      network({ allowPrivatePeers: false }),
    );
    expect(v).toMatchObject({ ok: false, reason: "key-unavailable", temporary: false });
    if (!v.ok) expect(v.message).toContain("private");
  });

  test("a key server whose certificate is not from a trusted CA is refused", async () => {
    const otherCa = createTestCa();
    try {
      const v = await verdict(
        sign(ed.privateKeyPem, "sel", "wk.test", ["http/well-known"]),
        network({ ca: otherCa.caCertPem }),
      );
      expect(v).toMatchObject({ ok: false, reason: "key-unavailable" });
    } finally {
      otherCa.remove();
    }
  });

  test("a document that is not text/plain is refused", async () => {
    const v = await verdict(sign(ed.privateKeyPem, "html", "wk.test", ["http/well-known"]));
    expect(v).toMatchObject({ ok: false, reason: "key-unavailable" });
    if (!v.ok) expect(v.message).toContain("not text/plain");
  });

  test("q= order is followed: a key absent from well-known is found in DNS", async () => {
    const v = await verdict(sign(rsa.privateKeyPem, "split", "example.test", ["http/well-known", "dns/txt"]));
    expect(v).toMatchObject({ ok: true, keySource: "dns/txt" });
  });
});

test("the public key of the fixture record matches what keygen wrote", () => {
  const r = createPublicKey(rsa.publicKeyPem).export({ format: "der", type: "spki" }).toString("base64");
  expect(rsa.record.endsWith(`p=${r}`)).toBe(true);
});
