/**
 * Keys and DNS: our keys with their latest check (what DNS, the public /.well-known/domainkey and
 * isched itself serve, with the usual mistakes named), every record to publish in each form with a
 * copy button and what DNS serves for it now, a zone file, and rotation: new key (pending) → check →
 * activate → old one retires. The page checks every domain as it opens; one button checks again.
 */

import type { DomainKeys } from "../../src/console/keys-service.ts";
import type { KeyCheck, PlaceCheck } from "../../src/keys/key-check.ts";
import { api } from "../api.ts";
import { badge, breakable, copyButton, errorBox, h, nameCode, replace, tableBox, time } from "../dom.ts";
import { confirmDialog, toast } from "./actions.ts";

interface KeysPage {
  publicEndpoint: { url: string; fromSetting: boolean };
  defaultOverlapDays: number;
  domains: DomainKeys[];
}

type CheckedRecord = DomainKeys["records"][number];

/** What one place serves, compared with ours: the verdict, where it was asked, what is wrong. */
function place(name: string, p: PlaceCheck, o: { optional?: boolean } = {}): HTMLElement {
  const fine = p.status === "missing" && o.optional && p.mistakes.length === 0;
  return h(
    "div",
    { class: "place" },
    name ? [h("strong", null, name), " "] : null,
    badge(p.status, undefined, fine ? "state-optional" : undefined),
    " ",
    nameCode(p.where, { class: "where" }),
    p.found.length && p.status !== "matching"
      ? h(
          "div",
          { class: "muted found" },
          "found: ",
          p.found.map((f) => h("code", null, f)),
        )
      : null,
    p.mistakes.length
      ? h(
          "ul",
          { class: "mistakes" },
          p.mistakes.map((m) => h("li", null, m)),
        )
      : null,
  );
}

function checkView(c: KeyCheck | null, checking: boolean): HTMLElement {
  if (!c) return h("span", { class: "muted" }, checking ? "checking..." : "not checked");
  return h(
    "div",
    { class: "check" },
    place("DNS", c.dns),
    place("well-known", c.wellKnown),
    place("isched", c.local),
  );
}

/** One record: a heading row with its verdict, then one row per form of its value, each copyable. */
function recordRows(r: CheckedRecord, checking: boolean): HTMLElement {
  // Names wrap between labels only; values (a key's p=) wherever they must.
  const line = (label: string, value: string, name = false) =>
    h(
      "tr",
      { class: "value" },
      h("th", null, label),
      h("td", null, name ? nameCode(value) : h("code", null, breakable(value))),
      h("td", null, copyButton(value)),
    );
  const verdict = r.check
    ? place("", r.check, { optional: r.optional })
    : h("span", { class: "muted" }, checking ? "checking..." : "not checked");
  return h(
    "tbody",
    { class: "record", "data-name": r.name, "data-type": r.type },
    h(
      "tr",
      { class: "head" },
      h(
        "td",
        { colspan: 3 },
        h(
          "h4",
          null,
          `${r.type} `,
          r.purpose,
          r.optional ? [" ", badge("optional")] : null,
          r.note ? h("span", { class: "muted note" }, ` ${r.note}`) : null,
        ),
        h("div", { class: "verdict" }, verdict),
      ),
    ),
    line("Name", r.name, true),
    line("Name in the zone", r.relative, true),
    line(r.type === "TXT" ? "Value (one string)" : "Value", r.value, r.type === "SRV"),
    r.type === "TXT" && r.strings.length > 1 ? line("Value (255-byte strings)", r.quoted) : null,
    line("Zone file", r.zoneLine),
  );
}

function recordsTable(records: readonly CheckedRecord[], checking: boolean): HTMLElement {
  return h(
    "table",
    { class: "records" },
    h("colgroup", null, h("col", { class: "label" }), h("col"), h("col", { class: "copy" })),
    records.map((r) => recordRows(r, checking)),
  );
}

