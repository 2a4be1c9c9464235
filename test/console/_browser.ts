/**
 * Debian's Chromium, headless, driven by playwright-core: one browser per test file, with the
 * helpers the console's browser tests share: screenshots (kept under .test-artifacts/screenshots;
 * the README's also in docs/screenshots with ISCHED_UPDATE_SCREENSHOTS=1), the page's console
 * errors, whether a page is wider than the window, and names that wrap inside a label.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

// Every run saves its screenshots under .test-artifacts/; ISCHED_UPDATE_SCREENSHOTS=1 also refreshes
// the README's copies in docs/screenshots (so an ordinary test run leaves the tree as it was).
export const SHOTS = join(import.meta.dir, "..", "..", ".test-artifacts", "screenshots");
const PUBLISHED = join(import.meta.dir, "..", "..", "docs", "screenshots");

export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Messages the page logged as errors (a failed request shows up here too), since the last clear. */
  readonly consoleErrors: string[];
  /** Saves a full-page screenshot; `publish`: also the README's copy, with ISCHED_UPDATE_SCREENSHOTS=1. */
  shot(name: string, o?: { publish?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export async function startBrowser(
  viewport: { width: number; height: number } = DESKTOP,
): Promise<TestBrowser> {
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "isched-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  return {
    context,
    page,
    consoleErrors,
    shot: async (name, o = {}) => {
      const png = await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
      if (o.publish && process.env.ISCHED_UPDATE_SCREENSHOTS)
        writeFileSync(join(PUBLISHED, `${name}.png`), png);
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** How far the page reaches past the window's right edge (0 when it fits), and what sticks out. */
export async function overflow(page: Page): Promise<{ width: number; viewport: number; culprits: string[] }> {
  return page.evaluate(() => {
    const viewport = window.innerWidth;
    const width = document.documentElement.scrollWidth;
    const culprits: string[] = [];
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= viewport + 0.5) continue;
      // Inside a box that scrolls on its own, sticking out is what the box is for.
      let p = el.parentElement;
      let scrolled = false;
      while (p && p !== document.body) {
        const o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") scrolled = true;
        p = p.parentElement;
      }
      if (scrolled) continue;
      const id = el.id ? `#${el.id}` : "";
      const cls = el.getAttribute("class") ? `.${el.getAttribute("class")!.split(" ").join(".")}` : "";
      culprits.push(`${el.tagName.toLowerCase()}${id}${cls} right=${Math.round(r.right)}`);
    }
    return { width, viewport, culprits: culprits.slice(0, 8) };
  });
}

/**
 * The names and URLs (`code.name`, `.name`) on the page that wrap inside a label or a path segment
 * instead of after a dot, slash or similar: each as the text around the break ("ischedu|le").
 */
export async function badBreaks(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of document.querySelectorAll("code.name")) {
      const text = el.textContent ?? "";
      // The top of each character, in order, across the element's text nodes.
      const tops: number[] = [];
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        for (let i = 0; i < (n.textContent ?? "").length; i++) {
          const r = document.createRange();
          r.setStart(n, i);
          r.setEnd(n, i + 1);
          tops.push(r.getBoundingClientRect().top);
        }
      }
      for (let i = 1; i < tops.length; i++) {
        if (tops[i]! > tops[i - 1]! + 2 && !/[./?&=@:_\s-]/.test(text[i - 1]!))
          out.push(`${text.slice(Math.max(0, i - 8), i)}|${text.slice(i, i + 8)}`);
      }
    }
    return out;
  });
}
