/**
 * The console as the compiled `dist/isched` serves it, in Chromium: the page, its scripts and styles
 * come out of the executable (Bun's HTML bundle, embedded by `bun build --compile`), the page signs
 * in through the API on the same listener, and nothing it asks for fails; the API's schemas hold in
 * the minified executable as they do from source.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { type ServedBinary, serveBinary } from "../support/serve-binary.ts";
import { startBrowser, type TestBrowser } from "./_browser.ts";

const PASSWORD = "a good long password";

let served: ServedBinary;
let b: TestBrowser;
let page: Page;
const failed: string[] = [];
const assets: string[] = [];

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "isched-password-"));
  const passwordFile = join(dir, "admin-password");
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    served = await serveBinary(["--domain", "example.com", "--admin-password-file", passwordFile]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  b = await startBrowser();
  page = b.page;
  page.on("response", (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    if (/\.(js|css)$/.test(new URL(r.url()).pathname))
      assets.push(`${r.status()} ${new URL(r.url()).pathname}`);
  });
  page.on("requestfailed", (r) => failed.push(`failed ${r.url()}`));
}, 120_000);

afterAll(async () => {
  await b?.close();
  await served?.stop();
});

test("dist/isched serves the console page with its scripts and styles, and it signs in", async () => {
  await page.goto(`${served.consoleUrl}/`);
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in");
  await page.waitForSelector("h1:text('Overview')");
  expect(assets.some((a) => /^200 \/.+\.js$/.test(a))).toBe(true);
  expect(assets.some((a) => /^200 \/.+\.css$/.test(a))).toBe(true);
  expect(failed).toEqual([]);
  expect(b.consoleErrors).toEqual([]);
}, 60_000);

test("dist/isched answers the API beside the page: the route list, a query out of range, and 404 off the API", async () => {
  const routes = await served.api<{ routes: { path: string }[] }>("/routes");
  expect(routes.status).toBe(200);
  expect(routes.body.routes.map((r) => r.path)).toContain("/api/v1/overview");
  // The schemas are checked in the minified executable too (mount.ts: no transforms).
  for (const limit of ["0", "501", "1e2", "-5"]) {
    const page = await served.api<{ error: string }>(`/messages?limit=${limit}`);
    expect({ limit, status: page.status, error: page.body.error }).toEqual({
      limit,
      status: 400,
      error: "limit must be a whole number from 1 to 500",
    });
  }
  const missing = await fetch(`${served.consoleUrl}/no-such-page`);
  expect(missing.status).toBe(404);
  expect(missing.headers.get("x-content-type-options")).toBe("nosniff");
});
