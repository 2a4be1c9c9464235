/**
 * The deliveries table: one row per recipient of a message, carrying the queue state in real
 * columns (state, due time, lease, attempt count, last status). Each function here is one statement
 * (or, for route-filtered leasing, one transaction; leaseFitting runs in its caller's); the store
 * (store.ts) composes them into transactions and src/queue/queue.ts supplies the clock.
 *
 * Sets of ids are bound as one JSON array (`json_each`), so a statement is prepared once whatever
 * the number of ids.
 */
import type { Database } from "bun:sqlite";
import { splitWindow } from "../lease-window.ts";
import { perDatabase } from "./_per-database.ts";

export {
  DELIVERY_STATES,
  type DeliveryState,
  type FinalDeliveryState,
  type Route,
} from "../delivery-states.ts";

import type { DeliveryState, FinalDeliveryState, Route } from "../delivery-states.ts";

export interface DeliveryRow {
  id: number;
  messageId: number;
  recipient: string;
  domain: string;
  route: Route;
  /** Local target name, peer URL, SMTP host... */
  target: string | null;
  state: DeliveryState;
  /** Attempts whose outcome was recorded on this delivery. */
  attempts: number;
  nextAttemptAt: number | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  /** How many leases in a row expired without the worker recording an attempt. */
  leaseBreaks: number;
  /** Latest per-recipient iSchedule status, e.g. `2.0;Success`. */
  requestStatus: string | null;
  lastError: string | null;
  fallbackAt: number | null;
  createdAt: number;
  updatedAt: number;
  finalAt: number | null;
}

export type LeasedDelivery = DeliveryRow & { state: "in-flight"; leaseOwner: string; leaseExpiresAt: number };

export interface DeliveryInsert {
  messageId: number;
  recipient: string;
  domain: string;
  route: Route;
  target: string | null;
  state: "queued" | "delivered" | "failed";
  requestStatus: string | null;
  lastError: string | null;
  nextAttemptAt: number | null;
  fallbackAt: number | null;
  nowMs: number;
  /** Attempts already made (1 when the delivery was decided by an attempt at intake). */
  attempts?: number;
}

const COLUMNS = `id, message_id AS messageId, recipient, domain, route, target, state, attempts,
  next_attempt_at AS nextAttemptAt, lease_owner AS leaseOwner, lease_expires_at AS leaseExpiresAt,
  lease_breaks AS leaseBreaks, request_status AS requestStatus, last_error AS lastError,
  fallback_at AS fallbackAt, created_at AS createdAt, updated_at AS updatedAt, final_at AS finalAt`;

const IDS = "id IN (SELECT value FROM json_each($ids))";
/**
 * The message still has its body: the retention pruner empties an old message's body (keeping its
 * size in body_size, store/retention.ts), and a delivery of it must never go out again empty.
 */
const BODY_KEPT = `NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id
  AND m.refusal IS NULL AND m.body_size IS NOT NULL)`;
const SET_LEASE =
  "state = 'in-flight', lease_owner = $owner, lease_expires_at = $expiresAt, updated_at = $now";

type Bindings = Record<string, string | number | null>;

