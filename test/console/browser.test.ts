/**
 * The console in a real browser: Debian's Chromium, headless, driven by playwright-core, against a
 * real isched. Sign in, watch an invitation arrive live, open it, retry its failed delivery, change a
 * peer's trust policy, rotate a key, verify a request. The screenshots it takes go to
 * .test-artifacts/screenshots/ (and with ISCHED_UPDATE_SCREENSHOTS=1 to docs/screenshots/, which the
 * README shows).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { parseDeliverRule, parseTrustRule } from "../../src/config/rules.ts";
import { createPeerTrust } from "../../src/console/peer-trust.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { parsePeerFlag } from "../../src/outbound/static-routes.ts";
import { keysOfDomain } from "../../src/store/sqlite/dkim-keys.ts";
import { invitation, postAsPeer } from "../support/isched.ts";
import { DESKTOP, startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, PASSWORD, startConsoleServer } from "./_console.ts";
import { type FakeDns, startFakeDns } from "./_fake-dns.ts";
import { eventually, startWebhook, type TestWebhook } from "./_webhook.ts";

let c: ConsoleServer;
let hook: TestWebhook;
let dns: FakeDns;
let b: TestBrowser;
let browser: BrowserContext;
let page: Page;

async function send(uid: string, summary: string, from = "alice"): Promise<void> {
  const res = await postAsPeer({
    url: `${c.isched.url}/.well-known/ischedule`,
    originator: `mailto:${from}@example.org`,
    recipients: ["mailto:bob@example.com"],
    body: invitation({
      uid,
      summary,
      organizer: `mailto:${from}@example.org`,
      attendees: ["mailto:bob@example.com"],
    }),
  });
  expect(res.status).toBe(200);
}

/** The README's shots, without the passing notices ("Retry now: 1 changed") over the page. */
async function shot(name: string): Promise<void> {
  await page.evaluate(() => document.querySelector(".toasts")?.remove());
  await b.shot(name, { publish: true });
}

beforeAll(async () => {
  hook = startWebhook("2.0;Success");
  dns = await startFakeDns();
  c = await startConsoleServer({
    domains: ["example.com"],
    deliver: [parseDeliverRule(`webhook:${hook.url}`)],
    webhookSecret: "test-webhook-secret",
    trust: [parseTrustRule("example.org=unsigned:127.0.0.1")],
    peers: [parsePeerFlag("old.example=legacy-http")],
    dnsServer: dns.server,
  });
  // Some history, so the overview has something to show.
  for (const [i, s] of ["Budget planning", "Team lunch", "Roadmap", "1:1"].entries())
    await send(`seed-${i}@example.org`, s);
  hook.status = "3.7;Invalid calendar user";
  await send("seed-x@example.org", "Offsite", "mallory");
  b = await startBrowser(DESKTOP);
  browser = b.context;
  page = b.page;
}, 60_000);

afterAll(async () => {
  await b?.close();
  await c?.close();
  await dns?.stop();
  hook?.stop();
});

