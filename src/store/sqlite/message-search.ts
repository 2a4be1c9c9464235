/**
 * Searching the message log for the console and `isched queue`: a parsed filter (the console's
 * filter language, parsed in src/console/filter.ts) becomes one SQL WHERE clause with bound values,
 * and pages are keyset pages on the rowid (newest first), so page 10,000 costs what page 1 does.
 *
 * A message matches `status:` when any of its deliveries is in that state, `peer:` when it came from
 * that domain or (outbound) went to it, `recipient:` when one of its deliveries is for that address.
 * Terms are ANDed, the values of one term (`status:failed,broken`) ORed; a negated term matches what
 * the term does not. Bulk actions use the same filter and narrow it to the deliveries the
 * delivery-level terms (status, peer, recipient) name, so "retry status:failed" leaves the delivered
 * recipients of a message alone.
 */
import type { Database } from "bun:sqlite";
import {
  ACTION_STATES,
  type BulkAction,
  type FilterTerm,
  type MessageFilter,
  namesRefused,
  type ValueKey,
} from "../message-filter.ts";
import type { DeliveryState } from "./deliveries.ts";

export { ACTION_STATES, type BulkAction, type FilterTerm, type MessageFilter, namesRefused, type ValueKey };

import type { MessageFacts, MessageRow } from "./messages.ts";

/** A message as the log lists it: its row's columns (messages.ts) and what its deliveries add up to. */
export interface LogMessageSummary
  extends MessageFacts,
    Pick<MessageRow, "dkimResult" | "responseStatus" | "refusal"> {
  /** Distinct recipient domains (outbound: the peers it went to). */
  domains: string[];
  recipients: number;
  /** How many of the message's deliveries are in each state (states with none are absent). */
  deliveryStates: Partial<Record<DeliveryState, number>>;
}

export interface LogPage {
  messages: LogMessageSummary[];
  /** Pass as `beforeId` for the next page; absent when no older message matches. */
  nextBeforeId?: number;
}

type Param = string | number;

export interface Compiled {
  where: string;
  params: Param[];
}

/**
 * What the filter's SQL writes differently on each backend: a case-insensitive match (SQLite's
 * COLLATE NOCASE; lower() on both sides on PostgreSQL, its expression index deliveries_recipient),
 * and the truth values.
 */
export interface FilterDialect {
  nocaseIn(column: string, count: number): string;
  readonly false: string;
  readonly true: string;
}

const SQLITE: FilterDialect = {
  nocaseIn: (column, count) => `${column} COLLATE NOCASE IN (${placeholders(count)})`,
  false: "0",
  true: "1",
};

const SUMMARY_SQL = `SELECT m.id, m.uuid, m.received_at AS receivedAt, m.direction, m.intake,
    m.peer_domain AS peerDomain, m.originator, m.method, m.component, m.uid, m.summary, m.organizer,
    m.dkim_result AS dkimResult, m.response_status AS responseStatus, m.refusal,
    (SELECT json_group_array(DISTINCT domain) FROM deliveries d WHERE d.message_id = m.id) AS domains,
    (SELECT json_group_object(state, n) FROM
      (SELECT state, count(*) AS n FROM deliveries d WHERE d.message_id = m.id GROUP BY state)) AS deliveryStates
  FROM messages m`;

type RawSummary = Omit<LogMessageSummary, "domains" | "deliveryStates" | "recipients"> & {
  domains: string;
  deliveryStates: string | null;
};

const placeholders = (n: number): string => Array.from({ length: n }, () => "?").join(", ");

/**
 * One term as SQL over `m` (messages). Selective terms drive from an index through `m.id IN (...)`;
 * `status:delivered`, which most messages match, is a per-row probe instead, so the newest-first
 * rowid walk finds a page after a few rows rather than collecting every delivered message first.
 */
