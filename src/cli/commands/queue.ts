/**
 * `isched queue list|show|retry|cancel|imip`: the console's Messages page on the command line,
 * talking to the running server's API (the console address and DATA/api-token by default). `list`
 * and `show` only read; the actions change the deliveries named by id, by message, or by a filter
 * (which shows the count first and needs --yes).
 */

import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { FILTER_HELP } from "../../console/filter-help.ts";
import type { DeliveryView, MessageView } from "../../console/message-view.ts";
import type { LogMessageSummary, LogPage } from "../../store/store.ts";
import { shellQuote, shellWord } from "../../text/shell.ts";
import { defineCommand } from "../command.ts";
import { ask, connect, connectionFlags } from "./api-connection.ts";
import { attemptCounts, type FollowedDelivery, follow, imipOutcomeLine } from "./queue-follow.ts";

const utc = (ms: number | null): string =>
  ms === null ? "-" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);

function states(m: LogMessageSummary): string {
  if (m.refusal !== null) return `refused${m.responseStatus ? ` (${m.responseStatus})` : ""}`;
  const entries = Object.entries(m.deliveryStates);
  return entries.length === 0 ? "-" : entries.map(([s, n]) => `${s}:${n}`).join(" ");
}

const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "))
    .join("\n");
}

export const queueListCommand = defineCommand({
  name: "queue list",
  summary: "List messages, newest first, with the console's filter language (reads only)",
  usage: "queue list [FILTER ...] [--limit N] [--before ID] [--json] [--server URL --token-file F]",
  description: [
    "FILTER terms (all must match):",
    ...FILTER_HELP.map(([t, h]) => `  ${t.padEnd(24)}${h}`),
  ].join("\n"),
  flags: {
    ...connectionFlags,
    limit: flag.int({ help: "messages per page", defaultValue: 50, min: 1, max: 500 }),
    before: flag.optionalInt({
      help: "the page after this message id (keyset paging)",
      placeholder: "ID",
      min: 1,
    }),
    json: flag.bool({ help: "print the API's JSON" }),
  },
  positionals: { min: 0, max: 100 },
  async run({ flags, positionals, given }) {
    const q = positionals.join(" ");
    const api = connect(flags);
    const path = `/messages?limit=${flags.limit}&q=${encodeURIComponent(q)}${flags.before ? `&before=${flags.before}` : ""}`;
    const page = await ask(() => api.call<LogPage>("GET", path));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
      return 0;
    }
    if (page.messages.length === 0) {
      process.stdout.write("no message matches\n");
      return 0;
    }
    const rows = [
      ["ID", "RECEIVED (UTC)", "DIR", "PEER", "METHOD", "DELIVERIES", "SUMMARY"],
      ...page.messages.map((m) => [
        String(m.id),
        utc(m.receivedAt),
        m.direction === "inbound" ? "in" : "out",
        (m.direction === "inbound" ? (m.peerDomain ?? "-") : m.domains.join(",")) || "-",
        m.method,
        states(m),
        m.refusal !== null ? clip(m.refusal, 60) : (m.summary ?? `(${m.component})`),
      ]),
    ];
    process.stdout.write(`${table(rows)}\n`);
    if (page.nextBeforeId !== undefined) {
      // The next page's command as the user would paste it: the same filter, page size and server.
      const words = ["isched", "queue", "list", ...(q ? [shellQuote(q)] : [])];
      if (given.has("limit")) words.push("--limit", String(flags.limit));
      if (given.has("server")) words.push("--server", shellWord(flags.server!));
      if (given.has("tokenFile")) words.push("--token-file", shellWord(flags.tokenFile!));
      if (given.has("data")) words.push("--data", shellWord(flags.data));
      process.stdout.write(`more: ${words.join(" ")} --before ${page.nextBeforeId}\n`);
    }
    return 0;
  },
});

