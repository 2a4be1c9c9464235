/**
 * One message: the invitation as a person reads it, the facts, the DKIM verdict, and each
 * recipient's timeline of attempts with what happens next and the actions that apply. It reloads
 * when the live stream says the message changed.
 */
import type { DeliveryView, MessageView } from "../../src/console/message-view.ts";
import { api } from "../api.ts";
import { badge, breakable, errorBox, h, nameCode, replace, tableBox, time } from "../dom.ts";
import { type Action, actionButton } from "./actions.ts";

function facts(rows: readonly (readonly [string, Node | string | null | undefined])[]): HTMLElement {
  return h(
    "table",
    { class: "facts" },
    h(
      "tbody",
      null,
      rows
        .filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v))),
    ),
  );
}

function itipCard(m: MessageView): HTMLElement {
  if (!m.itip.ok)
    return h(
      "div",
      { class: "card" },
      h("h2", null, "Calendar data"),
      errorBox(`cannot be read: ${m.itip.error}`),
    );
  const v = m.itip.view;
  return h(
    "div",
    { class: "card itip" },
    h("h2", { id: "itip-title" }, v.title),
    facts([
      ["When", v.when],
      ["Organizer", v.organizer],
      ["Sequence", String(m.itip.sequence)],
    ]),
    v.attendees.length === 0
      ? null
      : tableBox(
          h(
            "table",
            null,
            h(
              "thead",
              null,
              h("tr", null, h("th", null, "Attendee"), h("th", null, "Address"), h("th", null, "Answer")),
            ),
            h(
              "tbody",
              null,
              v.attendees.map((a) =>
                h(
                  "tr",
                  null,
                  h("td", null, a.name),
                  h("td", null, h("span", null, breakable(a.address))),
                  h("td", null, badge(a.partstat.toLowerCase())),
                ),
              ),
            ),
          ),
        ),
  );
}

function dkimCard(m: MessageView): HTMLElement {
  const d = m.dkim;
  const meaning: Record<string, string> = {
    pass: "signature verified",
    fail: "signature refused",
    none: m.direction === "outbound" ? "sent by us (signed when it leaves)" : "not signed",
    trusted: "accepted unsigned from a trusted address (or submitted locally)",
  };
  return h(
    "div",
    { class: "card" },
    h("h2", null, "DKIM"),
    h("p", { id: "dkim-verdict" }, badge(`dkim-${d.result}`), " ", meaning[d.result] ?? d.result),
    facts([
      ["Domain (d=)", d.domain],
      ["Selector (s=)", d.selector],
      ["Reason", d.reason],
      ["Signer accepted", d.signerRule],
      ["Answer given", m.response ? `HTTP ${m.response.status}` : null],
      [
        "Sent again",
        m.resent
          ? h(
              "span",
              { id: "resent" },
              `${m.resent.copies} ${m.resent.copies === 1 ? "copy" : "copies"} under new message ids, the last `,
              time(m.resent.lastAt),
              ": each got this answer, none was delivered again",
            )
          : null,
      ],
    ]),
    m.response?.body
      ? h("details", null, h("summary", null, "Answer body"), h("pre", null, m.response.body))
      : null,
  );
}

/** A request refused at intake: why, and that nothing of it can ever be delivered. */
function refusalCard(r: NonNullable<MessageView["refusal"]>): HTMLElement {
  return h(
    "div",
    { class: "card refusal", id: "refusal" },
    h("h2", null, badge("refused", r.status ?? undefined), " Refused at intake"),
    h("p", { id: "refusal-reason" }, r.reason),
    facts([
      ["Answer given", r.status === null ? null : `HTTP ${r.status}`],
      ["Body", `not kept (${r.bodyBytes ?? "?"} bytes)`],
      ["Body SHA-256", r.bodySha256],
    ]),
    h(
      "p",
      { class: "muted" },
      "A refused request has no deliveries: nothing of it can be retried, cancelled or sent by e-mail.",
    ),
  );
}

