/**
 * Peers: every remote domain seen or configured, with traffic and our trust policy; a peer's page
 * edits the policy (applied by the running server to the next message) and tests the domain live.
 */
import type { PeerFact } from "../../src/console/peer-facts.ts";
import type { SelectorSeen } from "../../src/store/sqlite/console-stats.ts";
import { api } from "../api.ts";
import { badge, breakable, errorBox, h, replace, tableBox, time } from "../dom.ts";
import { toast } from "./actions.ts";
import { peerFactsView } from "./peer-facts.ts";
import { runPeerTest } from "./steps.ts";

interface PeerInfo {
  domain: string;
  policy: {
    mode: "dkim" | "unsigned" | "deny";
    allowFrom: string | null;
    /** Signing domains also accepted for this domain's users. */
    signers: string[];
    source: string;
    note: string | null;
  };
  inbound: { messages: number; dkimPass: number; dkimFail: number; lastAt: number } | null;
  outbound: { deliveries: number; delivered: number; failed: number; pending: number; lastAt: number } | null;
  peerKeys: { selector: string; where: string }[];
  /** Its `--peer` route, if any. */
  route: { url: string | null; legacyHttp: boolean; sign: boolean } | null;
  lastTest: { atMs: number; outcomes: string[] } | null;
}

/** What the operator's --peer flag says about this peer, plain HTTP first: it lowers security. */
function routeText(r: NonNullable<PeerInfo["route"]>): HTMLElement {
  return h(
    "span",
    { class: "route" },
    r.legacyHttp
      ? h(
          "span",
          { class: "key-warning", "data-legacy-http": "" },
          "plain HTTP allowed (--peer legacy-http) ",
        )
      : null,
    r.url ? h("code", null, r.url) : "found by DNS",
    r.sign ? "" : " (unsigned)",
  );
}

const rate = (good: number, all: number): string => (all === 0 ? "-" : `${Math.round((100 * good) / all)}%`);

/** Signed and verified, refused, and accepted unsigned (from a trusted address). */
function verifiedText(i: NonNullable<PeerInfo["inbound"]>): string {
  const unsigned = i.messages - i.dkimPass - i.dkimFail;
  return `${i.dkimPass} verified, ${i.dkimFail} failed${unsigned > 0 ? `, ${unsigned} unsigned` : ""}`;
}

function policyText(p: PeerInfo["policy"]): HTMLElement {
  const words = { dkim: "DKIM required", unsigned: `unsigned from ${p.allowFrom}`, deny: "refused" };
  return h(
    "span",
    null,
    badge(`trust-${p.mode}`),
    " ",
    words[p.mode],
    p.signers.length > 0 ? `, also signed by ${p.signers.join(", ")}` : "",
    " ",
    h("span", { class: "muted" }, `(${p.source})`),
  );
}

