/**
 * Messages: the log, newest first, with the filter language (help inline; a click on a value in the
 * table adds it to the filter), keyset paging ("Older"), live updates over server-sent events, and
 * the actions on every delivery the filter names.
 */

import { FilterError, parseFilter } from "../../src/console/filter.ts";
import { FILTER_HELP, quoteValue } from "../../src/console/filter-help.ts";
import type { LogMessageSummary, LogPage } from "../../src/store/sqlite/message-search.ts";
import { api } from "../api.ts";
import { badge, breakable, errorBox, h, labelCells, replace, time } from "../dom.ts";
import { actionButton } from "./actions.ts";

const PAGE = 50;
const HEADS = [
  "Received (UTC)",
  "Dir",
  "Peer",
  "Method",
  "Summary",
  "UID",
  "Organizer",
  "Deliveries",
  "DKIM",
];

/** The query with `key:value` added (unless it is there already). */
export function withTerm(query: string, key: string, value: string): string {
  const term = `${key}:${quoteValue(value)}`;
  const terms = query.trim().split(/\s+/).filter(Boolean);
  return terms.includes(term) ? query.trim() : [...terms, term].join(" ");
}

function goFilter(q: string): void {
  location.hash = `#/messages?q=${encodeURIComponent(q)}`;
}

function row(m: LogMessageSummary, q: string): HTMLTableRowElement {
  const fv = (key: string, value: string, label: HTMLElement | string = value) =>
    h(
      "button",
      { type: "button", class: "fv", title: `filter: ${key}:${value}`, "data-filter": `${key}:${value}` },
      label,
    );
  const peers = m.direction === "inbound" ? (m.peerDomain ? [m.peerDomain] : []) : m.domains;
  const states = Object.entries(m.deliveryStates);
  const status =
    m.refusal !== null
      ? [fv("status", "refused", badge("refused", m.responseStatus ?? undefined))]
      : states.map(([s, n]) => fv("status", s, badge(s, (n ?? 0) > 1 ? `×${n}` : undefined)));
  const tr = h(
    "tr",
    { "data-id": m.id },
    h("td", null, h("a", { href: `#/messages/${m.id}`, class: "open" }, time(m.receivedAt))),
    h("td", null, fv("direction", m.direction === "inbound" ? "in" : "out")),
    h(
      "td",
      null,
      peers.map((p) => fv("peer", p, h("span", null, breakable(p)))),
    ),
    h("td", null, fv("method", m.method)),
    h(
      "td",
      { class: "summary" },
      h(
        "a",
        { href: `#/messages/${m.id}` },
        // A refusal keeps no calendar data: its reason says what it was.
        m.refusal !== null ? `Refused: ${m.refusal}` : (m.summary ?? `(${m.component})`),
      ),
    ),
    h(
      "td",
      { class: "uid" },
      m.uid ? fv("uid", m.uid, m.uid.length > 28 ? `${m.uid.slice(0, 25)}...` : m.uid) : null,
    ),
    h(
      "td",
      null,
      m.organizer
        ? fv("organizer", m.organizer, h("span", null, breakable(m.organizer.replace(/^mailto:/i, ""))))
        : null,
    ),
    h("td", null, status),
    h("td", null, fv("dkim", m.dkimResult, badge(`dkim-${m.dkimResult}`))),
  );
  labelCells(tr, HEADS);
  tr.addEventListener("click", (ev) => {
    const target = (ev.target as HTMLElement).closest("button.fv");
    if (!target) return;
    const [key, ...rest] = target.getAttribute("data-filter")!.split(":");
    goFilter(withTerm(q, key!, rest.join(":")));
  });
  return tr;
}

/** The last filter that parsed, kept across visits: an invalid one leaves its list and live view up. */
let lastValid = "";

type Checked = { ok: true } | { ok: false; message: string; suggestion?: string };

function checkFilter(q: string): Checked {
  try {
    parseFilter(q, Date.now());
    return { ok: true };
  } catch (e) {
    if (!(e instanceof FilterError)) throw e;
    return { ok: false, message: `${e.message} (at character ${e.position + 1})`, suggestion: e.suggestion };
  }
}