function deliveryText(d: DeliveryView): string {
  const lines = [
    `  delivery ${d.id}: ${d.recipient}  ${d.state}  (${d.route}${d.target ? ` -> ${d.target}` : ""})`,
    `    attempts ${d.plan.attemptsText}; next ${utc(d.plan.nextAttemptAt)}; status ${d.requestStatus ?? "-"}`,
    `    what happens next: ${d.plan.next}`,
    `    iMIP fallback: ${d.plan.fallback}`,
  ];
  if (d.lastError) lines.push(`    last error: ${d.lastError}`);
  for (const [i, a] of d.attemptList.entries()) {
    lines.push(
      `    #${i + 1} ${utc(a.startedAt)} ${a.outcome} ${a.route} ${a.target ?? "-"} HTTP ${a.httpStatus ?? "-"} ${a.requestStatus ?? "-"} ${a.durationMs} ms${a.tls ? ` ${a.tls}` : ""}${a.error ? `: ${a.error}` : ""}`,
    );
  }
  const allowed = d.actions.filter((a) => a.allowed).map((a) => a.command);
  if (allowed.length > 0) lines.push(`    can: ${allowed.join(" | ")}`);
  return lines.join("\n");
}

function refusalText(r: NonNullable<MessageView["refusal"]>): string[] {
  return [
    `  refused${r.status === null ? "" : ` (HTTP ${r.status})`}: ${r.reason}`,
    `  body not kept: ${r.bodyBytes ?? "?"} bytes${r.bodySha256 ? `, SHA-256 ${r.bodySha256}` : ""}; a refused request is never delivered`,
  ];
}

export const queueShowCommand = defineCommand({
  name: "queue show",
  summary: "Show one message with its deliveries and every attempt (reads only)",
  usage: "queue show ID|UUID [--json] [--server URL --token-file F]",
  flags: { ...connectionFlags, json: flag.bool({ help: "print the API's JSON" }) },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    const api = connect(flags);
    const m = await ask(() =>
      api.call<MessageView>("GET", `/messages/${encodeURIComponent(positionals[0]!)}`),
    );
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
      return 0;
    }
    const out = [
      `message ${m.id} (${m.uuid})`,
      `  ${m.itip.ok ? m.itip.view.title : m.refusal ? `${m.method} ${m.component}, refused: its calendar data is not kept` : `${m.method} ${m.component} (calendar data unreadable: ${m.itip.error})`}`,
      m.itip.ok ? `  when: ${m.itip.view.when}` : "",
      `  received ${utc(m.receivedAt)} UTC, ${m.direction} via ${m.intake}${m.peerDomain ? ` from ${m.peerDomain}` : ""}`,
      `  originator ${m.originator}; uid ${m.uid ?? "-"}`,
      `  DKIM ${m.dkim.result}${m.dkim.domain ? ` d=${m.dkim.domain} s=${m.dkim.selector}` : ""}${m.dkim.reason ? `: ${m.dkim.reason}` : ""}`,
      m.dkim.signerRule ? `  signer accepted: ${m.dkim.signerRule}` : "",
      m.resent
        ? `  sent again: ${m.resent.copies} copies under new message ids (last ${utc(m.resent.lastAt ?? 0)} UTC), answered from this message, none delivered again`
        : "",
      ...(m.refusal ? refusalText(m.refusal) : []),
      ...m.deliveries.map(deliveryText),
    ].filter((l) => l !== "");
    process.stdout.write(`${out.join("\n")}\n`);
    return 0;
  },
});

type Action = "retry" | "cancel" | "imip";
const VERB: Record<Action, string> = {
  retry: "retried now",
  cancel: "cancelled",
  imip: "queued to be sent by iMIP now",
};