function deliveryCard(d: DeliveryView, reload: () => void): HTMLElement {
  const p = d.plan;
  const actions = d.actions.map((a) =>
    actionButton(a.action as Action, { ids: [d.id] }, `to ${d.recipient}`, a.allowed, reload),
  );
  return h(
    "section",
    { class: "card delivery", "data-delivery": d.id },
    h("h3", null, breakable(d.recipient), " ", badge(d.state)),
    facts([
      ["Route", h("span", null, d.route, d.target ? [" → ", nameCode(d.target)] : null)],
      ["Request status", d.requestStatus],
      ["Last error", d.lastError],
      ["Attempts", p.attemptsText],
      ["Next attempt", p.nextAttemptAt === null ? null : time(p.nextAttemptAt)],
      ["In flight until", d.inFlightUntil === null ? null : time(d.inFlightUntil)],
      ["What happens next", h("span", { class: "plan-next" }, p.next)],
      ["iMIP fallback", h("span", { class: "plan-fallback" }, p.fallback)],
    ]),
    h("div", { class: "buttons" }, actions),
    d.attemptList.length === 0
      ? h("p", { class: "muted" }, "no attempt yet")
      : tableBox(
          h(
            "table",
            { class: "timeline" },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                [
                  "#",
                  "Time",
                  "Route",
                  "Target",
                  "HTTP",
                  "Request status",
                  "TLS",
                  "Duration",
                  "Outcome",
                  "Response",
                ].map((c) => h("th", null, c)),
              ),
            ),
            h(
              "tbody",
              null,
              d.attemptList.map((a, i) =>
                h(
                  "tr",
                  null,
                  h("td", null, String(i + 1)),
                  h("td", null, time(a.startedAt)),
                  h("td", null, a.route),
                  h("td", null, a.target ? nameCode(a.target) : "-"),
                  h("td", null, a.httpStatus === null ? "-" : String(a.httpStatus)),
                  h("td", null, a.requestStatus ?? "-"),
                  h("td", null, a.tls ?? "-"),
                  h("td", null, `${a.durationMs} ms`),
                  h(
                    "td",
                    null,
                    badge(a.outcome),
                    a.error ? h("div", { class: "error-text" }, a.error) : null,
                  ),
                  h(
                    "td",
                    null,
                    a.response
                      ? h("details", null, h("summary", null, "raw"), h("pre", null, a.response))
                      : "-",
                  ),
                ),
              ),
            ),
          ),
        ),
  );
}

function draw(main: HTMLElement, m: MessageView, reload: () => void): void {
  const all = (action: Action) =>
    actionButton(
      action,
      { messageId: m.id },
      "of this message",
      m.deliveries.some((d) => d.actions.some((a) => a.action === action && a.allowed)),
      reload,
    );
  replace(
    main,
    h("p", null, h("a", { href: "#/messages" }, "← Messages")),
    h("h1", null, `${m.method} ${m.summary ?? m.component}`, " ", h("span", { class: "muted" }, `#${m.id}`)),
    m.refusal ? refusalCard(m.refusal) : null,
    h("div", { class: "grid" }, m.refusal ? null : itipCard(m), dkimCard(m)),
    h(
      "div",
      { class: "card" },
      h("h2", null, "Message"),
      facts([
        ["Received", time(m.receivedAt)],
        ["Direction", `${m.direction} (${m.intake})`],
        ["Originator", h("span", null, breakable(m.originator))],
        [
          "Peer",
          m.peerDomain ? h("a", { href: `#/peers/${encodeURIComponent(m.peerDomain)}` }, m.peerDomain) : null,
        ],
        ["Peer address", m.peerAddress],
        [
          "UID",
          m.uid ? h("a", { href: `#/messages?q=${encodeURIComponent(`uid:"${m.uid}"`)}` }, m.uid) : null,
        ],
        ["Method", `${m.method} ${m.component}`],
        ["iSchedule-Message-ID", m.remoteMessageId],
        ["UUID", m.uuid],
        ["Content-Type", m.contentType],
        ["Command line", h("code", null, m.command)],
      ]),
    ),
    m.refusal ? null : h("h2", null, `Recipients (${m.deliveries.length})`),
    m.deliveries.length > 1
      ? h("div", { class: "buttons" }, "All recipients: ", all("retry"), all("cancel"), all("imip"))
      : null,
    m.deliveries.map((d) => deliveryCard(d, reload)),
    m.headers
      ? h(
          "details",
          { class: "card" },
          h("summary", null, `Headers (${m.headers.length})`),
          facts(m.headers.map(([n, v]) => [n, v] as const)),
        )
      : null,
    m.refusal
      ? null
      : m.bodyRemoved
        ? h("p", { class: "card muted" }, `iCalendar body: ${m.bodyRemoved.text}`)
        : h("details", { class: "card" }, h("summary", null, "iCalendar body"), h("pre", null, m.body)),
  );
}

export function renderMessage(main: HTMLElement, _params: URLSearchParams, path: string[]): () => void {
  const id = path[1]!;
  let stopped = false;
  const load = async () => {
    try {
      const m = await api.get<MessageView>(`/messages/${encodeURIComponent(id)}`);
      if (!stopped) draw(main, m, load);
    } catch (e) {
      if (!stopped)
        replace(
          main,
          h("p", null, h("a", { href: "#/messages" }, "← Messages")),
          errorBox((e as Error).message),
        );
    }
  };
  void load();
  const events = new EventSource(`/api/v1/events?q=`);
  events.addEventListener("messages", (ev) => {
    const data = JSON.parse((ev as MessageEvent<string>).data) as { changed: number[] };
    if (data.changed.includes(Number(id))) void load();
  });
  return () => {
    stopped = true;
    events.close();
  };
}
