/**
 * Peers and Keys through the API, on a real isched that asks a DNS server the test controls: trust
 * policies (stored, listed, read by the function the server's intake uses), "test this domain", the
 * records to publish, the live check naming the usual mistakes, and a key rotation from a new
 * pending key to signing, with the old key retiring after its overlap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseTrustRule } from "../../src/config/rules.ts";
import type { DomainKeys } from "../../src/console/keys-service.ts";
import type { TestStep } from "../../src/console/peer-test.ts";
import { createPeerTrust } from "../../src/console/peer-trust.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import type { KeyCheck } from "../../src/keys/key-check.ts";
import { KeyRotation } from "../../src/keys/key-rotation.ts";
import { createLiveKeys } from "../../src/keys/live-keys.ts";
import { loadOwnKeys } from "../../src/keys/own-keys.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { type ConsoleServer, startConsoleServer } from "./_console.ts";
import { type FakeDns, startFakeDns } from "./_fake-dns.ts";

onBothBackends("console peers and keys", (b) => {
  let c: ConsoleServer;
  let dns: FakeDns;
  const rules = [parseTrustRule("partner.example=unsigned:10.0.0.0/8")];

  beforeAll(async () => {
    dns = await startFakeDns();
    c = await startConsoleServer({
      database: await b.serverDatabase(),
      domains: ["example.com"],
      dnsServer: dns.server,
      trust: rules,
    });
  });
  afterAll(async () => {
    await c.close();
    await dns.stop();
  });

  const keysOf = async (): Promise<DomainKeys> =>
    ((await (await c.token("/api/v1/keys")).json()) as { domains: DomainKeys[] }).domains[0]!;

  async function check(selector: string): Promise<KeyCheck> {
    const res = await c.token("/api/v1/keys/check", {
      method: "POST",
      json: { domain: "example.com", selector },
    });
    return ((await res.json()) as { checks: KeyCheck[] }).checks[0]!;
  }

  describe("peers", () => {
    test("a policy set in the console is listed, read by the server's trust function, and removable", async () => {
      const trust = createPeerTrust(c.isched.store, rules);
      expect(await trust("example.org")).toEqual({ mode: "dkim" });
      const put = await c.token("/api/v1/peers/example.org/policy", {
        method: "PUT",
        json: { trust: "deny", note: "spam" },
      });
      expect(put.status).toBe(200);
      expect(await trust("example.org")).toEqual({ mode: "deny" });
      const peers = (await (await c.token("/api/v1/peers")).json()) as {
        peers: { domain: string; policy: { mode: string; source: string } }[];
      };
      expect(peers.peers.find((p) => p.domain === "example.org")?.policy).toMatchObject({
        mode: "deny",
        source: "console",
      });
      expect(peers.peers.find((p) => p.domain === "partner.example")?.policy).toMatchObject({
        mode: "unsigned",
        source: "--trust",
      });
      expect(peers.peers.map((p) => p.domain)).not.toContain("example.com");

      // A console policy overrides the flag; removing it gives the flag back.
      await c.token("/api/v1/peers/partner.example/policy", {
        method: "PUT",
        json: { trust: "unsigned", allowFrom: "192.0.2.0/24" },
      });
      const p = await trust("partner.example");
      expect(p.mode === "unsigned" && p.from.map((x) => x.text)).toEqual(["192.0.2.0/24"]);
      expect((await c.token("/api/v1/peers/partner.example/policy", { method: "DELETE" })).status).toBe(200);
      const back = await trust("partner.example");
      expect(back.mode === "unsigned" && back.from.map((x) => x.text)).toEqual(["10.0.0.0/8"]);
    });

    test("a subdomain is held to its parent's policy unless it has one of its own, and the page says whose", async () => {
      const trust = createPeerTrust(c.isched.store, rules);
      expect((await trust("cal.partner.example")).mode).toBe("unsigned");
      await c.token("/api/v1/peers/spam.example/policy", { method: "PUT", json: { trust: "deny" } });
      expect(await trust("a.b.spam.example")).toEqual({ mode: "deny" });
      const peer = (await (await c.token("/api/v1/peers/a.b.spam.example")).json()) as {
        policy: { mode: string; source: string };
      };
      expect(peer.policy).toMatchObject({ mode: "deny", source: "console for spam.example" });
      await c.token("/api/v1/peers/ok.spam.example/policy", { method: "PUT", json: { trust: "dkim" } });
      expect(await trust("x.ok.spam.example")).toEqual({ mode: "dkim" });
      expect(await trust("spam.example")).toEqual({ mode: "deny" });
    });

    test("a policy is checked before it is stored", async () => {
      const put = (domain: string, json: object) =>
        c.token(`/api/v1/peers/${domain}/policy`, { method: "PUT", json });
      expect((await put("example.net", { trust: "unsigned" })).status).toBe(400);
      expect((await put("example.net", { trust: "unsigned", allowFrom: "not-an-address" })).status).toBe(400);
      expect((await put("example.net", { trust: "maybe" })).status).toBe(400);
      expect((await put("example.com", { trust: "deny" })).status).toBe(400);
      expect((await put("bad_domain!", { trust: "deny" })).status).toBe(400);
    });

    test("a console policy names extra signers: listed, read by the server's trust function, saying who named them", async () => {
      const put = await c.token("/api/v1/peers/customer.example/policy", {
        method: "PUT",
        json: { trust: "dkim", signers: "cal.hosting.example, Mail.Hosting.Example" },
      });
      expect(put.status).toBe(200);
      expect(await createPeerTrust(c.isched.store, rules)("eu.customer.example")).toEqual({
        mode: "dkim",
        signers: {
          domains: ["cal.hosting.example", "mail.hosting.example"],
          namedBy: "the console's policy for customer.example",
        },
      });
      const peer = (await (await c.token("/api/v1/peers/customer.example")).json()) as {
        policy: { signers: string[] };
      };
      expect(peer.policy.signers).toEqual(["cal.hosting.example", "mail.hosting.example"]);
    });

    test("extra signers are refused for a hosted domain's subdomain, naming a hosted domain, a public suffix, or with deny", async () => {
      const put = async (domain: string, json: object) => {
        const res = await c.token(`/api/v1/peers/${domain}/policy`, { method: "PUT", json });
        return { status: res.status, error: ((await res.json()) as { error: string }).error };
      };
      expect(await put("sub.example.com", { trust: "dkim", signers: "cal.peer.example" })).toEqual({
        status: 400,
        error:
          "signers= on sub.example.com: example.com is served by this server, and only this server signs for it",
      });
      expect(await put("peer.example", { trust: "dkim", signers: "mail.example.com" })).toEqual({
        status: 400,
        error:
          "signers=: mail.example.com is under example.com, a domain served by this server, not a peer's signer",
      });
      expect(await put("peer.example", { trust: "dkim", signers: "co.uk" })).toEqual({
        status: 400,
        error: "signers=: co.uk is a public suffix, which cannot sign for anyone",
      });
      expect((await put("peer.example", { trust: "deny", signers: "cal.peer.example" })).status).toBe(400);
      expect((await put("*", { trust: "dkim", signers: "cal.peer.example" })).status).toBe(400);
    });

    test("test this domain runs discovery, capabilities and key retrieval, one line per step", async () => {
      const key = generateDkimKey("ed25519");
      dns.setTxt("s1._domainkey.keyed.example", [splitTxtValue(key.record)]);
      const res = await c.token("/api/v1/peers/keyed.example/test", {
        method: "POST",
        json: { selector: "s1" },
      });
      expect(res.headers.get("content-type")).toContain("application/x-ndjson");
      const steps = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as TestStep);
      expect(steps.map((s) => [s.step, s.outcome])).toEqual([
        ["discovery", "failed"],
        ["capabilities", "skipped"],
        ["keys", "ok"],
      ]);
      expect(steps[0]!.lines[0]).toContain("no _ischedules._tcp SRV record for keyed.example");
      expect(steps[2]!.lines[0]).toContain("dns/txt: s1._domainkey.keyed.example: ed25519 256 bits");
      for (const s of steps) expect(s.ms).toBeGreaterThanOrEqual(0);
      const peer = (await (await c.token("/api/v1/peers/keyed.example")).json()) as {
        test: { steps: TestStep[] };
      };
      expect(peer.test.steps).toHaveLength(3);
    });
  });

  describe("keys and DNS", () => {
    test("lists our key and every record to publish, with names full and relative and split values", async () => {
      const d = await keysOf();
      expect(d.keys).toHaveLength(1);
      const active = d.keys[0]!;
      expect(active).toMatchObject({
        state: "active",
        algorithm: "rsa-sha256",
        bits: 2048,
        source: "database",
      });
      const types = d.records.map((r) => `${r.type} ${r.name}`);
      expect(types).toEqual([
        "SRV _ischedules._tcp.example.com.",
        "TXT _ischedules._tcp.example.com.",
        "SRV _domainkey_lookup._tcp.example.com.",
        `TXT ${active.selector}._domainkey.example.com.`,
      ]);
      const keyRecord = d.records[3]!;
      expect(keyRecord.relative).toBe(`${active.selector}._domainkey`);
      expect(keyRecord.strings.length).toBe(2);
      expect(keyRecord.strings.join("")).toBe(active.record);
      expect(keyRecord.quoted).toMatch(/^"v=DKIM1;[^"]+" "[^"]+"$/);
      expect(d.records[1]!.optional).toBe(true);
    });

    test("the public endpoint setting shapes the SRV record and the path record", async () => {
      const put = await c.token("/api/v1/keys/endpoint", {
        method: "PUT",
        json: { url: "https://cal.example.com:8443/ischedule" },
      });
      expect(put.status).toBe(200);
      const d = await keysOf();
      expect(d.records[0]!.value).toBe("0 1 8443 cal.example.com.");
      expect(d.records[2]!.value).toBe("0 1 8443 cal.example.com.");
      expect(d.records[1]).toMatchObject({ value: "path=/ischedule", optional: false });
      expect(
        (await c.token("/api/v1/keys/endpoint", { method: "PUT", json: { url: "http://x" } })).status,
      ).toBe(400);
    });

    test("a public endpoint whose host is not a domain name, or that carries credentials, is refused and not stored", async () => {
      const put = (url: string) => c.token("/api/v1/keys/endpoint", { method: "PUT", json: { url } });
      const before = (await (await c.token("/api/v1/keys")).json()).publicEndpoint;
      const answers = [];
      for (const url of [
        `https://${"x".repeat(300)}.example/`,
        `https://${"a".repeat(64)}.example.com/`,
        "https://cal..example.com/",
        "https://user:secret@cal.example.com/ischedule",
      ]) {
        const res = await put(url);
        answers.push([res.status, (await res.json()).error]);
      }
      const error =
        "the public endpoint must be an https://HOST[:PORT]/PATH URL with a domain name as HOST, and no credentials or query";
      expect(answers).toEqual([
        [400, error],
        [400, error],
        [400, error],
        [400, error],
      ]);
      expect((await (await c.token("/api/v1/keys")).json()).publicEndpoint).toEqual(before);
    });

    test("checking the keys of a domain isched does not serve is 404, not an empty list", async () => {
      const res = await c.token("/api/v1/keys/check", { method: "POST", json: { domain: "other.example" } });
      expect([res.status, await res.json()]).toEqual([
        404,
        { error: "other.example is not a hosted domain" },
      ]);
      const all = await c.token("/api/v1/keys/check", { method: "POST", json: { domain: "example.com" } });
      expect(all.status).toBe(200);
      expect(((await all.json()) as { checks: KeyCheck[] }).checks.length).toBeGreaterThan(0);
    });

    test("the check compares DNS, the well-known document and isched itself, and names the usual mistakes", async () => {
      const active = (await keysOf()).keys[0]!;
      const name = `${active.selector}._domainkey.example.com`;
      let r = await check(active.selector);
      expect(r.dns.status).toBe("missing");
      expect(r.local.status).toBe("matching");
      expect(r.verified).toBe(false);

      dns.setTxt(`${name}.example.com`, [splitTxtValue(active.record)]);
      r = await check(active.selector);
      expect(r.dns.mistakes.join()).toContain("domain appended twice");

      // The split form pasted into a one-value field: the quotes become part of the text.
      dns.setTxt(name, [splitTxtValue(`"${active.record.slice(0, 200)}" "${active.record.slice(200)}"`)]);
      r = await check(active.selector);
      expect(r.dns.status).toBe("different");
      expect(r.dns.mistakes.join()).toContain("literal quotes");

      // The parts joined with a space by a DNS panel.
      dns.setTxt(name, [[active.record.slice(0, 255), ` ${active.record.slice(255)}`]]);
      r = await check(active.selector);
      expect(r.dns.status).toBe("matching");
      expect(r.dns.mistakes.join()).toContain("spaces inside p=");

      dns.setTxt(name, [splitTxtValue(active.record)]);
      r = await check(active.selector);
      expect(r).toMatchObject({ verified: true, dns: { status: "matching", mistakes: [] } });
      // The result is kept and shown with the key.
      expect((await keysOf()).keys[0]!.check?.checkedAtMs).toBe(r.checkedAtMs);
    });

    test("rotation: a pending key signs only once published; the old key retires after the overlap", async () => {
      const old = (await keysOf()).keys[0]!;
      const made = await c.token("/api/v1/keys", {
        method: "POST",
        json: { domain: "example.com", type: "ed25519" },
      });
      expect(made.status).toBe(201);
      const fresh = (
        (await made.json()) as { key: { id: number; selector: string; record: string; state: string } }
      ).key;
      expect(fresh.state).toBe("pending");
      expect(fresh.selector).not.toBe(old.selector);
      expect(
        (await c.token("/api/v1/keys", { method: "POST", json: { domain: "example.com" } })).status,
      ).toBe(409);

      const early = await c.token(`/api/v1/keys/${fresh.id}/activate`, { method: "POST", json: {} });
      expect(early.status).toBe(409);
      expect(((await early.json()) as { error: string }).error).toContain("cannot find key");

      // The pending key is already among the records to publish, and in the zone file.
      expect((await keysOf()).records.map((r) => r.selector)).toContain(fresh.selector);
      const zone = await (await c.token("/api/v1/keys/zone?domain=example.com")).text();
      expect(zone).toContain(`${fresh.selector}._domainkey.example.com. 3600 IN TXT`);
      expect(zone).toContain(`${old.selector}._domainkey.example.com. 3600 IN TXT (`);

      dns.setTxt(`${fresh.selector}._domainkey.example.com`, [splitTxtValue(fresh.record)]);
      const before = Date.now();
      const act = await c.token(`/api/v1/keys/${fresh.id}/activate`, {
        method: "POST",
        json: { overlapDays: 2 },
      });
      expect(act.status).toBe(200);
      expect(((await act.json()) as { retiring: string[] }).retiring).toEqual([old.selector]);

      const d = await keysOf();
      const byName = new Map(d.keys.map((k) => [k.selector, k]));
      expect(byName.get(fresh.selector)!.state).toBe("active");
      expect(byName.get(old.selector)!.state).toBe("retiring");
      expect(byName.get(old.selector)!.retireAfter! - before).toBeGreaterThanOrEqual(2 * 86_400_000 - 1000);

      // What the running server uses: it serves both records at /.well-known/domainkey; live keys read
      // now sign with the new key.
      const wellKnown = (selector: string) =>
        fetch(`${c.isched.url}/.well-known/domainkey/example.com/${selector}`);
      expect((await wellKnown(old.selector)).status).toBe(200);
      expect((await wellKnown(fresh.selector)).status).toBe(200);
      const live = await createLiveKeys({
        store: c.isched.store,
        startup: c.isched.keys,
        operatorKey: false,
      });
      expect(live.signingKey("example.com")?.selector).toBe(fresh.selector);
      expect(live.record("example.com", old.selector)).toBe(old.record);

      const retire = await c.token(`/api/v1/keys/${old.id}/retire`, { method: "POST", json: {} });
      expect(retire.status).toBe(200);
      expect((await wellKnown(old.selector)).status).toBe(404);
      await live.refresh();
      expect(live.record("example.com", old.selector)).toBeUndefined();
      expect((await keysOf()).records.map((r) => r.selector)).not.toContain(old.selector);
      expect((await c.token(`/api/v1/keys/${fresh.id}/retire`, { method: "POST", json: {} })).status).toBe(
        409,
      );
    });
  });

  describe("KeyRotation.sweep", () => {
    test("retires keys whose overlap has ended, and only those", async () => {
      let now = Date.UTC(2026, 10, 1);
      const store = await b.fresh();
      const ownKeys = await loadOwnKeys({ store, domains: ["example.com"], nowMs: now });
      const rotation = new KeyRotation({
        store,
        domains: ["example.com"],
        ownKeys,
        operatorKey: false,
        nowMs: () => now,
      });
      const next = await rotation.generate("example.com", "ed25519");
      const verified = { verified: true } as KeyCheck;
      await rotation.activate(next.id!, verified, 86_400_000);
      expect(await rotation.sweep()).toEqual([]);
      now += 86_400_000;
      expect(await rotation.sweep()).toHaveLength(1);
      expect((await store.keys({ domain: "example.com" })).map((k) => k.state)).toEqual([
        "retired",
        "active",
      ]);
    });
  });
});
