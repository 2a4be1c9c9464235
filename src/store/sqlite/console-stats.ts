/**
 * Aggregates the console shows: attempts by outcome over time, the latest failures, per-peer traffic,
 * and what changed since the live view last looked. Each is one statement over an index added for
 * it in migrations.ts (attempts_started, attempts_failed, messages_peer, deliveries_domain,
 * deliveries_updated), so none of them reads the message bodies or scans the whole log row by row.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";
import type { AttemptOutcome } from "./attempts.ts";
import type { DeliveryState, Route } from "./deliveries.ts";

export interface OutcomeBucket {
  /** Start of the bucket, ms. */
  startMs: number;
  counts: Partial<Record<AttemptOutcome, number>>;
}

export interface RecentFailure {
  attemptId: number;
  startedAt: number;
  outcome: AttemptOutcome;
  deliveryId: number;
  messageId: number;
  recipient: string;
  route: Route;
  target: string | null;
  httpStatus: number | null;
  requestStatus: string | null;
  error: string | null;
  state: DeliveryState;
  summary: string | null;
  method: string;
}

export interface InboundPeerStats {
  domain: string;
  messages: number;
  dkimPass: number;
  dkimFail: number;
  lastAt: number;
}

export interface OutboundPeerStats {
  domain: string;
  deliveries: number;
  delivered: number;
  failed: number;
  pending: number;
  lastAt: number;
}

export interface SelectorSeen {
  selector: string;
  messages: number;
  lastVerifiedAt: number;
}

const statements = perDatabase((db) => ({
  buckets: db.query<
    { bucket: number; outcome: AttemptOutcome; n: number },
    { from: number; size: number }
  >(`SELECT (started_at - $from) / $size AS bucket, outcome, count(*) AS n
    FROM attempts INDEXED BY attempts_started WHERE started_at >= $from GROUP BY bucket, outcome`),
  failures: db.query<RecentFailure, { limit: number }>(`SELECT a.id AS attemptId, a.started_at AS startedAt,
      a.outcome, a.delivery_id AS deliveryId, d.message_id AS messageId, d.recipient, a.route, a.target,
      a.http_status AS httpStatus, a.request_status AS requestStatus, a.error, d.state, m.summary, m.method
    FROM attempts a INDEXED BY attempts_failed
      JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.id = d.message_id
    WHERE a.outcome IN ('temporary', 'permanent') ORDER BY a.started_at DESC, a.id DESC LIMIT $limit`),
  // Each distinct domain is found by one index seek past the previous one (a loose index scan), and
  // its figures by range seeks over the window: the cost follows the number of peers and the recent
  // traffic, not the length of the log.
  inbound: db.query<InboundPeerStats, { since: number }>(`WITH RECURSIVE d(domain) AS (
      SELECT min(peer_domain) FROM messages INDEXED BY messages_peer WHERE peer_domain IS NOT NULL
      UNION ALL
      SELECT (SELECT min(peer_domain) FROM messages INDEXED BY messages_peer WHERE peer_domain > d.domain)
      FROM d WHERE d.domain IS NOT NULL)
    SELECT domain,
      (SELECT count(*) FROM messages INDEXED BY messages_peer
        WHERE peer_domain = d.domain AND received_at >= $since) AS messages,
      (SELECT count(*) FROM messages INDEXED BY messages_peer
        WHERE peer_domain = d.domain AND received_at >= $since AND dkim_result = 'pass') AS dkimPass,
      (SELECT count(*) FROM messages INDEXED BY messages_peer
        WHERE peer_domain = d.domain AND received_at >= $since AND dkim_result = 'fail') AS dkimFail,
      (SELECT max(received_at) FROM messages INDEXED BY messages_peer WHERE peer_domain = d.domain) AS lastAt
    FROM d WHERE domain IS NOT NULL`),
  outbound: db.query<OutboundPeerStats, { since: number }>(`WITH RECURSIVE d(domain) AS (
      SELECT min(domain) FROM deliveries INDEXED BY deliveries_domain
      UNION ALL
      SELECT (SELECT min(domain) FROM deliveries INDEXED BY deliveries_domain WHERE domain > d.domain)
      FROM d WHERE d.domain IS NOT NULL)
    SELECT d.domain, count(x.state) AS deliveries,
      coalesce(sum(x.state IN ('delivered', 'sent-imip')), 0) AS delivered,
      coalesce(sum(x.state IN ('failed', 'broken')), 0) AS failed,
      coalesce(sum(x.state IN ('queued', 'in-flight')), 0) AS pending,
      (SELECT max(updated_at) FROM deliveries INDEXED BY deliveries_domain WHERE domain = d.domain) AS lastAt
    FROM d LEFT JOIN deliveries x INDEXED BY deliveries_domain
      ON x.domain = d.domain AND x.updated_at >= $since AND x.route <> 'local'
    WHERE d.domain IS NOT NULL GROUP BY d.domain`),
  selectors: db.query<
    SelectorSeen,
    { domain: string }
  >(`SELECT dkim_selector AS selector, count(*) AS messages,
      max(received_at) AS lastVerifiedAt
    FROM messages WHERE peer_domain = $domain AND dkim_result = 'pass' AND dkim_selector IS NOT NULL
    GROUP BY dkim_selector ORDER BY lastVerifiedAt DESC`),
  notDelivered: db.query<{ state: DeliveryState; n: number }, []>(`SELECT state, count(*) AS n
    FROM deliveries INDEXED BY deliveries_state WHERE state <> 'delivered' GROUP BY state`),
  allDeliveries: db.query<{ n: number }, []>("SELECT count(*) AS n FROM deliveries"),
  maxMessageId: db.query<{ id: number | null }, []>("SELECT max(id) AS id FROM messages"),
  changedDeliveries: db.query<{ id: number; messageId: number; updatedAt: number }, { since: number }>(
    `SELECT id, message_id AS messageId, updated_at AS updatedAt
     FROM deliveries INDEXED BY deliveries_updated WHERE updated_at >= $since`,
  ),
  newMessages: db.query<{ id: number }, { after: number }>("SELECT id FROM messages WHERE id > $after"),
}));

