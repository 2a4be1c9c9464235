/** A list of checked steps (test this domain, verify this request), each with its outcome and time. */
import type { TestStep } from "../../src/console/peer-test.ts";
import { ApiError, stream } from "../api.ts";
import { badge, errorBox, h, replace } from "../dom.ts";

export interface ShownStep {
  title: string;
  outcome: string;
  lines: string[];
  ms?: number;
}

export function stepItem(s: ShownStep): HTMLElement {
  return h(
    "li",
    { class: `step step-${s.outcome}` },
    h(
      "div",
      { class: "step-head" },
      badge(s.outcome),
      " ",
      h("strong", null, s.title),
      s.ms === undefined ? null : h("span", { class: "muted" }, ` ${s.ms} ms`),
    ),
    h(
      "ul",
      null,
      s.lines.map((l) => h("li", null, l)),
    ),
  );
}

/** Runs "test this domain" into `box`, step by step as the server reports them. */
export async function runPeerTest(box: HTMLElement, domain: string, selector: string): Promise<void> {
  const list = h("ol", { class: "steps", id: "test-steps" });
  const status = h("p", { class: "muted" }, `Testing ${domain}...`);
  replace(box, status, list);
  try {
    await stream<TestStep>(`/peers/${encodeURIComponent(domain)}/test`, selector ? { selector } : {}, (s) => {
      list.appendChild(stepItem(s));
    });
    status.textContent = `Tested ${domain} at ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (e) {
    replace(box, errorBox(e instanceof ApiError ? e.message : String(e)));
  }
}