function termSql(t: FilterTerm, below: number, dialect: FilterDialect): Compiled {
  if ("atMs" in t) return { where: `m.received_at ${t.key === "before" ? "<" : ">="} ?`, params: [t.atMs] };
  const v = t.values;
  const list = placeholders(v.length);
  switch (t.key) {
    case "peer":
      return {
        where: `(m.peer_domain IN (${list}) OR (m.direction = 'outbound' AND m.id IN
          (SELECT message_id FROM deliveries WHERE domain IN (${list}) AND message_id < ?)))`,
        params: [...v, ...v, below],
      };
    case "status": {
      const parts: string[] = [];
      const params: Param[] = [];
      if (v.includes("refused")) parts.push("m.refusal IS NOT NULL");
      if (v.includes("delivered")) {
        parts.push("EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = 'delivered')");
      }
      const rare = v.filter((s) => s !== "delivered" && s !== "refused");
      if (rare.length > 0) {
        // `state <> 'delivered'` lets SQLite use the small covering index deliveries_state.
        parts.push(`m.id IN (SELECT message_id FROM deliveries
          WHERE state <> 'delivered' AND state IN (${placeholders(rare.length)}) AND message_id < ?)`);
        params.push(...rare, below);
      }
      return { where: `(${parts.join(" OR ")})`, params };
    }
    case "method":
      return { where: `m.method IN (${list})`, params: [...v] };
    case "uid":
      return { where: `m.uid IN (${list})`, params: [...v] };
    case "organizer":
      return { where: dialect.nocaseIn("m.organizer", v.length), params: [...v] };
    case "originator":
      return { where: dialect.nocaseIn("m.originator", v.length), params: [...v] };
    case "recipient":
      return {
        where: `m.id IN (SELECT message_id FROM deliveries
          WHERE ${dialect.nocaseIn("recipient", v.length)} AND message_id < ?)`,
        params: [...v, below],
      };
    case "dkim":
      return { where: `m.dkim_result IN (${list})`, params: [...v] };
    case "direction":
      return { where: `m.direction IN (${list})`, params: [...v] };
  }
}

/**
 * The WHERE clause of a filter over `m`. `below` is the page's upper bound, repeated inside the
 * subqueries so that SQLite lists only the candidates below it: a page deep in the log does not
 * collect (and step over) every newer match first.
 */
export function compileFilter(
  filter: MessageFilter,
  below = Number.MAX_SAFE_INTEGER,
  dialect: FilterDialect = SQLITE,
): Compiled {
  const parts: string[] = [];
  const params: Param[] = [];
  for (const t of filter) {
    const c = termSql(t, below, dialect);
    // A NULL column (no uid, no organizer) does not match a term, so it matches the negated one.
    parts.push(t.negated ? `NOT coalesce(${c.where}, ${dialect.false})` : c.where);
    params.push(...c.params);
  }
  return { where: parts.length > 0 ? parts.join(" AND ") : dialect.true, params };
}

function fromRaw(r: RawSummary): LogMessageSummary {
  const states: Partial<Record<DeliveryState, number>> = r.deliveryStates ? JSON.parse(r.deliveryStates) : {};
  const domains = (JSON.parse(r.domains) as (string | null)[]).filter((d): d is string => d !== null);
  const recipients = Object.values(states).reduce((a, b) => a + (b ?? 0), 0);
  return { ...r, domains, recipients, deliveryStates: states };
}

/** Newest first; `beforeId` is the `nextBeforeId` of the previous page. */
export function searchMessages(
  db: Database,
  o: { filter: MessageFilter; limit: number; beforeId?: number },
): LogPage {
  if (!Number.isInteger(o.limit) || o.limit < 1)
    throw new RangeError(`limit must be a positive integer, not ${o.limit}`);
  const before = o.beforeId ?? Number.MAX_SAFE_INTEGER;
  const c = compileFilter(o.filter, before);
  // The page's ids first, then their summaries: a filter that collects and sorts many candidates
  // (peer:) then computes the per-message subqueries for the page only.
  const sql = `${SUMMARY_SQL} WHERE m.id IN (SELECT m.id FROM messages m WHERE m.id < ? AND ${c.where}
    ORDER BY m.id DESC LIMIT ?) ORDER BY m.id DESC`;
  // One row more than the page: whether it exists says whether there is a next page, so a page
  // that ends with the last match offers none (and "older" never leads to an empty page).
  const rows = db.query<RawSummary, Param[]>(sql).all(before, ...c.params, o.limit + 1);
  const messages = rows.slice(0, o.limit).map(fromRaw);
  const last = messages.at(-1);
  return rows.length > o.limit && last ? { messages, nextBeforeId: last.id } : { messages };
}

