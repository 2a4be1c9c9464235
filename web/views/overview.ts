/**
 * Overview: problems the operator must know about (as banners on top), listeners and targets, the
 * queue's depth, attempts by outcome, the latest failures; with several nodes on one database, the
 * nodes with their last heartbeat and what each holds in flight.
 */

import type { NodeOnOverview } from "../../src/console/routes-overview.ts";
import type { AttemptOutcome } from "../../src/store/sqlite/attempts.ts";
import type { OutcomeBucket, RecentFailure } from "../../src/store/sqlite/console-stats.ts";
import { api } from "../api.ts";
import { badge, breakable, errorBox, h, nameCode, replace, tableBox, time } from "../dom.ts";
import { outcomeChart } from "./chart.ts";

interface Overview {
  nowMs: number;
  problems: { id: string; text: string; sinceMs: number }[];
  listeners: { name: string; url: string }[];
  targets: {
    domain: string;
    label: string;
    last: { outcome: AttemptOutcome; startedAt: number; error: string | null } | null;
  }[];
  imip: string | null;
  activeAttempts: number | null;
  queue: Record<string, number>;
  nextDue: number | null;
  hour: OutcomeBucket[];
  day: OutcomeBucket[];
  failures: RecentFailure[];
  /** null on SQLite (one node). */
  nodes: NodeOnOverview[] | null;
}

/**
 * A node beats its heart every 10 s at most (src/server/cluster.ts): silent for longer than this, it
 * is probably dead, and its deliveries go to another node once their leases expire.
 */
const SILENT_AFTER_MS = 30_000;

function nodeState(n: NodeOnOverview, nowMs: number): HTMLElement {
  if (n.stoppedAt !== null) return badge("stopped", undefined, "state-pending");
  if (nowMs - n.seenAt > SILENT_AFTER_MS) return badge("silent", undefined, "state-failed");
  return badge("running", undefined, "state-ok");
}

function nodesCard(nodes: NodeOnOverview[], nowMs: number): HTMLElement {
  return h(
    "div",
    { class: "card wide", "data-card": "nodes" },
    h("h2", null, "Nodes"),
    tableBox(
      h(
        "table",
        { class: "cards" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Node", "State", "Last heartbeat", "In flight", "Host", "Version"].map((c) => h("th", null, c)),
          ),
        ),
        h(
          "tbody",
          null,
          nodes.map((n) =>
            h(
              "tr",
              { "data-node": n.id },
              h("td", null, nameCode(n.id)),
              h("td", null, nodeState(n, nowMs)),
              h("td", null, time(n.seenAt)),
              h("td", null, String(n.inFlight)),
              h("td", null, `${n.host} (pid ${n.pid})`),
              h("td", null, n.version),
            ),
          ),
        ),
      ),
    ),
  );
}

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

function draw(main: HTMLElement, o: Overview): void {
  const queue = h(
    "div",
    { class: "card" },
    h("h2", null, "Queue"),
    h(
      "ul",
      { class: "counts" },
      Object.entries(o.queue).map(([state, n]) =>
        h(
          "li",
          null,
          h(
            "a",
            {
              href: `#/messages?q=${encodeURIComponent(`status:${state}`)}`,
              title: `isched queue list status:${state}`,
            },
            badge(state),
            h("strong", null, String(n)),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "muted" },
      o.nextDue === null ? "nothing queued" : h("span", null, "next attempt due ", time(o.nextDue)),
    ),
    o.activeAttempts === null ? null : h("p", { class: "muted" }, `${o.activeAttempts} attempts in progress`),
  );
  const listeners = h(
    "div",
    { class: "card" },
    h("h2", null, "Listeners and targets"),
    tableBox(
      h(
        "table",
        null,
        h(
          "tbody",
          null,
          o.listeners.map((l) =>
            h(
              "tr",
              null,
              h("td", null, l.name),
              h("td", null, nameCode(l.url)),
              h("td", null, badge("listening")),
            ),
          ),
          o.targets.map((t) =>
            h(
              "tr",
              null,
              h("td", null, t.domain === "*" ? "iMIP (fallback)" : `deliver ${t.domain}`),
              h("td", null, nameCode(t.label)),
              h(
                "td",
                null,
                t.last
                  ? [badge(t.last.outcome), " ", time(t.last.startedAt)]
                  : h("span", { class: "muted" }, "no recent attempt"),
              ),
            ),
          ),
          o.imip === null
            ? h(
                "tr",
                null,
                h("td", null, "iMIP (fallback)"),
                h("td", { colspan: 2, class: "muted" }, "off: start with --smtp to send by e-mail"),
              )
            : null,
        ),
      ),
    ),
  );
  const failures = h(
    "div",
    { class: "card wide" },
    h("h2", null, "Latest failures"),
    o.failures.length === 0
      ? h("p", { class: "muted" }, "none")
      : tableBox(
          h(
            "table",
            { class: "cards" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["Time", "Message", "Recipient", "Outcome", "Status", "Error"].map((c) => h("th", null, c)),
              ),
            ),
            h(
              "tbody",
              null,
              o.failures.map((f) =>
                h(
                  "tr",
                  null,
                  h("td", null, time(f.startedAt)),
                  h(
                    "td",
                    null,
                    h("a", { href: `#/messages/${f.messageId}` }, `${f.method} ${f.summary ?? ""}`.trim()),
                  ),
                  h("td", null, h("span", null, breakable(f.recipient))),
                  h("td", null, badge(f.outcome), " ", badge(f.state)),
                  h("td", null, f.requestStatus ?? "", f.httpStatus ? ` (HTTP ${f.httpStatus})` : ""),
                  h("td", { class: "error-text" }, f.error ?? ""),
                ),
              ),
            ),
          ),
        ),
  );
  replace(
    main,
    h("h1", null, "Overview"),
    o.problems.map((p) =>
      h(
        "p",
        { class: "error problem", role: "alert", "data-problem": p.id },
        p.text,
        " ",
        h("span", { class: "muted" }, "Since ", time(p.sinceMs), "."),
      ),
    ),
    h(
      "div",
      { class: "grid" },
      listeners,
      queue,
      o.nodes === null ? null : nodesCard(o.nodes, o.nowMs),
      outcomeChart("Last hour", o.hour, hhmm),
      outcomeChart("Last day", o.day, hhmm),
      failures,
    ),
  );
}

export function renderOverview(main: HTMLElement): () => void {
  let stopped = false;
  const load = async () => {
    try {
      const o = await api.get<Overview>("/overview");
      if (!stopped) draw(main, o);
    } catch (e) {
      if (!stopped) replace(main, h("h1", null, "Overview"), errorBox((e as Error).message));
    }
  };
  void load();
  const timer = setInterval(load, 10_000);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
