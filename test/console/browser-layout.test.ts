/**
 * The console in Chromium at a desktop size (1280x800) and a phone size (390x844), on one isched
 * with 250 messages and more: no page is wider than the window, names and URLs wrap at dots and
 * slashes, paging through the log never shows a message twice, the "Older" button only shows when
 * there is an older page, a confirmation closes when the user goes to another page, an invalid
 * filter disables the actions and keeps the live view on the last valid one. Every page's
 * screenshot at both sizes is kept under .test-artifacts/screenshots.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { parseDeliverRule, parseTrustRule } from "../../src/config/rules.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, postAsPeer } from "../support/isched.ts";
import { badBreaks, DESKTOP, overflow, PHONE, startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, PASSWORD, startConsoleServer } from "./_console.ts";
import { eventually, startWebhook, type TestWebhook } from "./_webhook.ts";

const MESSAGES = 250;
/** The phone-size pages the README shows. */
const PUBLISHED_ON_PHONE = ["overview", "message-failed"];

let c: ConsoleServer;
let hook: TestWebhook;
let dns: RunningDnsmasq;
let b: TestBrowser;
let page: Page;
let failedId = 0;
let refusedId = 0;

async function send(uid: string, o: { summary?: string; from?: string; method?: string } = {}) {
  const from = o.from ?? "alice@example.org";
  return postAsPeer({
    url: `${c.isched.url}/.well-known/ischedule`,
    originator: `mailto:${from}`,
    recipients: ["mailto:bob@example.com"],
    body: invitation({
      uid,
      summary: o.summary ?? `Meeting ${uid}`,
      method: o.method,
      organizer: `mailto:${from}`,
      attendees: ["mailto:bob@example.com"],
    }),
  });
}

async function idOf(q: string): Promise<number> {
  const res = await c.token(`/api/v1/messages?q=${encodeURIComponent(q)}`);
  const page = (await res.json()) as { messages: { id: number }[] };
  return page.messages[0]!.id;
}

async function signIn(): Promise<void> {
  await page.goto(`${c.base}/`);
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.waitForSelector("h1:text('Overview')");
}

/** Each page of the console, with what shows that it has drawn. */
const PAGES: readonly { name: string; hash: () => string; ready: string }[] = [
  { name: "overview", hash: () => "#/overview", ready: "figure.chart-card" },
  { name: "messages", hash: () => "#/messages", ready: "#messages tbody tr" },
  { name: "message-failed", hash: () => `#/messages/${failedId}`, ready: "section.delivery" },
  { name: "message-refused", hash: () => `#/messages/${refusedId}`, ready: "#refusal" },
  { name: "peers", hash: () => "#/peers", ready: "#peers" },
  { name: "peer", hash: () => "#/peers/example.org", ready: "#trust" },
  { name: "keys", hash: () => "#/keys", ready: ".record" },
  { name: "tools", hash: () => "#/tools", ready: "#raw-request" },
];

beforeAll(async () => {
  hook = startWebhook("2.0;Success");
  dns = await startDnsmasq({ zones: ["example.com", "example.org", "example.net"] });
  c = await startConsoleServer({
    domains: ["example.com"],
    deliver: [parseDeliverRule(`webhook:${hook.url}`)],
    webhookSecret: "test-webhook-secret",
    trust: [parseTrustRule("example.org=unsigned:127.0.0.1")],
    dnsServer: dns.server,
  });
  // 250 invitations, ten at a time, then a few that the calendar server refuses, and one from a
  // domain that must sign (refused at intake).
  for (let i = 0; i < MESSAGES; i += 10) {
    const batch = Array.from({ length: Math.min(10, MESSAGES - i) }, (_, j) =>
      send(`bulk-${i + j}@example.org`, { summary: `Bulk meeting number ${i + j}` }),
    );
    for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
  }
  hook.status = "3.7;Invalid calendar user";
  for (let i = 0; i < 8; i++) {
    const r = await send(`failing-${i}@example.org`, {
      summary: "Quarterly review with a rather long title that goes on",
    });
    expect(r.status).toBe(200);
  }
  await eventually(async () => {
    const res = await c.token(`/api/v1/messages?q=${encodeURIComponent("status:failed")}`);
    return ((await res.json()) as { messages: unknown[] }).messages.length === 8;
  });
  const refused = await send("refused-1@example.net", { from: "mallory@example.net", summary: "Unsigned" });
  expect(refused.status).toBe(403);
  failedId = await idOf("status:failed peer:example.org");
  refusedId = await idOf("peer:example.net");
  b = await startBrowser(DESKTOP);
  page = b.page;
}, 120_000);

afterAll(async () => {
  await b?.close();
  await c?.close();
  await dns?.stop();
  hook?.stop();
});

