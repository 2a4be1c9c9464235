/**
 * The console's reads on PostgreSQL (src/store/sqlite/console-stats.ts, inbox.ts and the id reads
 * of message-search.ts): counts, recent failures, peers' figures, a recipient's inbox, and the live
 * view's cursor. The statements are plain aggregates; PostgreSQL's planner picks the partial
 * indexes (SQLite's INDEXED BY has no counterpart), which BENCHMARKS.md has not measured yet on a
 * large database.
 *
 * The live view's cursor is SQLite's (ids above the last one seen, deliveries changed within an
 * overlap): with several nodes, identity values may commit out of order, which the NOTIFY feed of
 * docs/store-interface.md is to fix; not built.
 */
import { DELIVERY_STATES, type DeliveryState } from "../delivery-states.ts";
import { ACTION_STATES, type BulkAction } from "../message-filter.ts";
import type {
  ChangeCursor,
  InboundPeerStats,
  InboxItem,
  LastAttempt,
  OutboundPeerStats,
  OutcomeBucket,
  RecentFailure,
  SelectorSeen,
} from "../store.ts";
import { idArray, type Runner, rows, withNumbers } from "./_values.ts";

const ids = (found: Record<string, unknown>[]) => found.map((r) => Number(r.id));

export async function deliveryIdsOfMessage(q: Runner, messageId: number): Promise<number[]> {
  return ids(await rows(q, "SELECT id FROM deliveries WHERE message_id = $1 ORDER BY id", [messageId]));
}

export async function actionableDeliveries(
  q: Runner,
  of: readonly number[],
  action: BulkAction,
): Promise<number[]> {
  if (of.length === 0) return [];
  const states = `{${ACTION_STATES[action].join(",")}}`;
  return ids(
    await rows(
      q,
      "SELECT id FROM deliveries WHERE id = ANY($1::bigint[]) AND state = ANY($2::text[]) ORDER BY id",
      [idArray(of), states],
    ),
  );
}

export async function unknownDeliveries(q: Runner, of: readonly number[]): Promise<number[]> {
  if (of.length === 0) return [];
  const known = new Set(
    ids(await rows(q, "SELECT id FROM deliveries WHERE id = ANY($1::bigint[])", [idArray(of)])),
  );
  return of.filter((id) => !known.has(id));
}

export async function deliveryStateCounts(q: Runner): Promise<Record<DeliveryState, number>> {
  const counts = Object.fromEntries(DELIVERY_STATES.map((s) => [s, 0])) as Record<DeliveryState, number>;
  for (const r of await rows(q, "SELECT state, count(*)::int AS n FROM deliveries GROUP BY state"))
    counts[r.state as DeliveryState] = r.n as number;
  return counts;
}

export async function attemptsByOutcome(
  q: Runner,
  o: { nowMs: number; sizeMs: number; count: number },
): Promise<OutcomeBucket[]> {
  const from = o.nowMs - o.sizeMs * o.count;
  const buckets: OutcomeBucket[] = Array.from({ length: o.count }, (_, i) => ({
    startMs: from + i * o.sizeMs,
    counts: {},
  }));
  const found = await rows(
    q,
    `SELECT ((started_at - $1) / $2)::int AS bucket, outcome, count(*)::int AS n
      FROM attempts WHERE started_at >= $1 GROUP BY 1, outcome`,
    [from, o.sizeMs],
  );
  for (const r of found) {
    const b = buckets[Math.min(r.bucket as number, o.count - 1)];
    const outcome = r.outcome as keyof OutcomeBucket["counts"];
    if (b) b.counts[outcome] = (b.counts[outcome] ?? 0) + (r.n as number);
  }
  return buckets;
}

export async function recentFailures(q: Runner, limit: number): Promise<RecentFailure[]> {
  const found = await rows(
    q,
    `SELECT a.id AS "attemptId", a.started_at AS "startedAt", a.outcome, a.delivery_id AS "deliveryId",
      d.message_id AS "messageId", d.recipient, a.route, a.target, a.http_status AS "httpStatus",
      a.request_status AS "requestStatus", a.error, d.state, m.summary, m.method
    FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.id = d.message_id
    WHERE a.outcome IN ('temporary', 'permanent') ORDER BY a.started_at DESC, a.id DESC LIMIT $1`,
    [limit],
  );
  return found.map((r) =>
    withNumbers<RecentFailure>(r, ["attemptId", "startedAt", "deliveryId", "messageId"]),
  );
}

export async function inboundPeerStats(q: Runner, sinceMs: number): Promise<InboundPeerStats[]> {
  const found = await rows(
    q,
    `SELECT peer_domain AS domain,
      count(*) FILTER (WHERE received_at >= $1)::int AS messages,
      count(*) FILTER (WHERE received_at >= $1 AND dkim_result = 'pass')::int AS "dkimPass",
      count(*) FILTER (WHERE received_at >= $1 AND dkim_result = 'fail')::int AS "dkimFail",
      max(received_at) AS "lastAt"
    FROM messages WHERE peer_domain IS NOT NULL GROUP BY peer_domain ORDER BY peer_domain`,
    [sinceMs],
  );
  return found.map((r) => withNumbers<InboundPeerStats>(r, ["lastAt"]));
}

