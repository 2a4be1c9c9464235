/**
 * A first visit in Chromium to an isched without a console password: the setup form loads without a
 * single error in the browser's console (no 401, no missing favicon), an error from a wrong token goes
 * away when the browser itself stops a too-short password, and the right token and password lead in.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { createSetupToken } from "../../src/console/auth.ts";
import { startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, startConsoleServer } from "./_console.ts";

let c: ConsoleServer;
let b: TestBrowser;
let page: Page;
const failed: string[] = [];

beforeAll(async () => {
  c = await startConsoleServer({}, { password: null });
  b = await startBrowser();
  page = b.page;
  page.on("response", (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  page.on("requestfailed", (r) => failed.push(`failed ${r.url()}`));
}, 30_000);

afterAll(async () => {
  await b?.close();
  await c?.close();
});

test("the first page loads with no error in the browser's console, and has an icon", async () => {
  await page.goto(`${c.base}/`);
  await page.waitForSelector("#setup-token");
  await page.waitForTimeout(300);
  expect(b.consoleErrors).toEqual([]);
  expect(failed).toEqual([]);
  expect(await page.getAttribute("link[rel=icon]", "href")).toStartWith("data:image/svg+xml,");
  await b.shot("setup");
});

test("an old error goes away when the browser blocks a too-short password", async () => {
  await page.fill("#setup-token", "not the token");
  await page.fill("#new-password", "a good long password");
  await page.fill("#new-password-again", "a good long password");
  await page.click("button[type=submit]");
  await page.waitForSelector("p.error");
  expect(await page.textContent("p.error")).toContain("the setup token is wrong");
  await page.fill("#new-password", "short");
  await page.fill("#new-password-again", "short");
  await page.click("button[type=submit]");
  // The browser refuses to submit (minlength); the wrong-token message must not stay as if it applied.
  expect(await page.$eval("#new-password", (e) => (e as HTMLInputElement).validity.tooShort)).toBe(true);
  expect(await page.locator("p.error").count()).toBe(0);
});

test("the right token and a good password sign in", async () => {
  const token = (await createSetupToken(c.isched.store))!;
  await page.waitForTimeout(600); // the failed guess above slows this address down for 0.5 s
  await page.fill("#setup-token", token);
  await page.fill("#new-password", "a good long password");
  await page.fill("#new-password-again", "a good long password");
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:text('Overview')");
  expect(failed.filter((f) => !f.includes("/api/v1/setup"))).toEqual([]);
});