const statements = perDatabase((db) => ({
  insert: db.query<
    never,
    Bindings
  >(`INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts,
      request_status, last_error, next_attempt_at, fallback_at, created_at, updated_at, final_at)
    VALUES ($messageId, $recipient, $domain, $route, $target, $state, $attempts, $requestStatus, $lastError,
      $nextAttemptAt, $fallbackAt, $now, $now, CASE WHEN $state = 'queued' THEN NULL ELSE $now END)`),
  // The subquery walks the partial index deliveries_due in (next_attempt_at, id) order and stops after
  // $limit matches: memory and time do not grow with the length of the queue. INDEXED BY makes that a
  // guarantee rather than a planner choice. One statement takes the write lock before it reads, so two
  // connections never lease the same row.
  leaseDue: db.query<DeliveryRow, Bindings>(`UPDATE deliveries SET ${SET_LEASE} WHERE id IN (
      SELECT id FROM deliveries INDEXED BY deliveries_due WHERE state = 'queued' AND next_attempt_at <= $now
      ORDER BY next_attempt_at, id LIMIT $limit)
    RETURNING ${COLUMNS}`),
  dueOfRoute: db.query<
    { id: number; nextAttemptAt: number },
    Bindings
  >(`SELECT id, next_attempt_at AS nextAttemptAt
    FROM deliveries INDEXED BY deliveries_due_route
    WHERE state = 'queued' AND route = $route AND next_attempt_at <= $now
    ORDER BY next_attempt_at, id LIMIT $limit`),
  // Few rows (what is in flight now), through the partial index on in-flight leases.
  heldElsewhere: db.query<
    HeldInFlight,
    Bindings
  >(`SELECT route, domain, count(DISTINCT message_id) AS messages
    FROM deliveries INDEXED BY deliveries_leases WHERE state = 'in-flight' AND lease_owner <> $owner
    GROUP BY route, domain`),
  dueHead: db.query<DueRow, Bindings>(`SELECT id, message_id AS messageId, domain, route
    FROM deliveries INDEXED BY deliveries_due WHERE state = 'queued' AND next_attempt_at <= $now
    ORDER BY next_attempt_at, id LIMIT $limit`),
  rotateDue: db.query<never, Bindings>(
    `UPDATE deliveries SET next_attempt_at = $now, updated_at = $now WHERE ${IDS} AND state = 'queued'`,
  ),
  leaseIds: db.query<DeliveryRow, Bindings>(
    `UPDATE deliveries SET ${SET_LEASE} WHERE ${IDS} AND state = 'queued' RETURNING ${COLUMNS}`,
  ),
  complete: db.query<never, Bindings>(`UPDATE deliveries SET state = $state, attempts = attempts + 1,
      next_attempt_at = $nextAttemptAt, lease_owner = NULL, lease_expires_at = NULL, lease_breaks = 0,
      request_status = coalesce($requestStatus, request_status), last_error = $error, updated_at = $now,
      route = coalesce($route, route), target = coalesce($target, target),
      final_at = CASE WHEN $state = 'queued' THEN NULL ELSE $now END
    WHERE id = $id AND state = 'in-flight' AND lease_owner = $owner`),
  // A delivery that waited (isched itself was not ready to send): back in the queue, no attempt counted.
  postpone: db.query<
    never,
    Bindings
  >(`UPDATE deliveries SET state = 'queued', next_attempt_at = $nextAttemptAt,
      lease_owner = NULL, lease_expires_at = NULL, lease_breaks = 0, last_error = $error, updated_at = $now
    WHERE id = $id AND state = 'in-flight' AND lease_owner = $owner`),
  wakeWaiting: db.query<never, Bindings>(`UPDATE deliveries SET next_attempt_at = $now, updated_at = $now
    WHERE state = 'queued' AND route = $route AND next_attempt_at > $now AND substr(last_error, 1, length($prefix)) = $prefix`),
  renew: db.query<
    { id: number },
    Bindings
  >(`UPDATE deliveries SET lease_expires_at = $expiresAt, updated_at = $now
    WHERE ${IDS} AND state = 'in-flight' AND lease_owner = $owner RETURNING id`),
  release: db.query<never, Bindings>(`UPDATE deliveries SET state = 'queued', next_attempt_at = $now,
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $now
    WHERE ${IDS} AND state = 'in-flight' AND lease_owner = $owner`),
  expired: db.query<
    InFlight,
    { now: number }
  >(`SELECT id, lease_owner AS leaseOwner, lease_breaks AS leaseBreaks
    FROM deliveries INDEXED BY deliveries_leases WHERE state = 'in-flight' AND lease_expires_at <= $now ORDER BY id`),
  inFlight: db.query<InFlight, []>(`SELECT id, lease_owner AS leaseOwner, lease_breaks AS leaseBreaks
    FROM deliveries INDEXED BY deliveries_leases WHERE state = 'in-flight' ORDER BY id`),
  breakLease: db.query<
    never,
    Bindings
  >(`UPDATE deliveries SET state = $state, next_attempt_at = $nextAttemptAt,
      lease_owner = NULL, lease_expires_at = NULL, lease_breaks = lease_breaks + 1, last_error = $error,
      updated_at = $now
    WHERE id = $id AND state = 'in-flight'`),
  // Start-up recovery: a queued delivery was not in flight when the previous run died, so that death
  // ends its run of lease breaks (queue.ts says why).
  endBreakStreaks: db.query<never, []>(
    "UPDATE deliveries SET lease_breaks = 0 WHERE state = 'queued' AND lease_breaks > 0",
  ),
  retryNow: db.query<never, Bindings>(`UPDATE deliveries SET state = 'queued', next_attempt_at = $now,
      lease_breaks = 0, final_at = NULL, updated_at = $now
    WHERE ${IDS} AND state IN ('queued', 'failed', 'broken') AND ${BODY_KEPT}`),
  cancel: db.query<never, Bindings>(`UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL,
      lease_owner = NULL, lease_expires_at = NULL, final_at = $now, updated_at = $now
    WHERE ${IDS} AND state IN ('queued', 'in-flight', 'broken')`),
  requestImip: db.query<
    never,
    Bindings
  >(`UPDATE deliveries SET state = 'queued', route = 'imip', target = NULL,
      next_attempt_at = $now, fallback_at = NULL, lease_breaks = 0, final_at = NULL, updated_at = $now
    WHERE ${IDS} AND state IN ('queued', 'failed', 'broken') AND ${BODY_KEPT}`),
  nextDue: db.query<{ due: number | null }, []>(
    "SELECT min(next_attempt_at) AS due FROM deliveries INDEXED BY deliveries_due WHERE state = 'queued'",
  ),
  ofMessage: db.query<DeliveryRow, { messageId: number }>(
    `SELECT ${COLUMNS} FROM deliveries WHERE message_id = $messageId ORDER BY id`,
  ),
  byId: db.query<DeliveryRow, { id: number }>(`SELECT ${COLUMNS} FROM deliveries WHERE id = $id`),
}));

