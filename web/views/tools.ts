/** Tools: verify a pasted raw signed request step by step, and test a domain. */
import type { VerifyReport } from "../../src/console/verify-steps.ts";
import { api } from "../api.ts";
import { errorBox, h, replace } from "../dom.ts";
import { runPeerTest, stepItem } from "./steps.ts";

export function renderTools(main: HTMLElement): undefined {
  const raw = h("textarea", {
    id: "raw-request",
    rows: 14,
    spellcheck: "false",
    placeholder:
      "POST /.well-known/ischedule HTTP/1.1\nHost: ...\nDKIM-Signature: v=1; ...\n\nBEGIN:VCALENDAR...",
  });
  const key = h("textarea", {
    id: "public-key",
    rows: 3,
    spellcheck: "false",
    placeholder: "optional: the public key (PEM or DKIM record) instead of retrieving it",
  });
  const at = h("input", {
    id: "verify-at",
    placeholder: "as of (UTC, optional): 2010-03-08T17:40",
    spellcheck: "false",
    size: 40,
  });
  const result = h("div", { id: "verify-result" });
  const verify = h(
    "form",
    { class: "card wide" },
    h("h2", null, "Verify this request"),
    h(
      "p",
      { class: "muted" },
      "Paste a raw signed HTTP request: isched checks it as its endpoint would. Same as isched dkim verify FILE.",
    ),
    raw,
    key,
    h("div", { class: "filter" }, at, h("button", { type: "submit", id: "verify" }, "Verify")),
    result,
  );
  verify.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // A signature is checked against a moment: now, or the one given (to look at an old request).
    const atMs = at.value.trim() ? Date.parse(`${at.value.trim().replace(/Z$/, "")}Z`) : undefined;
    if (atMs !== undefined && Number.isNaN(atMs))
      return replace(result, errorBox("as of: write a UTC time such as 2010-03-08T17:40"));
    replace(result, h("p", { class: "muted" }, "verifying..."));
    try {
      const r = await api.post<VerifyReport>("/tools/verify", {
        request: raw.value,
        publicKey: key.value.trim() || undefined,
        atMs,
      });
      replace(result, h("ol", { class: "steps" }, r.steps.map(stepItem)));
    } catch (e) {
      replace(result, errorBox((e as Error).message));
    }
  });
  const domain = h("input", { id: "tool-domain", placeholder: "example.org", spellcheck: "false" });
  const selector = h("input", {
    id: "tool-selector",
    placeholder: "selector (optional)",
    spellcheck: "false",
  });
  const testBox = h("div");
  const test = h(
    "form",
    { class: "card wide" },
    h("h2", null, "Test this domain"),
    h("div", { class: "filter" }, domain, selector, h("button", { type: "submit" }, "Test")),
    testBox,
  );
  test.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (domain.value.trim())
      void runPeerTest(testBox, domain.value.trim().toLowerCase(), selector.value.trim());
  });
  replace(main, h("h1", null, "Tools"), verify, test);
  return undefined;
}