/**
 * Deliveries per state, exact, without an index of delivered ones (walking one cost 150 ms with a
 * million of them, and writing it a WAL frame per commit): the other states from the small
 * deliveries_state index, delivered as the total minus those. The queue's countByState is this too.
 */
export function deliveryStateCounts(db: Database): Record<DeliveryState, number> {
  const s = statements(db);
  return db
    .transaction(() => {
      const counts: Record<DeliveryState, number> = {
        queued: 0,
        "in-flight": 0,
        delivered: 0,
        failed: 0,
        "sent-imip": 0,
        cancelled: 0,
        broken: 0,
      };
      let others = 0;
      for (const r of s.notDelivered.all()) {
        counts[r.state] = r.n;
        others += r.n;
      }
      counts.delivered = (s.allDeliveries.get()?.n ?? 0) - others;
      return counts;
    })
    .deferred();
}

/** Attempts by outcome in `count` buckets of `sizeMs` ending now (oldest first). */
export function attemptsByOutcome(
  db: Database,
  o: { nowMs: number; sizeMs: number; count: number },
): OutcomeBucket[] {
  const from = o.nowMs - o.sizeMs * o.count;
  const buckets: OutcomeBucket[] = Array.from({ length: o.count }, (_, i) => ({
    startMs: from + i * o.sizeMs,
    counts: {},
  }));
  for (const r of statements(db).buckets.all({ from, size: o.sizeMs })) {
    const b = buckets[Math.min(r.bucket, o.count - 1)];
    if (b) b.counts[r.outcome] = (b.counts[r.outcome] ?? 0) + r.n;
  }
  return buckets;
}

export function recentFailures(db: Database, limit: number): RecentFailure[] {
  return statements(db).failures.all({ limit });
}

/** Per peer domain, messages received since `sinceMs` (and the last one ever). */
export function inboundPeerStats(db: Database, sinceMs: number): InboundPeerStats[] {
  return statements(db).inbound.all({ since: sinceMs });
}

/**
 * Per recipient domain, deliveries to it updated since `sinceMs` by state (and the last update
 * ever). Hosted domains come out too (their deliveries are local): the caller leaves them out.
 */
export function outboundPeerStats(db: Database, sinceMs: number): OutboundPeerStats[] {
  return statements(db).outbound.all({ since: sinceMs });
}

/** The selectors a peer's verified messages were signed with, most recent first. */
export function selectorsSeen(db: Database, domain: string): SelectorSeen[] {
  return statements(db).selectors.all({ domain });
}

export interface ChangeCursor {
  lastMessageId: number;
  /** Delivery id -> updated_at already reported, for the overlap window. */
  seen: Map<number, number>;
  sinceMs: number;
}

/** A cursor at the current end of the log: the live view reports what changes after it. */
export function changeCursor(db: Database, nowMs: number): ChangeCursor {
  return { lastMessageId: statements(db).maxMessageId.get()?.id ?? 0, seen: new Map(), sinceMs: nowMs };
}

/**
 * The messages that are new or whose deliveries changed since the cursor, which it advances. Rows
 * are read again for an overlap of `overlapMs`, because a transaction that stamped updated_at a
 * moment ago may commit after this read; `seen` keeps that overlap from reporting a row twice.
 */
export function changedMessages(
  db: Database,
  cursor: ChangeCursor,
  o: { nowMs: number; overlapMs: number },
): number[] {
  const s = statements(db);
  const ids = new Set<number>();
  for (const r of s.newMessages.all({ after: cursor.lastMessageId })) {
    ids.add(r.id);
    if (r.id > cursor.lastMessageId) cursor.lastMessageId = r.id;
  }
  const since = cursor.sinceMs - o.overlapMs;
  for (const r of s.changedDeliveries.all({ since })) {
    if (cursor.seen.get(r.id) === r.updatedAt) continue;
    cursor.seen.set(r.id, r.updatedAt);
    ids.add(r.messageId);
  }
  for (const [id, at] of cursor.seen) if (at < since) cursor.seen.delete(id);
  cursor.sinceMs = o.nowMs;
  return [...ids].sort((a, b) => b - a);
}

export interface LastAttempt {
  outcome: AttemptOutcome;
  startedAt: number;
  error: string | null;
}

/** How far back "the latest attempt of a target" looks, so a silent target costs a bounded scan. */
const RECENT_ATTEMPTS = 5000;

/** The latest attempt of the local deliveries to `domain`, or of any iMIP attempt. */
export function lastAttempt(
  db: Database,
  o: { route: "local"; domain: string } | { route: "imip" },
): LastAttempt | null {
  const newest = db.query<{ id: number | null }, []>("SELECT max(id) AS id FROM attempts").get()?.id ?? 0;
  const where = o.route === "local" ? "d.route = 'local' AND d.domain = ?" : "a.route = ?";
  // CROSS JOIN keeps attempts the outer loop: a walk back over the newest rowids, never a scan of
  // every delivery of a busy domain.
  return (
    db
      .query<LastAttempt, [number, string]>(`SELECT a.outcome, a.started_at AS startedAt, a.error
        FROM attempts a CROSS JOIN deliveries d ON d.id = a.delivery_id
        WHERE a.id > ? AND ${where} ORDER BY a.id DESC LIMIT 1`)
      .get(newest - RECENT_ATTEMPTS, o.route === "local" ? o.domain : "imip") ?? null
  );
}