/** The summaries of those of `ids` that match the filter (the live view's changed rows). */
export function summariesOf(
  db: Database,
  ids: readonly number[],
  filter: MessageFilter,
): LogMessageSummary[] {
  if (ids.length === 0) return [];
  const c = compileFilter(filter);
  const sql = `${SUMMARY_SQL} WHERE m.id IN (SELECT value FROM json_each(?)) AND ${c.where} ORDER BY m.id DESC`;
  return db
    .query<RawSummary, Param[]>(sql)
    .all(JSON.stringify(ids), ...c.params)
    .map(fromRaw);
}

/** The delivery-level part of a filter: which recipients of a matching message it names. */
export function deliveryRestrictions(filter: MessageFilter, dialect: FilterDialect = SQLITE): Compiled {
  const parts: string[] = [];
  const params: Param[] = [];
  for (const t of filter) {
    if (!("values" in t)) continue;
    const v = t.values;
    const not = t.negated ? "NOT " : "";
    if (t.key === "status") {
      const states = v.filter((s) => s !== "refused");
      if (states.length === 0) continue;
      parts.push(`d.state ${not}IN (${placeholders(states.length)})`);
      params.push(...states);
    } else if (t.key === "peer") {
      parts.push(`(m.direction = 'inbound' OR d.domain ${not}IN (${placeholders(v.length)}))`);
      params.push(...v);
    } else if (t.key === "recipient") {
      parts.push(`${not}${dialect.nocaseIn("d.recipient", v.length)}`);
      params.push(...v);
    }
  }
  return { where: parts.length > 0 ? parts.join(" AND ") : dialect.true, params };
}

/**
 * The deliveries a bulk action on the filtered set would change: of the matching messages, those in
 * a state the action applies to and named by the filter's delivery-level terms. At most `max` + 1
 * ids, so a caller can refuse an unbounded set.
 */
export function deliveriesForAction(
  db: Database,
  o: { filter: MessageFilter; action: BulkAction; max: number },
): number[] {
  const m = compileFilter(o.filter);
  const d = deliveryRestrictions(o.filter);
  const states = ACTION_STATES[o.action];
  const sql = `SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE ${m.where} AND ${d.where} AND d.state IN (${placeholders(states.length)})
    ORDER BY d.id LIMIT ?`;
  return db
    .query<{ id: number }, Param[]>(sql)
    .all(...m.params, ...d.params, ...states, o.max + 1)
    .map((r) => r.id);
}

/** Which of `ids` are in a state the action applies to (the count a confirmation shows). */
export function actionableDeliveries(db: Database, ids: readonly number[], action: BulkAction): number[] {
  if (ids.length === 0) return [];
  const states = ACTION_STATES[action];
  return db
    .query<{ id: number }, Param[]>(
      `SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))
        AND state IN (${placeholders(states.length)}) ORDER BY id`,
    )
    .all(JSON.stringify(ids), ...states)
    .map((r) => r.id);
}

/** Those of `ids` that are no delivery at all. */
export function unknownDeliveries(db: Database, ids: readonly number[]): number[] {
  if (ids.length === 0) return [];
  const known = new Set(
    db
      .query<{ id: number }, [string]>(
        "SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
      )
      .all(JSON.stringify(ids))
      .map((r) => r.id),
  );
  return ids.filter((id) => !known.has(id));
}

/** The delivery ids of a message (actions "per message"). */
export function deliveryIdsOfMessage(db: Database, messageId: number): number[] {
  return db
    .query<{ id: number }, [number]>("SELECT id FROM deliveries WHERE message_id = ? ORDER BY id")
    .all(messageId)
    .map((r) => r.id);
}