export async function outboundPeerStats(q: Runner, sinceMs: number): Promise<OutboundPeerStats[]> {
  const found = await rows(
    q,
    `SELECT domain,
      count(*) FILTER (WHERE ${RECENT})::int AS deliveries,
      count(*) FILTER (WHERE ${RECENT} AND state IN ('delivered', 'sent-imip'))::int AS delivered,
      count(*) FILTER (WHERE ${RECENT} AND state IN ('failed', 'broken'))::int AS failed,
      count(*) FILTER (WHERE ${RECENT} AND state IN ('queued', 'in-flight'))::int AS pending,
      max(updated_at) AS "lastAt"
    FROM deliveries GROUP BY domain ORDER BY domain`,
    [sinceMs],
  );
  return found.map((r) => withNumbers<OutboundPeerStats>(r, ["lastAt"]));
}

const RECENT = "updated_at >= $1 AND route <> 'local'";

export async function selectorsSeen(q: Runner, domain: string): Promise<SelectorSeen[]> {
  const found = await rows(
    q,
    `SELECT dkim_selector AS selector, count(*)::int AS messages, max(received_at) AS "lastVerifiedAt"
    FROM messages WHERE peer_domain = $1 AND dkim_result = 'pass' AND dkim_selector IS NOT NULL
    GROUP BY dkim_selector ORDER BY 3 DESC`,
    [domain],
  );
  return found.map((r) => withNumbers<SelectorSeen>(r, ["lastVerifiedAt"]));
}

export async function inbox(
  q: Runner,
  o: { recipient: string; limit: number; beforeId?: number },
): Promise<{ items: InboxItem[]; nextBeforeId?: number }> {
  const found = await rows(
    q,
    `SELECT m.id AS "messageId", m.uuid, m.received_at AS "receivedAt", m.originator, m.method, m.component,
      m.uid, m.summary, m.dkim_result AS "dkimResult", m.dkim_domain AS "dkimDomain", d.recipient,
      d.request_status AS "requestStatus", convert_from(m.body, 'UTF8') AS body
    FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE lower(d.recipient) = lower($1) AND d.target = 'store' AND d.state = 'delivered' AND d.message_id < $2
    ORDER BY d.message_id DESC LIMIT $3`,
    [o.recipient, o.beforeId ?? Number.MAX_SAFE_INTEGER, o.limit + 1],
  );
  const page = found
    .slice(0, o.limit)
    .map((r) => withNumbers<InboxItem & { messageId: number }>(r, ["messageId", "receivedAt"]));
  return {
    items: page.map(({ messageId: _, ...item }) => item),
    nextBeforeId: found.length > o.limit ? page[page.length - 1]!.messageId : undefined,
  };
}

export async function lastAttempt(
  q: Runner,
  o: { route: "local"; domain: string } | { route: "imip" },
): Promise<LastAttempt | null> {
  const where = o.route === "local" ? "d.route = 'local' AND d.domain = $1" : "a.route = $1";
  const [r] = await rows(
    q,
    `SELECT a.outcome, a.started_at AS "startedAt", a.error FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
      WHERE ${where} ORDER BY a.id DESC LIMIT 1`,
    [o.route === "local" ? o.domain : "imip"],
  );
  return r ? withNumbers<LastAttempt>(r, ["startedAt"]) : null;
}

export async function changeCursor(q: Runner, nowMs: number): Promise<ChangeCursor> {
  const [r] = await rows(q, "SELECT max(id) AS id FROM messages");
  return { lastMessageId: r?.id == null ? 0 : Number(r.id), seen: new Map(), sinceMs: nowMs };
}

export async function changedMessages(
  q: Runner,
  cursor: ChangeCursor,
  o: { nowMs: number; overlapMs: number },
): Promise<number[]> {
  const since = cursor.sinceMs - o.overlapMs;
  const fresh = ids(await rows(q, "SELECT id FROM messages WHERE id > $1", [cursor.lastMessageId]));
  const changed = (
    await rows(
      q,
      `SELECT id, message_id AS "messageId", updated_at AS "updatedAt" FROM deliveries WHERE updated_at >= $1`,
      [since],
    )
  ).map((r) =>
    withNumbers<{ id: number; messageId: number; updatedAt: number }>(r, ["id", "messageId", "updatedAt"]),
  );
  return advanceCursor(cursor, { fresh, changed, since, nowMs: o.nowMs });
}

/** Moves the cursor past what was read; the messages to report, newest first. */
function advanceCursor(
  cursor: ChangeCursor,
  o: {
    fresh: number[];
    changed: { id: number; messageId: number; updatedAt: number }[];
    since: number;
    nowMs: number;
  },
): number[] {
  const out = new Set<number>();
  for (const id of o.fresh) {
    out.add(id);
    if (id > cursor.lastMessageId) cursor.lastMessageId = id;
  }
  for (const r of o.changed) {
    if (cursor.seen.get(r.id) === r.updatedAt) continue;
    cursor.seen.set(r.id, r.updatedAt);
    out.add(r.messageId);
  }
  for (const [id, at] of cursor.seen) if (at < o.since) cursor.seen.delete(id);
  cursor.sinceMs = o.nowMs;
  return [...out].sort((a, b) => b - a);
}