export function renderPeers(main: HTMLElement): undefined {
  const domainInput = h("input", {
    id: "new-peer",
    placeholder: "example.org",
    "aria-label": "Domain",
    spellcheck: "false",
  });
  const form = h("form", { class: "filter" }, domainInput, h("button", { type: "submit" }, "Open peer"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (domainInput.value.trim())
      location.hash = `#/peers/${encodeURIComponent(domainInput.value.trim().toLowerCase())}`;
  });
  const body = h("div", null, h("p", { class: "muted" }, "loading..."));
  replace(main, h("h1", null, "Peers"), form, body);
  api
    .get<{ peers: PeerInfo[]; statsAtMs: number; statsWindowDays: number }>("/peers")
    .then((r) => {
      if (r.peers.length === 0)
        return replace(
          body,
          h(
            "p",
            { class: "muted" },
            "No peer yet: none has sent or been sent anything, and none is configured.",
          ),
        );
      replace(
        body,
        tableBox(
          h(
            "table",
            { id: "peers", class: "cards" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                [
                  "Domain",
                  "Trust policy",
                  `Inbound (${r.statsWindowDays} d)`,
                  "Verified",
                  `Outbound (${r.statsWindowDays} d)`,
                  "Delivered",
                  "Last seen",
                  "Last test",
                ].map((c) => h("th", null, c)),
              ),
            ),
            h(
              "tbody",
              null,
              r.peers.map((p) =>
                h(
                  "tr",
                  null,
                  h(
                    "td",
                    null,
                    h("a", { href: `#/peers/${encodeURIComponent(p.domain)}` }, breakable(p.domain)),
                    p.route?.legacyHttp ? h("div", { class: "key-warning" }, "plain HTTP allowed") : null,
                  ),
                  h("td", null, policyText(p.policy)),
                  h("td", null, p.inbound ? String(p.inbound.messages) : "-"),
                  h("td", null, p.inbound ? verifiedText(p.inbound) : "-"),
                  h("td", null, p.outbound ? String(p.outbound.deliveries) : "-"),
                  h(
                    "td",
                    null,
                    p.outbound
                      ? `${rate(p.outbound.delivered, p.outbound.deliveries - p.outbound.pending)} (${p.outbound.pending} pending)`
                      : "-",
                  ),
                  h("td", null, time(Math.max(p.inbound?.lastAt ?? 0, p.outbound?.lastAt ?? 0) || null)),
                  h("td", null, p.lastTest ? p.lastTest.outcomes.map((o) => badge(o)) : "-"),
                ),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "muted" },
          `Traffic over the last ${r.statsWindowDays} days, as of `,
          time(r.statsAtMs),
          " (refreshed every 30 s); last seen is whenever it was.",
        ),
      );
    })
    .catch((e) => replace(body, errorBox((e as Error).message)));
  return undefined;
}

function policyForm(p: PeerInfo, reload: () => void): HTMLElement {
  const trust = h(
    "select",
    { id: "trust", "aria-label": "Trust policy" },
    (["dkim", "unsigned", "deny"] as const).map((m) =>
      h(
        "option",
        { value: m, selected: p.policy.mode === m },
        {
          dkim: "DKIM signature required",
          unsigned: "unsigned requests from these addresses",
          deny: "refuse everything",
        }[m],
      ),
    ),
  );
  const allow = h("input", {
    id: "allow-from",
    value: p.policy.allowFrom ?? "",
    placeholder: "192.0.2.0/24, 2001:db8::/32",
    spellcheck: "false",
  });
  const signers = h("input", {
    id: "policy-signers",
    value: p.policy.signers.join(", "),
    placeholder: "cal.example.net, hosting.example (optional)",
    spellcheck: "false",
  });
  const note = h("input", { id: "policy-note", value: p.policy.note ?? "", placeholder: "why (optional)" });
  const allowRow = h("label", { class: "row" }, "Addresses ", allow);
  const signersRow = h("label", { class: "row" }, "Also signed by ", signers);
  const sync = () => {
    allowRow.hidden = trust.value !== "unsigned";
    signersRow.hidden = trust.value === "deny";
  };
  trust.addEventListener("change", sync);
  sync();
  const save = h("button", { type: "submit", id: "save-policy" }, "Save policy");
  const remove = h(
    "button",
    { type: "button", class: "quiet", hidden: p.policy.source !== "console" },
    "Remove the console's policy",
  );
  const form = h(
    "form",
    { class: "card policy" },
    h("h2", null, "Trust policy"),
    h("p", { id: "policy-now" }, "Now: ", policyText(p.policy)),
    h("label", { class: "row" }, "Policy ", trust),
    allowRow,
    signersRow,
    h("label", { class: "row" }, "Note ", note),
    h("div", { class: "buttons" }, save, remove),
    h(
      "p",
      { class: "muted" },
      "The running server applies it to the next message. Console policies take precedence over --trust.",
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api.put(`/peers/${encodeURIComponent(p.domain)}/policy`, {
        trust: trust.value,
        allowFrom: allow.value,
        signers: trust.value === "deny" ? "" : signers.value,
        note: note.value,
      });
      toast(`Policy for ${p.domain} saved`);
      reload();
    } catch (e) {
      toast((e as Error).message, "error");
    }
  });
  remove.addEventListener("click", async () => {
    try {
      await api.delete(`/peers/${encodeURIComponent(p.domain)}/policy`);
      toast(`Policy for ${p.domain} removed`);
      reload();
    } catch (e) {
      toast((e as Error).message, "error");
    }
  });
  return form;
}

export function renderPeer(main: HTMLElement, _params: URLSearchParams, path: string[]): undefined {
  const domain = path[1]!;
  const testBox = h("div", { id: "test-result" });
  const load = async () => {
    try {
      const p = await api.get<
        PeerInfo & {
          selectors: SelectorSeen[];
          facts: PeerFact[];
          test: { atMs: number; steps: never[] } | null;
        }
      >(`/peers/${encodeURIComponent(domain)}`);
      const selector = h("input", {
        id: "test-selector",
        placeholder: p.selectors[0]?.selector ?? "selector (optional)",
        spellcheck: "false",
      });
      const test = h("button", { type: "submit", id: "test-domain" }, "Test this domain");
      const testForm = h(
        "form",
        { class: "card" },
        h("h2", null, "Test this domain"),
        h("p", { class: "muted" }, "Discovery, capabilities and key retrieval, run now."),
        h("div", { class: "filter" }, selector, test),
        testBox,
      );
      testForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        // What the test learned is kept: show it with the rest once it ends.
        void runPeerTest(testBox, domain, selector.value.trim()).then(load);
      });
      replace(
        main,
        h("p", null, h("a", { href: "#/peers" }, "← Peers")),
        h("h1", null, domain),
        p.route ? h("p", { id: "peer-route" }, "Route (--peer): ", routeText(p.route)) : null,
        h("div", { class: "grid" }, policyForm(p, load), testForm),
        peerFactsView(p.facts, p.selectors),
        h(
          "div",
          { class: "card" },
          p.peerKeys.length
            ? h(
                "p",
                null,
                `Configured keys (--peer-key): ${p.peerKeys.map((k) => `${k.selector} from ${k.where}`).join(", ")}`,
              )
            : null,
          h(
            "p",
            null,
            h(
              "a",
              { href: `#/messages?q=${encodeURIComponent(`peer:${domain}`)}` },
              `Messages with ${domain}`,
            ),
          ),
        ),
      );
    } catch (e) {
      replace(main, h("p", null, h("a", { href: "#/peers" }, "← Peers")), errorBox((e as Error).message));
    }
  };
  void load();
  return undefined;
}