export function renderMessages(main: HTMLElement, params: URLSearchParams): () => void {
  const asked = params.get("q") ?? "";
  const checked = checkFilter(asked);
  // The list, its paging and its live view follow the asked filter when it is valid, else the last
  // valid one; the actions act on the asked filter only, so an invalid one disables them.
  const q = checked.ok ? asked : lastValid;
  if (checked.ok) lastValid = asked;
  const input = h("input", {
    id: "filter",
    type: "search",
    value: asked,
    placeholder: "status:failed peer:example.org -method:REPLY",
    "aria-label": "Filter",
    spellcheck: "false",
    autocomplete: "off",
  });
  const form = h("form", { class: "filter" }, input, h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    goFilter(input.value);
  });
  const help = h(
    "details",
    { class: "help", id: "filter-help" },
    h("summary", null, "Filter help"),
    h(
      "dl",
      null,
      FILTER_HELP.map(([term, text]) => [h("dt", null, h("code", null, term)), h("dd", null, text)]),
    ),
    h(
      "p",
      { class: "muted" },
      "Click a value in the table to add it to the filter. Same filter on the command line: isched queue list 'FILTER'.",
    ),
  );
  const live = h("span", { class: "live", id: "live" }, "connecting...");
  const message = h("div", { id: "filter-message" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "messages cards", id: "messages" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        HEADS.map((c) => h("th", null, c)),
      ),
    ),
    body,
  );
  const more = h("button", { type: "button", class: "quiet", id: "older", hidden: true }, "Older messages");
  const refresh = () => reload();
  const bulkButton = (a: "retry" | "cancel" | "imip", allowed = checked.ok) =>
    actionButton(a, { q }, `matching "${q}"`, allowed, refresh);
  let imipButton = bulkButton("imip");
  const bulk = h(
    "div",
    { class: "bulk" },
    "Every delivery this filter names: ",
    bulkButton("retry"),
    bulkButton("cancel"),
    imipButton,
  );
  if (!checked.ok) {
    replace(
      message,
      errorBox(checked.message),
      checked.suggestion === undefined
        ? null
        : h(
            "p",
            null,
            "Did you mean ",
            h(
              "button",
              { type: "button", class: "fv suggestion", onclick: () => goFilter(checked.suggestion!) },
              h("code", null, checked.suggestion),
            ),
            "?",
          ),
      h(
        "p",
        { class: "muted" },
        q === ""
          ? "Still showing every message"
          : ["Still showing the last valid filter: ", h("code", null, q)],
        ".",
      ),
    );
  }
  replace(
    main,
    h("div", { class: "title-row" }, h("h1", null, "Messages"), live),
    form,
    help,
    message,
    bulk,
    table,
    more,
  );

  let next: number | undefined;
  let topId = 0;
  let loading = false;
  const rows = new Map<number, HTMLTableRowElement>();
  const noMatch = h("p", { class: "muted no-match" }, "No message matches.");
  const add = (ms: readonly LogMessageSummary[]) => {
    for (const m of ms) {
      // A page never repeats a row the live view or an earlier page already shows.
      if (rows.has(m.id)) continue;
      const tr = row(m, q);
      rows.set(m.id, tr);
      body.appendChild(tr);
      topId = Math.max(topId, m.id);
    }
  };
  const load = async (before?: number) => {
    if (loading) return;
    loading = true;
    more.disabled = true;
    try {
      const page = await api.get<LogPage & { imipAvailable: boolean }>(
        `/messages?limit=${PAGE}&q=${encodeURIComponent(q)}${before ? `&before=${before}` : ""}`,
      );
      if (!page.imipAvailable && !imipButton.hasAttribute("data-off")) {
        // isched runs without --smtp: sending by e-mail cannot work, so it is not offered.
        const off = bulkButton("imip", false);
        off.setAttribute("data-off", "");
        off.title = "iMIP is off: start isched with --smtp to send by e-mail";
        imipButton.replaceWith(off);
        imipButton = off;
      }
      add(page.messages);
      next = page.nextBeforeId;
      if (rows.size === 0) message.appendChild(noMatch);
    } catch (e) {
      next = undefined;
      message.appendChild(errorBox((e as Error).message));
    } finally {
      loading = false;
      more.disabled = false;
      more.hidden = next === undefined;
    }
  };
  function reload() {
    body.replaceChildren();
    rows.clear();
    topId = 0;
    next = undefined;
    noMatch.remove();
    void load();
  }
  more.addEventListener("click", () => {
    if (next !== undefined) void load(next);
  });
  void load();

  const events = new EventSource(`/api/v1/events?q=${encodeURIComponent(q)}`);
  events.addEventListener("ready", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  events.addEventListener("error", () => {
    live.textContent = "reconnecting...";
    live.className = "live off";
  });
  events.addEventListener("messages", (ev) => {
    const data = JSON.parse((ev as MessageEvent<string>).data) as {
      messages: LogMessageSummary[];
      changed: number[];
    };
    const fresh = new Set<number>();
    for (const m of [...data.messages].sort((a, b) => a.id - b.id)) {
      fresh.add(m.id);
      const tr = row(m, q);
      tr.classList.add("changed");
      const old = rows.get(m.id);
      if (old) old.replaceWith(tr);
      else if (m.id > topId) {
        body.insertBefore(tr, body.firstChild);
        topId = m.id;
      } else continue;
      rows.set(m.id, tr);
      noMatch.remove();
    }
    for (const id of data.changed) {
      const old = rows.get(id);
      if (old && !fresh.has(id)) {
        old.classList.add("stale");
        old.title = "changed: no longer matches the filter";
      }
    }
  });
  return () => events.close();
}
