/**
 * What isched learns about a peer is kept and shown on the peer's page with its age: two real
 * isched, a.test and b.test, published in dnsmasq (SRV records, DKIM keys) and speaking HTTPS with a
 * test CA. An invitation from a.test to b.test teaches isched A b.test's SRV targets and capabilities
 * (serial), and isched B a.test's key (by dns/txt, 2048 bits) as it verifies the signature. "Test this
 * domain" on A stores b.test's key too; all of it is still there after A restarts, and A's page shows
 * it in Chromium without running a test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import type { ServeConfig } from "../../src/config/serve-config.ts";
import type { PeerFact } from "../../src/console/peer-facts.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, PASSWORD, startConsoleServer } from "./_console.ts";
import { eventually } from "./_webhook.ts";

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let a: ConsoleServer;
let b: ConsoleServer;
let configA: Partial<ServeConfig> & { domains: string[] };
let portB: number;
let serialB: number;
let br: TestBrowser;
let page: Page;

async function factsOf(c: ConsoleServer, domain: string): Promise<PeerFact[]> {
  const res = await c.token(`/api/v1/peers/${domain}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { facts: PeerFact[] }).facts;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-peer-facts-"));
  ca = createTestCa();
  const keyA = generateDkimKey("rsa");
  const keyB = generateDkimKey("ed25519");
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, "b.key"), keyB.privateKeyPem, { mode: 0o600 });
  const portA = await freePort();
  portB = await freePort();
  dns = await startDnsmasq({
    zones: ["a.test", "b.test"],
    srv: [
      { name: "_ischedules._tcp.a.test", target: "isched.a.test", port: portA },
      { name: "_ischedules._tcp.b.test", target: "isched.b.test", port: portB },
    ],
    hosts: [
      { name: "isched.a.test", address: "127.0.0.1" },
      { name: "isched.b.test", address: "127.0.0.1" },
    ],
    txt: [
      { name: "ka._domainkey.a.test", strings: splitTxtValue(keyA.record) },
      { name: "kb._domainkey.b.test", strings: splitTxtValue(keyB.record) },
    ],
  });
  const org = (domain: string, key: string, selector: string, port: number) => {
    // The local calendar server reaches its isched at 127.0.0.1; peers by name.
    const cert = ca.issue([`isched.${domain}`, "127.0.0.1"]);
    return {
      domains: [domain],
      dataDir: mkdtempSync(join(dir, `${domain}-`)),
      listen: { host: "127.0.0.1", port },
      tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
      dkimKeyFile: join(dir, key),
      dkimSelector: selector,
      dnsServer: dns.server,
      ca: ca.caCertPem,
      trust: [{ domain, policy: { mode: "unsigned" as const, from: parseCidrList("127.0.0.1") } }],
    };
  };
  configA = org("a.test", "a.key", "ka", portA);
  a = await startConsoleServer(configA);
  b = await startConsoleServer(org("b.test", "b.key", "kb", portB));
  serialB = b.isched.capabilities().capabilities.serialNumber;

  // alice's calendar server hands isched A an invitation for bob@b.test.
  const res = await fetch(`${a.isched.url}/.well-known/ischedule`, {
    method: "POST",
    headers: {
      "iSchedule-Version": "1.0",
      Originator: "mailto:alice@a.test",
      Recipient: "mailto:bob@b.test",
      "Content-Type": "text/calendar; method=REQUEST; component=VEVENT",
    },
    body: invitation({ uid: "facts-1", organizer: "mailto:alice@a.test", attendees: ["mailto:bob@b.test"] }),
    tls: { ca: ca.caCertPem },
  });
  expect(res.status).toBe(200);
  await eventually(async () => {
    const list = await (await b.token("/api/v1/messages?q=uid:facts-1")).json();
    return (list as { messages: unknown[] }).messages.length === 1;
  });
  br = await startBrowser();
  page = br.page;
}, 60_000);

afterAll(async () => {
  await br?.close();
  await a?.close();
  await b?.close();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("real traffic", () => {
  test("sending to b.test teaches isched A its SRV target and its capabilities' serial", async () => {
    const facts = await factsOf(a, "b.test");
    expect(facts.find((f) => f.kind === "discovery")).toMatchObject({
      source: "traffic",
      value: {
        how: "srv",
        foundAt: "b.test",
        targets: [{ url: `https://isched.b.test:${portB}/.well-known/ischedule`, priority: 0, weight: 0 }],
      },
    });
    expect(facts.find((f) => f.kind === "capabilities")).toMatchObject({
      source: "traffic",
      value: { url: `https://isched.b.test:${portB}/.well-known/ischedule`, serial: serialB },
    });
  });

  test("verifying a.test's signature teaches isched B a.test's key: by dns/txt, rsa 2048", async () => {
    const key = (await factsOf(b, "a.test")).find((f) => f.kind === "key");
    expect(key).toMatchObject({
      name: "ka",
      source: "traffic",
      value: { found: [{ method: "dns/txt", where: "ka._domainkey.a.test", type: "rsa", bits: 2048 }] },
    });
  });
});

describe("test this domain", () => {
  test("stores what it finds: b.test's key for a named selector", async () => {
    const res = await a.token("/api/v1/peers/b.test/test", { method: "POST", json: { selector: "kb" } });
    expect(res.status).toBe(200);
    await res.text();
    const key = (await factsOf(a, "b.test")).find((f) => f.kind === "key" && f.name === "kb");
    expect(key).toMatchObject({
      source: "test",
      value: { found: [{ method: "dns/txt", where: "kb._domainkey.b.test", type: "ed25519", bits: 256 }] },
    });
  });

  test("what was learned outlives a restart", async () => {
    const before = await factsOf(a, "b.test");
    await a.close();
    a = await startConsoleServer(configA, { password: null });
    expect(await factsOf(a, "b.test")).toEqual(before);
  });
});

describe("the peer's page", () => {
  test("shows the server, its capabilities and its keys with their age, without a test", async () => {
    await page.goto(`${a.base}/`);
    await page.fill("#password", PASSWORD);
    await page.click("#sign-in");
    await page.waitForSelector("h1:text('Overview')");
    await page.goto(`${a.base}/#/peers/b.test`);
    await page.waitForSelector("#peer-server .fact");
    expect(await page.locator("#test-steps").count()).toBe(0);
    const server = (await page.textContent("#peer-server"))!;
    expect(server).toContain("SRV _ischedules._tcp.b.test");
    expect(server).toContain(`https://isched.b.test:${portB}/.well-known/ischedule`);
    // Learned from traffic, then confirmed (same value) by the test.
    expect(server).toMatch(/from a test, learned \d+ s ago, confirmed \d+ s ago/);
    expect(await page.textContent("#peer-server .serial")).toBe(String(serialB));
    const kb = (await page.textContent("#peer-keys tr[data-selector='kb']"))!;
    expect(kb).toContain("ed25519 256 bits, by dns/txt from kb._domainkey.b.test");
    expect(kb).toMatch(/from a test, \d+ s ago/);
    await br.shot("peer-facts", { publish: true });
  });
});