for (const [size, viewport] of [
  ["desktop", DESKTOP],
  ["phone", PHONE],
] as const) {
  describe(`at ${viewport.width}x${viewport.height}`, () => {
    test("the sign-in page fits the window", async () => {
      await page.setViewportSize(viewport);
      await page.context().clearCookies();
      await page.goto(`${c.base}/`);
      await page.waitForSelector("#password");
      expect(await overflow(page)).toEqual({ width: viewport.width, viewport: viewport.width, culprits: [] });
      await b.shot(`${size}-sign-in`);
    });

    test("no page is wider than the window", async () => {
      await signIn();
      for (const p of PAGES) {
        await page.goto(`${c.base}/${p.hash()}`);
        await page.waitForSelector(p.ready);
        // The Keys page checks DNS as it opens; wait for the verdicts so the shot shows them.
        if (p.name === "keys") await page.waitForSelector(".check .badge");
        const o = await overflow(page);
        expect({ page: p.name, ...o, badBreaks: await badBreaks(page) }).toEqual({
          page: p.name,
          width: viewport.width,
          viewport: viewport.width,
          culprits: [],
          badBreaks: [],
        });
        await b.shot(`${size}-${p.name}`, {
          publish: size === "phone" && PUBLISHED_ON_PHONE.includes(p.name),
        });
      }
    }, 60_000);

    test("the navigation stays inside the window, one line per section name", async () => {
      const links = await page.$$eval("header.top nav a, #sign-out", (els) =>
        els.map((e) => {
          const range = document.createRange();
          range.selectNodeContents(e);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
          return { text: e.textContent, inside: e.getBoundingClientRect().right <= window.innerWidth, lines };
        }),
      );
      expect(links.length).toBe(6);
      for (const l of links) expect(l).toEqual({ text: l.text, inside: true, lines: 1 });
    });
  });
}

describe("paging through the log", () => {
  const rowIds = () =>
    page.$$eval("#messages tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-id")));

  test("Older messages pages through all of them, each once, then goes away", async () => {
    await page.setViewportSize(DESKTOP);
    await page.goto(`${c.base}/#/messages`);
    await page.waitForSelector("#live.on");
    await page.waitForFunction(() => document.querySelectorAll("#messages tbody tr").length === 50);
    const total = MESSAGES + 9;
    for (let shown = 50; shown < total; shown = Math.min(total, shown + 50)) {
      expect(await page.isVisible("#older")).toBe(true);
      await page.click("#older");
      const next = Math.min(total, shown + 50);
      await page.waitForFunction((n) => document.querySelectorAll("#messages tbody tr").length >= n, next);
    }
    await page.waitForSelector("#older", { state: "hidden" });
    const ids = await rowIds();
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
    const numbers = ids.map(Number);
    expect(numbers).toEqual([...numbers].sort((a, b) => b - a));
  }, 60_000);

  for (const [what, q] of [
    ["8 messages", "status:failed peer:example.org"],
    ["no match", "uid:nothing-like-this"],
  ] as const) {
    test(`no Older button with ${what}`, async () => {
      await page.goto(`${c.base}/#/messages?q=${encodeURIComponent(q)}`);
      await page.waitForSelector(what === "8 messages" ? "#messages tbody tr" : "#filter-message p.no-match");
      await page.waitForTimeout(200);
      expect(await page.isVisible("#older")).toBe(false);
    });
  }
});

describe("a confirmation", () => {
  test("closes when the user goes to another page, and nothing runs", async () => {
    await page.goto(`${c.base}/#/messages?q=${encodeURIComponent("status:failed peer:example.org")}`);
    await page.waitForSelector("#messages tbody tr");
    await page.click(".bulk button.action-retry");
    await page.waitForSelector("dialog.confirm[open]");
    expect(await page.textContent("dialog.confirm h2")).toBe("Retry now: 8 deliveries?");
    // The dialog is modal, so the way out is the keyboard, the back button or an address.
    await page.evaluate(() => {
      location.hash = "#/peers";
    });
    await page.waitForSelector("#peers");
    expect(await page.locator("dialog").count()).toBe(0);
    await page.waitForTimeout(300);
    const res = await c.token(`/api/v1/messages?q=${encodeURIComponent("status:failed peer:example.org")}`);
    expect(((await res.json()) as { messages: unknown[] }).messages).toHaveLength(8);
  });
});

describe("an invalid filter", () => {
  test("disables the actions, keeps the live view on the last valid filter, and suggests the key", async () => {
    await page.goto(`${c.base}/#/messages?q=${encodeURIComponent("status:failed peer:example.org")}`);
    await page.waitForSelector("#live.on");
    await page.fill("#filter", "stauts:failed peer:example.org");
    await page.press("#filter", "Enter");
    await page.waitForSelector("#filter-message p.error");
    expect(await page.textContent("#filter-message")).toContain(
      'unknown key "stauts:" (did you mean status?)',
    );
    // Read in one evaluation: the live view may redraw the bar between two element handles' calls.
    const disabled = await page.$$eval(".bulk button.action", (bs) =>
      bs.map((b) => (b as HTMLButtonElement).disabled),
    );
    expect(disabled.length).toBeGreaterThan(0);
    expect(disabled.every(Boolean)).toBe(true);
    // The list and its live view stay on the last valid filter, with no Older button for 8 rows.
    expect(await page.textContent("#filter-message")).toContain(
      "Still showing the last valid filter: status:failed peer:example.org",
    );
    await page.waitForTimeout(1500);
    expect(await page.textContent("#live")).toBe("live");
    expect(await page.locator("#messages tbody tr").count()).toBe(8);
    expect(await page.isVisible("#older")).toBe(false);
    // The suggestion is one click away.
    await page.click("#filter-message button.suggestion");
    await page.waitForFunction(
      () =>
        (document.getElementById("filter") as HTMLInputElement).value === "status:failed peer:example.org",
    );
    await page.waitForFunction(() => document.querySelectorAll("#messages tbody tr").length === 8);
    expect(await page.isDisabled(".bulk button.action-retry")).toBe(false);
  });
});
