/**
 * The Keys and DNS page against Debian's dnsmasq serving three hosted domains: one that published
 * every record right, one whose records point elsewhere, one that published nothing (and put its SRV
 * record where a DNS panel that appends the zone puts it). The check names the same verdicts for the
 * SRV records (`_ischedules._tcp`, `_domainkey_lookup._tcp`), the path TXT and the DKIM keys; the
 * `_domainkey_lookup` SRV leads a peer's http/well-known key fetch to isched itself, over TLS. The
 * page checks as it opens, through the API and in Chromium.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import type { DomainKeys } from "../../src/console/keys-service.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import type { KeyCheck, PlaceCheck } from "../../src/keys/key-check.ts";
import { ED_PUBLIC, RSA_PRIVATE, RSA_PUBLIC } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, PASSWORD, startConsoleServer } from "./_console.ts";

const HOST = "isched.example.net";
const SELECTOR = "fixture";
const pemBody = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, "");
const RIGHT_KEY = `v=DKIM1; k=rsa; p=${pemBody(RSA_PUBLIC)}`;
const OTHER_KEY = `v=DKIM1; k=ed25519; p=${pemBody(ED_PUBLIC)}`;

let c: ConsoleServer;
let dns: RunningDnsmasq;
let ca: TestCa;
let dir: string;
let port: number;
let b: TestBrowser;
let page: Page;

beforeAll(async () => {
  port = await freePort();
  ca = createTestCa();
  const cert = ca.issue([HOST]);
  dir = mkdtempSync(join(tmpdir(), "isched-keys-dns-"));
  writeFileSync(join(dir, "dkim.pem"), RSA_PRIVATE, { mode: 0o600 });
  dns = await startDnsmasq({
    zones: ["right.example", "wrong.example", "missing.example", "example.net"],
    hosts: [{ name: HOST, address: "127.0.0.1" }],
    srv: [
      { name: "_ischedules._tcp.right.example", target: HOST, port },
      { name: "_domainkey_lookup._tcp.right.example", target: HOST, port },
      { name: "_ischedules._tcp.wrong.example", target: "www.wrong.example", port: 443 },
      { name: "_domainkey_lookup._tcp.wrong.example", target: HOST, port: 8443 },
      // Typed into a panel that appends the zone: the name ends up with the domain twice.
      { name: "_ischedules._tcp.missing.example.missing.example", target: HOST, port },
    ],
    txt: [
      { name: `${SELECTOR}._domainkey.right.example`, strings: splitTxtValue(RIGHT_KEY) },
      { name: `${SELECTOR}._domainkey.wrong.example`, strings: splitTxtValue(OTHER_KEY) },
      { name: "_ischedules._tcp.wrong.example", strings: ["path=/caldav/ischedule"] },
    ],
  });
  c = await startConsoleServer({
    domains: ["right.example", "wrong.example", "missing.example"],
    listen: { host: "127.0.0.1", port },
    tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
    ca: ca.caCertPem,
    dkimKeyFile: join(dir, "dkim.pem"),
    dkimSelector: SELECTOR,
    dnsServer: dns.server,
  });
  const put = await c.token("/api/v1/keys/endpoint", {
    method: "PUT",
    json: { url: `https://${HOST}:${port}/.well-known/ischedule` },
  });
  expect(put.status).toBe(200);
  b = await startBrowser();
  page = b.page;
}, 60_000);

afterAll(async () => {
  await b?.close();
  await c?.close();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Checked = DomainKeys["records"][number];

/** Each record of a domain by its owner name and type, with its verdict. */
function byName(d: DomainKeys): Record<string, Checked> {
  return Object.fromEntries(d.records.map((r) => [`${r.type} ${r.name}`, r]));
}

describe("the records to publish", () => {
  test("lead peers to isched: the SRV, the path (optional here), _domainkey_lookup, each key", async () => {
    const d = ((await (await c.token("/api/v1/keys")).json()) as { domains: DomainKeys[] }).domains[0]!;
    expect(d.records.map((r) => [r.type, r.name, r.optional])).toEqual([
      ["SRV", "_ischedules._tcp.right.example.", false],
      ["TXT", "_ischedules._tcp.right.example.", true],
      ["SRV", "_domainkey_lookup._tcp.right.example.", false],
      ["TXT", `${SELECTOR}._domainkey.right.example.`, false],
    ]);
    expect(d.records.map((r) => r.value)).toEqual([
      `0 1 ${port} ${HOST}.`,
      "path=/.well-known/ischedule",
      `0 1 ${port} ${HOST}.`,
      expect.stringContaining(`p=${pemBody(RSA_PUBLIC)}`),
    ]);
    const zone = await (await c.token("/api/v1/keys/zone?domain=right.example")).text();
    expect(zone).toContain(`\n_domainkey_lookup._tcp.right.example. 3600 IN SRV 0 1 ${port} ${HOST}.\n`);
    expect(zone).toContain(`\n_ischedules._tcp.right.example. 3600 IN SRV 0 1 ${port} ${HOST}.\n`);
    expect(zone).toContain("\n; _ischedules._tcp.right.example. 3600 IN TXT");
  });
});