function actionCommand(action: Action, summary: string) {
  return defineCommand({
    name: `queue ${action}`,
    summary,
    usage: `queue ${action} DELIVERY_ID ... | --message ID | --filter FILTER [--yes] [--server URL --token-file F]`,
    description: [
      "With --filter it prints how many deliveries would change, and changes them only with --yes.",
      ...(action === "imip"
        ? [
            "Then it waits (--wait) for the relay's answer to each delivery and prints it: sent, or",
            "refused and queued again, or failed. It exits 1 when any was not sent.",
          ]
        : []),
    ].join("\n"),
    flags: {
      ...connectionFlags,
      // What to change, and the confirmation, are typed each time: no environment twins.
      message: flag.optionalInt({
        help: "every delivery of this message",
        placeholder: "ID",
        min: 1,
        env: false,
      }),
      filter: flag.string({
        help: "every delivery this filter names (see 'isched help queue list')",
        placeholder: "FILTER",
        env: false,
      }),
      yes: flag.bool({ help: "with --filter: do it (without, only count)", env: false }),
      ...(action === "imip"
        ? {
            wait: flag.durationMs({
              help: "how long to wait for the relay's answer to each delivery (0: do not wait)",
              defaultValue: 30_000,
            }),
          }
        : {}),
    },
    positionals: { min: 0, max: 10_000 },
    async run({ flags, positionals }) {
      const ids = positionals.map((p) => {
        if (!/^\d+$/.test(p))
          throw new UsageError(`"${p}" is not a delivery id (see 'isched queue show MESSAGE')`);
        return Number(p);
      });
      const given = [ids.length > 0, flags.message !== undefined, flags.filter !== undefined].filter(
        Boolean,
      ).length;
      if (given !== 1)
        throw new UsageError(
          `queue ${action} needs delivery ids, --message ID or --filter FILTER (one of them)`,
        );
      const api = connect(flags);
      const path = `/deliveries/${action}`;
      const target =
        ids.length > 0
          ? { ids }
          : flags.message !== undefined
            ? { messageId: flags.message }
            : { q: flags.filter! };
      let expect: number | undefined;
      let named: readonly FollowedDelivery[] = [];
      if ("q" in target || action === "imip") {
        const dry = await ask(() =>
          api.call<{ count: number; deliveries?: FollowedDelivery[] }>("POST", path, {
            ...target,
            dryRun: true,
          }),
        );
        if ("q" in target && (dry.count === 0 || !flags.yes)) {
          process.stdout.write(
            `${dry.count} deliveries would be ${VERB[action]}${dry.count > 0 ? "; add --yes to do it" : ""}\n`,
          );
          return 0;
        }
        if ("q" in target) expect = dry.count;
        named = dry.deliveries ?? [];
      }
      // iMIP: what the relay answers is known only once the dispatcher has tried; wait for it.
      const waitMs = action === "imip" ? ((flags as { wait?: number }).wait ?? 0) : 0;
      const before = waitMs > 0 ? await ask(() => attemptCounts(api, named)) : new Map<number, number>();
      const done = await ask(() =>
        api.call<{ count: number; changed: number }>("POST", path, { ...target, expect }),
      );
      process.stdout.write(`${done.changed} of ${done.count} deliveries ${VERB[action]}\n`);
      if (waitMs === 0 || done.changed === 0) return 0;
      const outcomes = await ask(() => follow(api, named, before, waitMs));
      for (const o of outcomes) process.stdout.write(`${imipOutcomeLine(o, waitMs)}\n`);
      const sent = outcomes.filter((o) => o.kind === "changed" && o.delivery.state === "sent-imip").length;
      const more = done.count > named.length ? ` (the first ${named.length} followed)` : "";
      process.stdout.write(`${sent} of ${outcomes.length} sent by iMIP${more}\n`);
      return sent === outcomes.length ? 0 : 1;
    },
  });
}

export const queueRetryCommand = actionCommand(
  "retry",
  "Retry deliveries now (queued, failed or broken ones)",
);
export const queueCancelCommand = actionCommand(
  "cancel",
  "Cancel deliveries (queued, in-flight or broken ones)",
);
export const queueImipCommand = actionCommand(
  "imip",
  "Send deliveries by iMIP (e-mail) now, and say what the relay answered to each",
);