describe("the console in Chromium", () => {
  test("sign in", async () => {
    await page.goto(`${c.base}/`);
    await page.fill("#password", "wrong password");
    await page.click("#sign-in");
    await page.waitForSelector("p.error");
    expect(await page.textContent("p.error")).toContain("the password is wrong");
    await Bun.sleep(600);
    await page.fill("#password", PASSWORD);
    await shot("sign-in");
    await page.click("#sign-in");
    await page.waitForSelector("h1:text('Overview')");
    await page.waitForSelector("figure.chart-card");
    // example.org is trusted unsigned from 127.0.0.1 and there is no TLS: a banner says what that risks.
    expect(await page.textContent("p.problem[data-problem=loopback-trust]")).toContain(
      "trusts unsigned requests from loopback, and the endpoint has no TLS",
    );
    const cookies = await browser.cookies(c.base);
    expect(cookies.find((k) => k.name === "isched_session")).toMatchObject({
      httpOnly: true,
      sameSite: "Strict",
    });
    await shot("overview");
  });

  test("the Overview says plainly that outbound iSchedule waits for a key peers cannot find yet", async () => {
    const selector = keysOfDomain(c.isched.db, "example.com")[0]!.selector;
    const banner = await page.waitForSelector("[data-problem='dkim-key-unpublished:example.com']");
    expect(await banner.textContent()).toStartWith(
      `Outbound iSchedule for example.com waits: isched's DKIM key ${selector}._domainkey.example.com is not visible in DNS yet (no TXT record there yet). Publish its record (Keys and DNS); isched looks every minute, or start with --sign-unpublished.`,
    );
  });

  test("an invitation sent through isched appears in Messages without reloading", async () => {
    await page.click("nav a[data-section=messages]");
    await page.waitForSelector("#live.on");
    expect(await page.locator("#messages tbody tr").count()).toBe(5);
    await send("quarterly@example.org", "Quarterly review");
    const row = page.locator("#messages tbody tr", { hasText: "Quarterly review" });
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator("#messages tbody tr").count()).toBe(6);
    await page.locator("#filter-help summary").click();
    // This isched runs without --smtp: e-mail is not offered for the filtered set either.
    await page.waitForSelector(".bulk button.action-imip[data-off]");
    expect(await page.isDisabled(".bulk button.action-imip")).toBe(true);
    expect(await page.isDisabled(".bulk button.action-retry")).toBe(false);
    await shot("messages");
  });

  test("the filter: a click on a value adds it, and the list follows", async () => {
    await page
      .locator("#messages tbody tr", { hasText: "Quarterly review" })
      .locator("button.fv[data-filter='status:failed']")
      .click();
    await page.waitForFunction(
      () => (document.getElementById("filter") as HTMLInputElement).value === "status:failed",
    );
    await page.waitForFunction(() => document.querySelectorAll("#messages tbody tr").length === 2);
    const summaries = await page.locator("#messages td.summary").allTextContents();
    expect(summaries.sort()).toEqual(["Offsite", "Quarterly review"]);
  });

  test("open a message: the invitation for a person, the DKIM verdict, the timeline", async () => {
    await page.locator("#messages td.summary a", { hasText: "Quarterly review" }).click();
    await page.waitForSelector("#itip-title");
    expect(await page.textContent("#itip-title")).toBe("Invitation: Quarterly review");
    expect(await page.textContent("#dkim-verdict")).toContain("trusted");
    const delivery = page.locator("section.delivery");
    expect(await delivery.locator("h3 .badge").textContent()).toBe("failed");
    expect(await delivery.locator("table.timeline tbody tr").count()).toBe(1);
    expect(await delivery.locator("button.action-retry").getAttribute("title")).toMatch(
      /^isched queue retry \d+$/,
    );
    await shot("message-failed");
  });

  test("retry a failed delivery: confirm the count, then watch it become delivered", async () => {
    hook.status = "2.0;Success";
    await page.locator("section.delivery button.action-retry").click();
    await page.waitForSelector("dialog.confirm[open]");
    expect(await page.textContent("dialog.confirm h2")).toBe("Retry now: 1 delivery?");
    await page.click("#confirm-yes");
    await page.waitForSelector("section.delivery h3 .badge:text('delivered')", { timeout: 10_000 });
    expect(await page.locator("section.delivery table.timeline tbody tr").count()).toBe(2);
    await shot("message-retried");
  });

  test("a forged request is listed as refused with its reason, and its page offers no action", async () => {
    const forged = await postAsPeer({
      url: `${c.isched.url}/.well-known/ischedule`,
      originator: "mailto:ceo@example.com",
      recipients: ["mailto:bob@example.com"],
      body: invitation({
        uid: "forged@example.com",
        summary: "Wire the money",
        organizer: "mailto:ceo@example.com",
        attendees: ["mailto:bob@example.com"],
      }),
    });
    expect(forged.status).toBe(403);
    await page.goto(`${c.base}/#/messages?q=${encodeURIComponent("status:refused")}`);
    const row = page.locator("#messages tbody tr", { hasText: "Refused:" });
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator("#messages tbody tr").count()).toBe(1);
    expect(await row.locator("td.summary").textContent()).toContain("DKIM-Signature");
    await row.locator("td.summary a").click();
    await page.waitForSelector("#refusal");
    expect(await page.textContent("#refusal-reason")).toContain("DKIM-Signature");
    expect(await page.textContent("#refusal")).toContain("HTTP 403");
    expect(await page.locator("button.action-retry, button.action-imip, button.action-cancel").count()).toBe(
      0,
    );
    expect(await page.textContent("main")).not.toContain("Wire the money");
    await shot("message-refused");
  });

  const hostKey = generateDkimKey("rsa");
  /** An invitation signed as a default CalendarServer signs: d= its host name; a new message id each time. */
  const sendHostSigned = () =>
    postAsPeer({
      url: `${c.isched.url}/.well-known/ischedule`,
      key: loadSigningKey(hostKey.privateKeyPem, "cal.example.net", "s1"),
      originator: "mailto:cyrus@example.net",
      recipients: ["mailto:bob@example.com"],
      body: invitation({
        uid: "host-signed@example.net",
        summary: "Signed by the host",
        organizer: "mailto:cyrus@example.net",
        attendees: ["mailto:bob@example.com"],
      }),
    });

  test("a message signed with its calendar server's host name says which rule accepted the signer", async () => {
    dns.setTxt("s1._domainkey.cal.example.net", [splitTxtValue(hostKey.record)]);
    expect((await sendHostSigned()).status).toBe(200);
    await page.goto(`${c.base}/#/messages?q=${encodeURIComponent("uid:host-signed@example.net")}`);
    const row = page.locator("#messages tbody tr", { hasText: "Signed by the host" });
    await row.waitFor({ timeout: 10_000 });
    await row.locator("td.summary a").click();
    await page.waitForSelector("#dkim-verdict");
    expect(await page.textContent("#dkim-verdict")).toContain("signature verified");
    expect(await page.locator("table.facts tr", { hasText: "Signer accepted" }).textContent()).toContain(
      "d=cal.example.net and the Originator's domain example.net are both in the organisational domain example.net (relaxed alignment, RFC 7489 §3.1).",
    );
  });

  test("the same message sent again under a new message id is counted on its page, not listed again", async () => {
    // Still on the first message's page (the test before opened it).
    expect(await page.locator("#dkim-verdict").count()).toBe(1);
    expect((await sendHostSigned()).status).toBe(200);
    await page.reload();
    await page.waitForSelector("#resent");
    expect(await page.textContent("#resent")).toMatch(
      /^1 copy under new message ids, the last .+: each got this answer, none was delivered again$/,
    );
    await page.goto(`${c.base}/#/messages?q=${encodeURIComponent("uid:host-signed@example.net")}`);
    await page.locator("#messages tbody tr", { hasText: "Signed by the host" }).waitFor();
    expect(await page.locator("#messages tbody tr").count()).toBe(1);
  });

  test("change a peer's trust policy", async () => {
    await page.goto(`${c.base}/#/peers`);
    await page.waitForSelector("#peers");
    await shot("peers");
    await page.locator("#peers a", { hasText: "example.org" }).click();
    await page.waitForSelector("#trust");
    await page.selectOption("#trust", "deny");
    await page.fill("#policy-note", "paused while they rotate keys");
    await page.click("#save-policy");
    await page.waitForSelector("#policy-now:has-text('refused')");
    expect(
      await createPeerTrust(c.isched.store, [parseTrustRule("example.org=unsigned:127.0.0.1")])(
        "example.org",
      ),
    ).toEqual({ mode: "deny" });
    await page.click("#test-domain");
    await page.waitForSelector("#test-steps li.step >> nth=2");
    await shot("peer");
  });

  test("a peer allowed plain HTTP (--peer D=legacy-http) says so in the list and on its page", async () => {
    await page.goto(`${c.base}/#/peers`);
    const row = page.locator("#peers tr", { hasText: "old.example" });
    expect(await row.locator(".key-warning").textContent()).toBe("plain HTTP allowed");
    await row.locator("a").click();
    expect(await page.textContent("#peer-route")).toBe(
      "Route (--peer): plain HTTP allowed (--peer legacy-http) found by DNS",
    );
  });

  test("rotate a key: new pending key, published, checked, activated; the old one retires", async () => {
    await page.goto(`${c.base}/#/keys`);
    const oldSelector = keysOfDomain(c.isched.db, "example.com")[0]!.selector;
    await page.click("#rotate-example\\.com");
    const pending = await eventually(async () =>
      keysOfDomain(c.isched.db, "example.com").find((k) => k.state === "pending"),
    );
    await page.waitForSelector(`tr[data-selector='${pending.selector}'] .badge:text('pending')`);
    // The administrator publishes the record shown on the page.
    dns.setTxt(`${pending.selector}._domainkey.example.com`, [splitTxtValue(pending.record)]);
    await page.click("section[data-domain='example.com'] button.check-dns");
    await page.waitForSelector(`tr[data-selector='${pending.selector}'] .place .badge:text('matching')`);
    await page.click(`button[data-activate='${pending.selector}']`);
    await page.click("#confirm-yes");
    await page.waitForSelector(
      `tr[data-selector='${pending.selector}'] td:nth-child(3) .badge:text('active')`,
    );
    await page.waitForSelector(`tr[data-selector='${oldSelector}'] td:nth-child(3) .badge:text('retiring')`);
    expect(keysOfDomain(c.isched.db, "example.com").map((k) => k.state)).toEqual(["retiring", "active"]);
    await shot("keys");
    // The active key was seen in DNS by the check: the Overview's banner is gone.
    await page.click("nav a[data-section=overview]");
    await page.waitForSelector("figure.chart-card");
    expect(await page.locator("[data-problem^='dkim-key-unpublished']").count()).toBe(0);
  });

  test("the Keys page says plainly that CalendarServer and Cyrus cannot verify Ed25519", async () => {
    await page.goto(`${c.base}/#/keys`);
    const option = await page.textContent("#type-example\\.com option[value='ed25519']");
    expect(option).toBe("Ed25519 (not verified by CalendarServer or Cyrus)");
    expect(await page.textContent("#type-example\\.com option[value='rsa']")).toBe("RSA 2048 (every peer)");
    await page.selectOption("#type-example\\.com", "ed25519");
    await page.click("#rotate-example\\.com");
    const pending = await eventually(async () =>
      keysOfDomain(c.isched.db, "example.com").find((k) => k.state === "pending"),
    );
    const note = await page.waitForSelector(`tr[data-selector='${pending.selector}'] .key-warning`);
    expect(await note.textContent()).toBe(
      "CalendarServer and Cyrus verify only RSA: they will refuse requests this key signs.",
    );
    await page.click(`tr[data-selector='${pending.selector}'] button:text('Discard')`);
    await page.waitForSelector(`tr[data-selector='${pending.selector}'] .badge:text('retired')`);
  });

  test("verify a pasted request step by step", async () => {
    await page.goto(`${c.base}/#/tools`);
    const fixtures = join(import.meta.dir, "..", "fixtures", "dkim");
    await page.fill("#raw-request", readFileSync(join(fixtures, "v1-invite-rsa.http"), "latin1"));
    await page.fill("#public-key", readFileSync(join(fixtures, "test-rsa-2048.pub.pem"), "utf8"));
    await page.click("#verify");
    await page.waitForSelector("#verify-result li.step");
    // Signed in 2010 with a one-year x=: the steps show where it fails (expired), the rest passes.
    expect(await page.locator("#verify-result li.step-failed strong").allTextContents()).toEqual([
      "Time",
      "Verdict",
    ]);
    await shot("tools");
  });

  test("sign out", async () => {
    await page.click("#sign-out");
    await page.waitForSelector("#password");
    expect((await browser.cookies(c.base)).find((k) => k.name === "isched_session")).toBeUndefined();
  });
});
