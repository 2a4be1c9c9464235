/**
 * Keys and DNS: our keys with their latest check (what DNS, the public /.well-known/domainkey and
 * isched itself serve, with the usual mistakes named), every record to publish in each form with
 * copy buttons and a zone file, and rotation: new key (pending) → check → activate → old one retires.
 */
import type { DnsRecordView } from "../../src/console/dns-records.ts";
import type { KeyCheck, PlaceCheck } from "../../src/console/key-check.ts";
import type { DomainKeys } from "../../src/console/keys-service.ts";
import { api } from "../api.ts";
import { badge, copyButton, errorBox, h, replace, time } from "../dom.ts";
import { confirmDialog, toast } from "./actions.ts";

interface KeysPage {
  publicEndpoint: { url: string; fromSetting: boolean };
  defaultOverlapDays: number;
  domains: DomainKeys[];
}

function place(name: string, p: PlaceCheck): HTMLElement {
  return h(
    "div",
    { class: "place" },
    h("strong", null, name),
    " ",
    badge(p.status),
    " ",
    h("code", { class: "where" }, p.where),
    p.found.length && p.status !== "matching"
      ? h(
          "div",
          { class: "muted" },
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

function checkView(c: KeyCheck | null): HTMLElement {
  if (!c) return h("span", { class: "muted" }, "not checked yet");
  return h(
    "div",
    { class: "check" },
    place("DNS", c.dns),
    place("well-known", c.wellKnown),
    place("isched", c.local),
    h("div", { class: "muted" }, "last checked ", time(c.checkedAtMs)),
  );
}

function recordView(r: DnsRecordView): HTMLElement {
  const line = (label: string, value: string) =>
    h(
      "tr",
      null,
      h("th", null, label),
      h("td", null, h("code", null, value)),
      h("td", null, copyButton(value)),
    );
  return h(
    "div",
    { class: `record${r.optional ? " optional" : ""}` },
    h("h4", null, `${r.type} ${r.purpose}`),
    h(
      "table",
      { class: "facts" },
      h(
        "tbody",
        null,
        line("Name", r.name),
        line("Name in the zone", r.relative),
        line(r.type === "TXT" ? "Value (one string)" : "Value", r.value),
        r.type === "TXT" && r.strings.length > 1 ? line("Value (255-byte strings)", r.quoted) : null,
        line("Zone file", r.zoneLine),
      ),
    ),
  );
}

function domainView(d: DomainKeys, overlapDays: number, reload: () => void): HTMLElement {
  const act = async (label: string, work: () => Promise<unknown>) => {
    try {
      await work();
      toast(label);
    } catch (e) {
      toast((e as Error).message, "error");
    }
    reload();
  };
  const keyRows = d.keys.map((k) => {
    const buttons: HTMLElement[] = [];
    if (k.id !== null && k.state !== "retired") {
      const check = h("button", { type: "button", class: "quiet", "data-check": k.selector }, "Check now");
      check.addEventListener("click", () =>
        act(`Checked ${k.selector}`, () =>
          api.post("/keys/check", { domain: d.domain, selector: k.selector }),
        ),
      );
      buttons.push(check);
    }
    if (k.state === "pending" && k.id !== null) {
      const activate = h(
        "button",
        { type: "button", "data-activate": k.selector, title: "Sign with this key once peers can find it" },
        "Activate",
      );
      activate.addEventListener("click", async () => {
        const ok = await confirmDialog(
          `Sign with ${k.selector}?`,
          `The current key stays published for ${overlapDays} days, then retires. isched checks first that peers can find ${k.selector}.`,
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
      h("td", null, k.state === "retired" ? "-" : checkView(k.check)),
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
  const checkAll = h("button", { type: "button", class: "quiet" }, "Check DNS now");
  checkAll.addEventListener("click", () =>
    act(`Checked ${d.domain}`, () => api.post("/keys/check", { domain: d.domain })),
  );
  return h(
    "section",
    { class: "card wide", "data-domain": d.domain },
    h("h2", null, d.domain),
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
    h(
      "div",
      { class: "buttons" },
      type,
      generate,
      checkAll,
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
    d.records.map(recordView),
  );
}

export function renderKeys(main: HTMLElement): undefined {
  const load = async () => {
    try {
      const page = await api.get<KeysPage>("/keys");
      const endpoint = h("input", {
        id: "public-endpoint",
        value: page.publicEndpoint.url,
        spellcheck: "false",
        size: 50,
      });
      const form = h(
        "form",
        { class: "card wide" },
        h("h2", null, "Where peers reach us"),
        h("label", { class: "row" }, "Public endpoint ", endpoint, h("button", { type: "submit" }, "Save")),
        page.publicEndpoint.fromSetting
          ? null
          : h(
              "p",
              { class: "muted" },
              "A guess from this host's name: set the URL peers use (the SRV record names its host and port).",
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
        page.domains.map((d) => domainView(d, page.defaultOverlapDays, load)),
      );
    } catch (e) {
      replace(main, h("h1", null, "Keys and DNS"), errorBox((e as Error).message));
    }
  };
  void load();
  return undefined;
}