export interface InFlight {
  id: number;
  leaseOwner: string;
  leaseBreaks: number;
}

export function insertDelivery(db: Database, d: DeliveryInsert): number {
  const { nowMs, attempts, ...rest } = d;
  return Number(statements(db).insert.run({ ...rest, attempts: attempts ?? 0, now: nowMs }).lastInsertRowid);
}

export interface LeaseTerms {
  owner: string;
  nowMs: number;
  leaseExpiresAt: number;
}

/** Leases up to `limit` due queued deliveries (of `routes`, when given), oldest due first. */
export function leaseDue(
  db: Database,
  o: LeaseTerms & { limit: number; routes?: readonly string[] },
): LeasedDelivery[] {
  const s = statements(db);
  let rows: DeliveryRow[];
  if (o.routes === undefined) {
    rows = s.leaseDue.all({ owner: o.owner, expiresAt: o.leaseExpiresAt, now: o.nowMs, limit: o.limit });
  } else {
    const routes = o.routes;
    // The oldest `limit` of each route, merged: routes.length × limit rows at most, however long the
    // backlog of other routes. One write transaction, so no other connection leases in between.
    rows = db
      .transaction(() => {
        const due = routes.flatMap((route) => s.dueOfRoute.all({ route, now: o.nowMs, limit: o.limit }));
        due.sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id);
        const ids = due.slice(0, o.limit).map((d) => d.id);
        return s.leaseIds.all({
          owner: o.owner,
          expiresAt: o.leaseExpiresAt,
          now: o.nowMs,
          ids: JSON.stringify(ids),
        });
      })
      .immediate();
  }
  // RETURNING gives no order guarantee.
  return (rows as LeasedDelivery[]).sort((a, b) => a.nextAttemptAt! - b.nextAttemptAt! || a.id - b.id);
}

/**
 * What lease owners other than the one leasing hold in flight, for one route and domain: the number
 * of messages (an attempt carries one message to one target) with deliveries in flight. With
 * PostgreSQL these are the other nodes' (and a dead process's until its leases are taken over).
 */
export interface HeldInFlight {
  route: Route;
  domain: string;
  messages: number;
}

/** What a lease chooses by: a due delivery's message and where it goes. */
export interface DueRow {
  id: number;
  messageId: number;
  domain: string;
  route: Route;
}

/**
 * Leases, of the `window` oldest due deliveries, up to `limit` that `fits` accepts (called in due
 * order, once per row). With `rotate`, when the window was full, the rows `fits` refused become due
 * now, behind the others (their order among themselves kept), so that a long backlog for one busy
 * target cannot hide the rest of the queue from the next windows.
 *
 * Runs inside the caller's write transaction (the store's group commit), which SQLite holds alone:
 * no other connection leases between the reads that choose and the UPDATE that leases.
 */
export function leaseFitting(
  db: Database,
  o: LeaseTerms & {
    limit: number;
    window: number;
    fits: (row: DueRow, heldElsewhere: readonly HeldInFlight[]) => boolean;
    rotate: boolean;
  },
): { leased: LeasedDelivery[]; refused: number } {
  const s = statements(db);
  const head = s.dueHead.all({ now: o.nowMs, limit: o.window });
  const elsewhere = head.length === 0 ? [] : s.heldElsewhere.all({ owner: o.owner });
  const { chosen, refused } = splitWindow(head, { limit: o.limit, heldElsewhere: elsewhere, fits: o.fits });
  if (o.rotate && head.length === o.window && refused.length > 0)
    s.rotateDue.run({ now: o.nowMs, ids: JSON.stringify(refused) });
  if (chosen.length === 0) return { leased: [], refused: refused.length };
  const rows = s.leaseIds.all({
    owner: o.owner,
    expiresAt: o.leaseExpiresAt,
    now: o.nowMs,
    ids: JSON.stringify(chosen),
  }) as LeasedDelivery[];
  rows.sort((a, b) => a.nextAttemptAt! - b.nextAttemptAt! || a.id - b.id);
  return { leased: rows, refused: refused.length };
}