describe("Check DNS now", () => {
  let domains: DomainKeys[];
  let checks: KeyCheck[];
  beforeAll(async () => {
    const res = await c.token("/api/v1/keys/check", { method: "POST", json: {} });
    expect(res.status).toBe(200);
    ({ domains, checks } = (await res.json()) as { domains: DomainKeys[]; checks: KeyCheck[] });
  });
  const verdicts = (domain: string): Record<string, Pick<PlaceCheck, "status" | "mistakes"> | null> => {
    const d = domains.find((x) => x.domain === domain)!;
    return Object.fromEntries(
      Object.entries(byName(d)).map(([k, r]) => [
        k,
        r.check && { status: r.check.status, mistakes: r.check.mistakes },
      ]),
    );
  };

  test("right: every record matches, and the key is fetched from isched through _domainkey_lookup", () => {
    expect(verdicts("right.example")).toEqual({
      "SRV _ischedules._tcp.right.example.": { status: "matching", mistakes: [] },
      "TXT _ischedules._tcp.right.example.": { status: "missing", mistakes: [] },
      "SRV _domainkey_lookup._tcp.right.example.": { status: "matching", mistakes: [] },
      [`TXT ${SELECTOR}._domainkey.right.example.`]: { status: "matching", mistakes: [] },
    });
    const key = checks.find((k) => k.domain === "right.example")!;
    expect(key.wellKnown).toMatchObject({
      status: "matching",
      where: `https://${HOST}:${port}/.well-known/domainkey/right.example/${SELECTOR}`,
    });
    expect(key.verified).toBe(true);
  });

  test("wrong: each record is 'different' and says where it points instead", () => {
    expect(verdicts("wrong.example")).toEqual({
      "SRV _ischedules._tcp.wrong.example.": {
        status: "different",
        mistakes: [`points at www.wrong.example:443, not at isched (${HOST}:${port})`],
      },
      "TXT _ischedules._tcp.wrong.example.": {
        status: "different",
        mistakes: [
          "path=/caldav/ischedule: peers would POST to /caldav/ischedule, not /.well-known/ischedule",
        ],
      },
      "SRV _domainkey_lookup._tcp.wrong.example.": {
        status: "different",
        mistakes: [`port 8443 is not the port isched listens on for peers (${port})`],
      },
      [`TXT ${SELECTOR}._domainkey.wrong.example.`]: {
        status: "different",
        mistakes: ["another key: p= differs from ours"],
      },
    });
  });

  test("missing: each record is 'missing'; an SRV record under the doubled name is pointed out", () => {
    const v = verdicts("missing.example");
    expect(Object.values(v).map((x) => x?.status)).toEqual(["missing", "missing", "missing", "missing"]);
    expect(v["SRV _ischedules._tcp.missing.example."]!.mistakes).toEqual([
      'domain appended twice: the record is at _ischedules._tcp.missing.example.missing.example; enter the name as "_ischedules._tcp" (relative) or end it with a dot',
    ]);
  });
});

describe("the Keys page", () => {
  const verdict = (domain: string, name: string) =>
    page
      .locator(`section[data-domain='${domain}'] tbody.record[data-name='${name}'] .verdict .badge`)
      .first()
      .textContent();

  test("checks as it opens: the verdicts show without pressing a button", async () => {
    await page.goto(`${c.base}/`);
    await page.fill("#password", PASSWORD);
    await page.click("#sign-in");
    await page.waitForSelector("h1:text('Overview')");
    await page.goto(`${c.base}/#/keys`);
    await page.waitForSelector("section[data-domain='missing.example'] tbody.record .verdict .badge");
    expect(await page.textContent("main")).not.toContain("not checked yet");
    expect(await verdict("right.example", "_ischedules._tcp.right.example.")).toBe("matching");
    expect(await verdict("right.example", "_domainkey_lookup._tcp.right.example.")).toBe("matching");
    expect(await verdict("wrong.example", "_ischedules._tcp.wrong.example.")).toBe("different");
    expect(await verdict("wrong.example", "_domainkey_lookup._tcp.wrong.example.")).toBe("different");
    expect(await verdict("missing.example", "_domainkey_lookup._tcp.missing.example.")).toBe("missing");
    expect(
      await page
        .locator(
          "section[data-domain='wrong.example'] tbody.record[data-name='_ischedules._tcp.wrong.example.']",
        )
        .first()
        .textContent(),
    ).toContain("points at www.wrong.example:443");
    await b.shot("keys-checked");
  });

  test("one check button per domain, a copy button on every value row, '(optional)' once", async () => {
    const section = page.locator("section[data-domain='right.example']");
    expect(await section.locator("button", { hasText: /check/i }).count()).toBe(1);
    const rows = section.locator("table.records tbody.record tr.value");
    const n = await rows.count();
    expect(n).toBeGreaterThan(8);
    // Every value row ends with its copy button, in the same column.
    const lefts = await rows.evaluateAll((trs) =>
      trs.map((tr) => {
        const button = tr.querySelector("td:last-child button.copy");
        return button ? Math.round(button.getBoundingClientRect().left) : -1;
      }),
    );
    expect(new Set(lefts).size).toBe(1);
    expect(lefts[0]).toBeGreaterThan(0);
    expect((await section.textContent())!.match(/optional/g)).toHaveLength(1);
  });
});
