/**
 * What isched knows about a peer, on its page: how its iSchedule server is found, its capabilities,
 * and each selector's key (how it was fetched, its size, when a signature last verified with it),
 * each with where it came from (a test, or real traffic) and its age.
 */
import type { CapabilitiesFact, DiscoveryFact, KeyFact, PeerFact } from "../../src/console/peer-facts.ts";
import type { SelectorSeen } from "../../src/store/sqlite/console-stats.ts";
import { h, nameCode, relative, tableBox, time } from "../dom.ts";

/** "from a test, 3 min ago" (learned then, or confirmed since). */
function age(f: PeerFact): HTMLElement {
  const confirmed = f.confirmedAt !== f.learnedAt;
  return h(
    "span",
    { class: "muted age", title: `learned ${new Date(f.learnedAt).toISOString()}` },
    f.source === "test" ? "from a test, " : "from traffic, ",
    confirmed
      ? `learned ${relative(f.learnedAt)}, confirmed ${relative(f.confirmedAt)}`
      : relative(f.learnedAt),
  );
}

function discoveryView(f: PeerFact & { value: DiscoveryFact }): HTMLElement {
  const d = f.value;
  const how =
    d.how === "none"
      ? "no iSchedule server"
      : d.how === "static"
        ? "static route (--peer)"
        : `SRV _ischedules._tcp.${d.foundAt}`;
  return h(
    "div",
    { class: "fact", "data-fact": "discovery" },
    h("h3", null, "Discovery: ", how, " ", age(f)),
    d.how === "none"
      ? h("p", null, d.reason ?? "")
      : h(
          "ul",
          null,
          d.targets.map((t) =>
            h(
              "li",
              null,
              nameCode(t.url),
              h("span", { class: "muted" }, ` priority ${t.priority}, weight ${t.weight}`),
            ),
          ),
        ),
  );
}

function capabilitiesView(f: PeerFact & { value: CapabilitiesFact }): HTMLElement {
  const c = f.value;
  const limit = (n: number | null, unit = "") => (n === null ? "no limit" : `${n}${unit}`);
  return h(
    "div",
    { class: "fact", "data-fact": "capabilities" },
    h("h3", null, "Capabilities: serial ", h("span", { class: "serial" }, String(c.serial)), " ", age(f)),
    h(
      "ul",
      null,
      h("li", null, nameCode(c.url)),
      h("li", null, `versions ${c.versions.join(", ") || "(none said)"}`),
      h("li", null, `components: ${c.components.join(", ") || "(not advertised)"}`),
      h(
        "li",
        null,
        `max recipients ${limit(c.maxRecipients)}, max size ${limit(c.maxContentLength, " bytes")}, max instances ${limit(c.maxInstances)}`,
      ),
      c.administrator ? h("li", null, `administrator ${c.administrator}`) : null,
    ),
  );
}

function keysTable(
  keys: readonly (PeerFact & { value: KeyFact })[],
  seen: readonly SelectorSeen[],
): HTMLElement {
  const selectors = [...new Set([...keys.map((k) => k.name), ...seen.map((s) => s.selector)])].sort();
  return tableBox(
    h(
      "table",
      { class: "keys cards", id: "peer-keys" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Selector", "Key", "Fetched", "Last verified a signature"].map((c) => h("th", null, c)),
        ),
      ),
      h(
        "tbody",
        null,
        selectors.map((selector) => {
          const k = keys.find((x) => x.name === selector);
          const s = seen.find((x) => x.selector === selector);
          return h(
            "tr",
            { "data-selector": selector },
            h("td", null, h("strong", null, selector)),
            h(
              "td",
              null,
              k
                ? k.value.found.map((x) =>
                    h(
                      "div",
                      { class: "key" },
                      `${x.type} ${x.bits} bits${x.testing ? " (testing)" : ""}, by ${x.method} from `,
                      nameCode(x.where),
                    ),
                  )
                : h("span", { class: "muted" }, "not fetched yet: test this domain with this selector"),
            ),
            h("td", null, k ? age(k) : "-"),
            h(
              "td",
              null,
              s ? [time(s.lastVerifiedAt), h("div", { class: "muted" }, `${s.messages} messages`)] : "never",
            ),
          );
        }),
      ),
    ),
  );
}

/** The cards for a peer's page. */
export function peerFactsView(facts: readonly PeerFact[], seen: readonly SelectorSeen[]): HTMLElement[] {
  const discovery = facts.find((f): f is PeerFact & { kind: "discovery" } => f.kind === "discovery");
  const capabilities = facts.find((f): f is PeerFact & { kind: "capabilities" } => f.kind === "capabilities");
  const keys = facts.filter((f): f is PeerFact & { kind: "key" } => f.kind === "key");
  return [
    h(
      "div",
      { class: "card", id: "peer-server" },
      h("h2", null, "Its iSchedule server"),
      discovery ? discoveryView(discovery) : null,
      capabilities ? capabilitiesView(capabilities) : null,
      discovery || capabilities
        ? null
        : h("p", { class: "muted" }, "nothing learned yet: no message was sent there, and no test was run"),
    ),
    h(
      "div",
      { class: "card", id: "peer-keys-card" },
      h("h2", null, "Its DKIM keys"),
      keys.length === 0 && seen.length === 0
        ? h(
            "p",
            { class: "muted" },
            "no key fetched yet: no signed message came from there, and no test found one",
          )
        : keysTable(keys, seen),
    ),
  ];
}