/** Leases those of `ids` that are still queued, due or not. */
export function leaseIds(db: Database, o: LeaseTerms & { ids: readonly number[] }): LeasedDelivery[] {
  const rows = statements(db).leaseIds.all({
    owner: o.owner,
    expiresAt: o.leaseExpiresAt,
    now: o.nowMs,
    ids: JSON.stringify(o.ids),
  });
  return (rows as LeasedDelivery[]).sort((a, b) => a.id - b.id);
}

export interface CompletionUpdate {
  id: number;
  owner: string;
  nowMs: number;
  state: FinalDeliveryState | "queued";
  nextAttemptAt: number | null;
  requestStatus: string | null;
  error: string | null;
  /** A new route (iMIP fallback) and target (the peer URL discovery found); null keeps them. */
  route: Route | null;
  target: string | null;
}

/** Applies an attempt's outcome if `owner` still holds the lease; true when it did. */
export function completeLeased(db: Database, u: CompletionUpdate): boolean {
  const { nowMs, ...rest } = u;
  return statements(db).complete.run({ ...rest, now: nowMs }).changes === 1;
}

/**
 * Puts a leased delivery back in the queue without counting an attempt (it waited for isched, not
 * for the peer); true when `owner` still held it.
 */
export function postponeLeased(
  db: Database,
  u: { id: number; owner: string; nowMs: number; nextAttemptAt: number; error: string },
): boolean {
  const { nowMs, ...rest } = u;
  return statements(db).postpone.run({ ...rest, now: nowMs }).changes === 1;
}

/** Makes waiting deliveries of `route` whose last error starts with `prefix` due now; how many. */
export function wakeWaiting(db: Database, o: { route: Route; prefix: string; nowMs: number }): number {
  return statements(db).wakeWaiting.run({ route: o.route, prefix: o.prefix, now: o.nowMs }).changes;
}

/** Extends the leases `owner` still holds; returns their ids. */
export function renewLeases(db: Database, o: LeaseTerms & { ids: readonly number[] }): number[] {
  const rows = statements(db).renew.all({
    ids: JSON.stringify(o.ids),
    owner: o.owner,
    expiresAt: o.leaseExpiresAt,
    now: o.nowMs,
  });
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

/** Puts leased deliveries back in the queue, due now, without counting an attempt. */
export function releaseLeases(
  db: Database,
  o: { ids: readonly number[]; owner: string; nowMs: number },
): number {
  return statements(db).release.run({ ids: JSON.stringify(o.ids), owner: o.owner, now: o.nowMs }).changes;
}

/**
 * In-flight deliveries whose lease expired at `expiredBy` or whose owner starts with `ownerPrefix`,
 * or all of them when neither is given.
 */
export function inFlightDeliveries(
  db: Database,
  o: { expiredBy?: number; ownerPrefix?: string },
): InFlight[] {
  const s = statements(db);
  if (o.ownerPrefix === undefined)
    return o.expiredBy === undefined ? s.inFlight.all() : s.expired.all({ now: o.expiredBy });
  const prefix = o.ownerPrefix;
  const expired = new Set(
    o.expiredBy === undefined ? [] : s.expired.all({ now: o.expiredBy }).map((d) => d.id),
  );
  return s.inFlight.all().filter((d) => expired.has(d.id) || d.leaseOwner.startsWith(prefix));
}

/** Forgets the lease breaks of every queued delivery; returns how many had some. */
export function endBreakStreaks(db: Database): number {
  return statements(db).endBreakStreaks.run().changes;
}

/** Ends an abandoned lease: back to the queue at `nextAttemptAt`, or to 'broken'. */
export function breakLease(
  db: Database,
  o: { id: number; nowMs: number; error: string } & (
    | { state: "queued"; nextAttemptAt: number }
    | { state: "broken" }
  ),
): boolean {
  const nextAttemptAt = o.state === "queued" ? o.nextAttemptAt : null;
  const params = { id: o.id, state: o.state, nextAttemptAt, error: o.error, now: o.nowMs };
  return statements(db).breakLease.run(params).changes === 1;
}

export type OperatorAction = "retryNow" | "cancel" | "requestImip";

/** Runs one operator action on `ids`; returns how many deliveries changed. */
export function applyOperatorAction(
  db: Database,
  o: { action: OperatorAction; ids: readonly number[]; nowMs: number },
): number {
  return statements(db)[o.action].run({ ids: JSON.stringify(o.ids), now: o.nowMs }).changes;
}

/** When the earliest queued delivery is due, or undefined when nothing is queued. */
export function nextDueAt(db: Database): number | undefined {
  return statements(db).nextDue.get()?.due ?? undefined;
}

export function deliveriesOfMessage(db: Database, messageId: number): DeliveryRow[] {
  return statements(db).ofMessage.all({ messageId });
}

export function getDeliveryRow(db: Database, id: number): DeliveryRow | undefined {
  return statements(db).byId.get({ id }) ?? undefined;
}
