/**
 * The console's log on PostgreSQL: the filter compiler of src/store/sqlite/message-search.ts with
 * PostgreSQL's dialect (lower() for case-insensitive matches, true/false), its `?` placeholders
 * numbered `$1..$n`, and the per-message summaries built with array_agg and json_object_agg instead
 * of SQLite's json_group_array and json_group_object.
 */
import type { BulkAction, MessageFilter } from "../message-filter.ts";
import { ACTION_STATES } from "../message-filter.ts";
import {
  type Compiled,
  compileFilter,
  deliveryRestrictions,
  type FilterDialect,
} from "../sqlite/message-search.ts";
import type { DeliveryState, LogMessageSummary, LogPage } from "../store.ts";
import { idArray, type Row, type Runner, rows } from "./_values.ts";

const POSTGRES: FilterDialect = {
  nocaseIn: (column, count) =>
    `lower(${column}) IN (${Array.from({ length: count }, () => "lower(?)").join(", ")})`,
  false: "false",
  true: "true",
};

/** `text` with each `?` numbered in order, from `$first`. */
function numbered(text: string, first = 1): string {
  let n = first - 1;
  return text.replace(/\?/g, () => `$${++n}`);
}

const SUMMARY_SQL = `SELECT m.id, m.uuid, m.received_at AS "receivedAt", m.direction, m.intake,
    m.peer_domain AS "peerDomain", m.originator, m.method, m.component, m.uid, m.summary, m.organizer,
    m.dkim_result AS "dkimResult", m.response_status AS "responseStatus", m.refusal,
    (SELECT coalesce(array_agg(DISTINCT domain ORDER BY domain), '{}') FROM deliveries d WHERE d.message_id = m.id) AS domains,
    (SELECT json_object_agg(state, n) FROM
      (SELECT state, count(*)::int AS n FROM deliveries d WHERE d.message_id = m.id GROUP BY state) s) AS "deliveryStates"
  FROM messages m`;

function summary(r: Row): LogMessageSummary {
  const states = (r.deliveryStates ?? {}) as Partial<Record<DeliveryState, number>>;
  const recipients = Object.values(states).reduce((a, b) => a + (b ?? 0), 0);
  return {
    ...(r as unknown as LogMessageSummary),
    id: Number(r.id),
    receivedAt: Number(r.receivedAt),
    domains: r.domains as string[],
    recipients,
    deliveryStates: states,
  };
}

/** Newest first; `beforeId` is the `nextBeforeId` of the previous page. */
export async function searchMessages(
  q: Runner,
  o: { filter: MessageFilter; limit: number; beforeId?: number },
): Promise<LogPage> {
  if (!Number.isInteger(o.limit) || o.limit < 1)
    throw new RangeError(`limit must be a positive integer, not ${o.limit}`);
  const before = o.beforeId ?? Number.MAX_SAFE_INTEGER;
  const c = compileFilter(o.filter, before, POSTGRES);
  const text =
    numbered(`${SUMMARY_SQL} WHERE m.id IN (SELECT m.id FROM messages m WHERE m.id < ? AND ${c.where}
    ORDER BY m.id DESC LIMIT ?) ORDER BY m.id DESC`);
  const found = await rows(q, text, [before, ...c.params, o.limit + 1]);
  const messages = found.slice(0, o.limit).map(summary);
  const last = messages.at(-1);
  return found.length > o.limit && last ? { messages, nextBeforeId: last.id } : { messages };
}

/** The summaries of those of `ids` that match the filter. */
export async function summariesOf(
  q: Runner,
  ids: readonly number[],
  filter: MessageFilter,
): Promise<LogMessageSummary[]> {
  if (ids.length === 0) return [];
  const c = compileFilter(filter, Number.MAX_SAFE_INTEGER, POSTGRES);
  const text = numbered(`${SUMMARY_SQL} WHERE m.id = ANY(?::bigint[]) AND ${c.where} ORDER BY m.id DESC`);
  return (await rows(q, text, [idArray(ids), ...c.params])).map(summary);
}

/** The deliveries a bulk action on the filtered set would change; at most `max` + 1 ids. */
export async function deliveriesForAction(
  q: Runner,
  o: { filter: MessageFilter; action: BulkAction; max: number },
): Promise<number[]> {
  const m: Compiled = compileFilter(o.filter, Number.MAX_SAFE_INTEGER, POSTGRES);
  const d = deliveryRestrictions(o.filter, POSTGRES);
  const text = numbered(`SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE ${m.where} AND ${d.where} AND d.state = ANY(?::text[]) ORDER BY d.id LIMIT ?`);
  const states = `{${ACTION_STATES[o.action].join(",")}}`;
  return (await rows(q, text, [...m.params, ...d.params, states, o.max + 1])).map((r) => Number(r.id));
}