function domainView(
  d: DomainKeys,
  o: { overlapDays: number; checking: boolean; reload: () => void; check: () => void },
): HTMLElement {
  const act = async (label: string, work: () => Promise<unknown>) => {
    try {
      await work();
      toast(label);
    } catch (e) {
      toast((e as Error).message, "error");
    }
    o.reload();
  };
  const keyRows = d.keys.map((k) => {
    const buttons: HTMLElement[] = [];
    if (k.state === "pending" && k.id !== null) {
      const activate = h(
        "button",
        { type: "button", "data-activate": k.selector, title: "Sign with this key once peers can find it" },
        "Activate",
      );
      activate.addEventListener("click", async () => {
        const ok = await confirmDialog(
          `Sign with ${k.selector}?`,
          `The current key stays published for ${o.overlapDays} days, then retires. isched checks first that peers can find ${k.selector}.`,
        );
        if (ok) await act(`${k.selector} signs now`, () => api.post(`/keys/${k.id}/activate`, {}));
      });
      const discard = h("button", { type: "button", class: "quiet" }, "Discard");
      discard.addEventListener("click", () =>
        act(`${k.selector} discarded`, () => api.post(`/keys/${k.id}/retire`, {})),
      );
      buttons.push(activate, discard);
    }
    if (k.state === "retiring" && k.id !== null) {
      const retire = h("button", { type: "button", class: "quiet" }, "Retire now");
      retire.addEventListener("click", () =>
        act(`${k.selector} retired`, () => api.post(`/keys/${k.id}/retire`, {})),
      );
      buttons.push(retire);
    }
    return h(
      "tr",
      { "data-selector": k.selector },
      h(
        "td",
        null,
        h("strong", null, k.selector),
        k.source === "--dkim-key" ? h("div", { class: "muted" }, "--dkim-key") : null,
      ),
      h(
        "td",
        null,
        `${k.algorithm}, ${k.bits} bits`,
        // No deployed peer verifies ed25519-sha256 (CalendarServer's dkim.py, Cyrus's libopendkim).
        k.algorithm === "ed25519-sha256" && k.state !== "retired"
          ? h(
              "div",
              { class: "key-warning" },
              "CalendarServer and Cyrus verify only RSA: they will refuse requests this key signs.",
            )
          : null,
      ),
      h(
        "td",
        null,
        badge(k.state),
        k.retireAfter ? h("div", { class: "muted" }, "retires ", time(k.retireAfter)) : null,
      ),
      h("td", null, time(k.createdAt)),
      h("td", null, k.state === "retired" ? "-" : checkView(k.check, o.checking)),
      h("td", { class: "buttons" }, buttons),
    );
  });
  const type = h(
    "select",
    { "aria-label": "Key type", id: `type-${d.domain}` },
    h("option", { value: "rsa" }, "RSA 2048 (every peer)"),
    h("option", { value: "ed25519" }, "Ed25519 (not verified by CalendarServer or Cyrus)"),
  );
  const generate = h(
    "button",
    { type: "button", id: `rotate-${d.domain}`, class: "rotate" },
    "New key (rotate)",
  );
  generate.addEventListener("click", () =>
    act(`New pending key for ${d.domain}: publish its record`, () =>
      api.post("/keys", { domain: d.domain, type: type.value }),
    ),
  );
  const check = h(
    "button",
    { type: "button", class: "quiet check-dns", disabled: o.checking },
    o.checking ? "Checking DNS..." : "Check DNS now",
  );
  check.addEventListener("click", o.check);
  return h(
    "section",
    { class: "card wide", "data-domain": d.domain },
    h("h2", null, d.domain),
    h(
      "div",
      { class: "buttons" },
      check,
      h(
        "span",
        { class: "muted checked-at" },
        d.checkedAtMs === null ? null : ["last checked ", time(d.checkedAtMs)],
      ),
    ),
    h("h3", null, "Keys"),
    tableBox(
      h(
        "table",
        { class: "keys" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Selector", "Key", "State", "Created", "Published?", ""].map((c) => h("th", null, c)),
          ),
        ),
        h("tbody", null, keyRows),
      ),
    ),
    h(
      "div",
      { class: "buttons" },
      type,
      generate,
      h(
        "a",
        {
          href: `/api/v1/keys/zone?domain=${encodeURIComponent(d.domain)}`,
          download: `isched-${d.domain}.zone`,
          class: "button quiet",
        },
        "Download zone file",
      ),
    ),
    h("h3", null, "Records to publish"),
    recordsTable(d.records, o.checking),
  );
}

export function renderKeys(main: HTMLElement): () => void {
  let stopped = false;
  let page: KeysPage | undefined;
  let checking = false;
  const draw = () => {
    if (stopped || !page) return;
    const p = page;
    const endpoint = h("input", {
      id: "public-endpoint",
      value: p.publicEndpoint.url,
      spellcheck: "false",
      size: 50,
    });
    const form = h(
      "form",
      { class: "card wide" },
      h("h2", null, "Where peers reach us"),
      h("label", { class: "row" }, "Public endpoint ", endpoint, h("button", { type: "submit" }, "Save")),
      p.publicEndpoint.fromSetting
        ? null
        : h(
            "p",
            { class: "muted" },
            "A guess from this host's name: set the URL peers use (the SRV records name its host and port).",
          ),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api.put("/keys/endpoint", { url: endpoint.value.trim() });
        toast("Public endpoint saved");
        void load();
      } catch (e) {
        toast((e as Error).message, "error");
      }
    });
    replace(
      main,
      h("h1", null, "Keys and DNS"),
      form,
      p.domains.map((d) =>
        domainView(d, {
          overlapDays: p.defaultOverlapDays,
          checking,
          reload: () => void load().then(check),
          check,
        }),
      ),
    );
  };
  // Asks DNS and the well-known documents again for every domain, then shows what they serve.
  const check = async () => {
    checking = true;
    draw();
    try {
      const r = await api.post<{ domains: DomainKeys[] }>("/keys/check", {});
      if (page) page = { ...page, domains: r.domains };
    } catch (e) {
      toast(`Check failed: ${(e as Error).message}`, "error");
    } finally {
      checking = false;
      draw();
    }
  };
  const load = async () => {
    try {
      page = await api.get<KeysPage>("/keys");
      draw();
    } catch (e) {
      if (!stopped) replace(main, h("h1", null, "Keys and DNS"), errorBox((e as Error).message));
    }
  };
  void load().then(() => (page ? check() : undefined));
  return () => {
    stopped = true;
  };
}
