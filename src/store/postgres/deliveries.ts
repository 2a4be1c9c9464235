/**
 * The deliveries table on PostgreSQL: the statements of src/store/sqlite/deliveries.ts in
 * PostgreSQL's form, for several nodes on one database (docs/store-interface.md, "Races and
 * sharing"). Leasing picks its rows with `FOR UPDATE SKIP LOCKED` and re-checks `state = 'queued'`
 * in the UPDATE, so two nodes leasing at once take disjoint sets and neither waits for the other;
 * every other change is conditional on the state (and the lease owner) it expects, as on SQLite.
 * Each function is one statement; store.ts composes the transactions.
 */
import { DELIVERY_STATES, type DeliveryState } from "../delivery-states.ts";
import type {
  DeliveryRow,
  DeliveryToStore,
  DueRow,
  HeldInFlight,
  InFlight,
  LeasedDelivery,
  LeaseTerms,
  OperatorAction,
  Route,
} from "../store.ts";
import { changes, idArray, type Row, type Runner, rows, withNumbers } from "./_values.ts";

const COLUMNS = `id, message_id AS "messageId", recipient, domain, route, target, state, attempts,
  next_attempt_at AS "nextAttemptAt", lease_owner AS "leaseOwner", lease_expires_at AS "leaseExpiresAt",
  lease_breaks AS "leaseBreaks", request_status AS "requestStatus", last_error AS "lastError",
  fallback_at AS "fallbackAt", created_at AS "createdAt", updated_at AS "updatedAt", final_at AS "finalAt"`;

const INT8 = [
  "id",
  "messageId",
  "nextAttemptAt",
  "leaseExpiresAt",
  "fallbackAt",
  "createdAt",
  "updatedAt",
  "finalAt",
] as const;

const deliveryRow = (r: Row): DeliveryRow => withNumbers<DeliveryRow>(r, INT8);

/** RETURNING gives no order guarantee: oldest due first, as SQLite's store returns them. */
const byDue = (a: DeliveryRow, b: DeliveryRow) => a.nextAttemptAt! - b.nextAttemptAt! || a.id - b.id;

/** The message still has its body (src/store/sqlite/deliveries.ts says why). */
const BODY_KEPT = `NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id
  AND m.refusal IS NULL AND m.body_size IS NOT NULL)`;

/** $1 owner, $2 expires at, $3 now. */
const SET_LEASE = `state = 'in-flight', lease_owner = $1, lease_expires_at = $2, updated_at = $3`;

export async function insertDelivery(
  q: Runner,
  d: Omit<DeliveryToStore, "attempt"> & { messageId: number; nowMs: number; attempts: number },
): Promise<number> {
  const [row] = await rows(
    q,
    `INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts,
      request_status, last_error, next_attempt_at, fallback_at, created_at, updated_at, final_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12,
      CASE WHEN $6::text = 'queued' THEN NULL ELSE $12::bigint END)
    RETURNING id`,
    [
      d.messageId,
      d.recipient,
      d.domain,
      d.route,
      d.target,
      d.state,
      d.attempts,
      d.requestStatus,
      d.lastError,
      d.nextAttemptAt,
      d.fallbackAt,
      d.nowMs,
    ],
  );
  return Number(row!.id);
}

/**
 * Leases up to `limit` due queued deliveries (of `routes`, when given), oldest due first. The
 * subquery skips rows another transaction holds locked (being leased by another node), and the
 * outer `state = 'queued'` refuses a row that changed between the subquery's snapshot and its lock.
 */
export async function leaseDue(
  q: Runner,
  o: LeaseTerms & { limit: number; routes?: readonly string[] },
): Promise<LeasedDelivery[]> {
  const ofRoutes = o.routes === undefined ? "" : "AND route = ANY($5::text[])";
  const params: unknown[] = [o.owner, o.leaseExpiresAt, o.nowMs, o.limit];
  if (o.routes !== undefined) params.push(`{${o.routes.map((r) => JSON.stringify(r)).join(",")}}`);
  // The chosen rows are MATERIALIZED: as `id IN (subquery)` the planner may run the subquery again
  // for each row it updates, and each run, skipping nothing of its own, picks further rows (a lease
  // of 3 took 5 in the contract test).
  const leased = await rows(
    q,
    `WITH chosen AS MATERIALIZED (
        SELECT id AS chosen_id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= $3 ${ofRoutes}
        ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
      UPDATE deliveries SET ${SET_LEASE} FROM chosen WHERE id = chosen_id AND state = 'queued'
      RETURNING ${COLUMNS}`,
    params,
  );
  return (leased.map(deliveryRow) as LeasedDelivery[]).sort(byDue);
}

/**
 * The `limit` oldest due queued deliveries with where they go, locked for this transaction; rows
 * another node holds locked (it is leasing them) are skipped, not waited for.
 */
export async function lockDueHead(q: Runner, o: { nowMs: number; limit: number }): Promise<DueRow[]> {
  const head = await rows(
    q,
    `SELECT id, message_id AS "messageId", domain, route FROM deliveries
      WHERE state = 'queued' AND next_attempt_at <= $1
      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [o.nowMs, o.limit],
  );
  return head.map((r) => withNumbers<DueRow>(r, ["id", "messageId"]));
}

/**
 * Waits for the other nodes' leasing transactions to end, and keeps them waiting until this one
 * commits, so that what heldElsewhere() counts is still true when this one leases: two nodes that
 * counted at once could each take the last free slots of a peer.
 */
export async function serializeLeasing(q: Runner): Promise<void> {
  await rows(q, "SELECT pg_advisory_xact_lock($1)", [LEASING_LOCK]);
}

/** The advisory lock of leaseFitting ("leas"). */
const LEASING_LOCK = 0x6c656173;

/** Messages with deliveries in flight under an owner other than `owner`, by route and domain. */
export async function heldElsewhere(q: Runner, owner: string): Promise<HeldInFlight[]> {
  const held = await rows(
    q,
    `SELECT route, domain, count(DISTINCT message_id)::int AS messages FROM deliveries
      WHERE state = 'in-flight' AND lease_owner <> $1 GROUP BY route, domain`,
    [owner],
  );
  return held as unknown as HeldInFlight[];
}

/** Makes `ids` due now, behind the rest of the queue (src/store/sqlite/deliveries.ts leaseFitting). */
export async function rotateDue(q: Runner, o: { nowMs: number; ids: readonly number[] }): Promise<void> {
  await changes(
    q,
    `UPDATE deliveries SET next_attempt_at = $1, updated_at = $1 WHERE id = ANY($2::bigint[]) AND state = 'queued'`,
    [o.nowMs, idArray(o.ids)],
  );
}

/** Leases those of `ids` that are still queued, due or not. */
export async function leaseIds(
  q: Runner,
  o: LeaseTerms & { ids: readonly number[] },
): Promise<LeasedDelivery[]> {
  const leased = await rows(
    q,
    `UPDATE deliveries SET ${SET_LEASE} WHERE id = ANY($4::bigint[]) AND state = 'queued' RETURNING ${COLUMNS}`,
    [o.owner, o.leaseExpiresAt, o.nowMs, idArray(o.ids)],
  );
  return (leased.map(deliveryRow) as LeasedDelivery[]).sort((a, b) => a.id - b.id);
}

/** Applies an attempt's outcome if `owner` still holds the lease; true when it did. */
export async function completeLeased(
  q: Runner,
  u: {
    id: number;
    owner: string;
    nowMs: number;
    state: string;
    nextAttemptAt: number | null;
    requestStatus: string | null;
    error: string | null;
    route: Route | null;
    target: string | null;
  },
): Promise<boolean> {
  const n = await changes(
    q,
    `UPDATE deliveries SET state = $3, attempts = attempts + 1,
      next_attempt_at = $4, lease_owner = NULL, lease_expires_at = NULL, lease_breaks = 0,
      request_status = coalesce($5, request_status), last_error = $6, updated_at = $7,
      route = coalesce($8, route), target = coalesce($9, target),
      final_at = CASE WHEN $3::text = 'queued' THEN NULL ELSE $7::bigint END
    WHERE id = $1 AND state = 'in-flight' AND lease_owner = $2`,
    [u.id, u.owner, u.state, u.nextAttemptAt, u.requestStatus, u.error, u.nowMs, u.route, u.target],
  );
  return n === 1;
}

/** Back in the queue without counting an attempt (it waited for isched itself); true when `owner` held it. */
export async function postponeLeased(
  q: Runner,
  u: { id: number; owner: string; nowMs: number; nextAttemptAt: number; error: string },
): Promise<boolean> {
  const n = await changes(
    q,
    `UPDATE deliveries SET state = 'queued', next_attempt_at = $3,
      lease_owner = NULL, lease_expires_at = NULL, lease_breaks = 0, last_error = $4, updated_at = $5
    WHERE id = $1 AND state = 'in-flight' AND lease_owner = $2`,
    [u.id, u.owner, u.nextAttemptAt, u.error, u.nowMs],
  );
  return n === 1;
}

export function wakeWaiting(q: Runner, o: { route: Route; prefix: string; nowMs: number }): Promise<number> {
  return changes(
    q,
    `UPDATE deliveries SET next_attempt_at = $1, updated_at = $1
      WHERE state = 'queued' AND route = $2 AND next_attempt_at > $1 AND starts_with(last_error, $3)`,
    [o.nowMs, o.route, o.prefix],
  );
}

export async function renewLeases(q: Runner, o: LeaseTerms & { ids: readonly number[] }): Promise<number[]> {
  const renewed = await rows(
    q,
    `UPDATE deliveries SET lease_expires_at = $1, updated_at = $2
      WHERE id = ANY($3::bigint[]) AND state = 'in-flight' AND lease_owner = $4 RETURNING id`,
    [o.leaseExpiresAt, o.nowMs, idArray(o.ids), o.owner],
  );
  return renewed.map((r) => Number(r.id)).sort((a, b) => a - b);
}

export function releaseLeases(
  q: Runner,
  o: { ids: readonly number[]; owner: string; nowMs: number },
): Promise<number> {
  return changes(
    q,
    `UPDATE deliveries SET state = 'queued', next_attempt_at = $1,
      lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
    WHERE id = ANY($2::bigint[]) AND state = 'in-flight' AND lease_owner = $3`,
    [o.nowMs, idArray(o.ids), o.owner],
  );
}

/**
 * In-flight deliveries whose lease expired at `expiredBy` or whose owner starts with `ownerPrefix`
 * (all of them when neither is given), locked for the caller's transaction; rows another node is
 * recovering or completing right now are skipped.
 */
export async function lockInFlight(
  q: Runner,
  o: { expiredBy?: number; ownerPrefix?: string },
): Promise<InFlight[]> {
  const any = o.expiredBy === undefined && o.ownerPrefix === undefined;
  const found = await rows(
    q,
    `SELECT id, lease_owner AS "leaseOwner", lease_breaks AS "leaseBreaks" FROM deliveries
      WHERE state = 'in-flight'
        AND ($1 OR lease_expires_at <= $2::bigint OR starts_with(lease_owner, $3::text))
      ORDER BY id FOR UPDATE SKIP LOCKED`,
    [any, o.expiredBy ?? null, o.ownerPrefix ?? null],
  );
  return found.map((r) => withNumbers<InFlight>(r, ["id"]));
}

export function endBreakStreaks(q: Runner): Promise<number> {
  return changes(q, "UPDATE deliveries SET lease_breaks = 0 WHERE state = 'queued' AND lease_breaks > 0");
}

/**
 * Ends an abandoned lease, still held by the owner that was seen (`leaseOwner`): a lease renewed or
 * taken since by someone else is left alone.
 */
export async function breakLease(
  q: Runner,
  o: {
    id: number;
    leaseOwner: string;
    nowMs: number;
    state: "queued" | "broken";
    nextAttemptAt: number | null;
    error: string;
  },
): Promise<boolean> {
  const n = await changes(
    q,
    `UPDATE deliveries SET state = $2, next_attempt_at = $3,
      lease_owner = NULL, lease_expires_at = NULL, lease_breaks = lease_breaks + 1, last_error = $4,
      updated_at = $5
    WHERE id = $1 AND state = 'in-flight' AND lease_owner = $6`,
    [o.id, o.state, o.nextAttemptAt, o.error, o.nowMs, o.leaseOwner],
  );
  return n === 1;
}

const ACTIONS: Record<OperatorAction, string> = {
  retryNow: `UPDATE deliveries SET state = 'queued', next_attempt_at = $2,
      lease_breaks = 0, final_at = NULL, updated_at = $2
    WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'failed', 'broken') AND ${BODY_KEPT}`,
  cancel: `UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL,
      lease_owner = NULL, lease_expires_at = NULL, final_at = $2, updated_at = $2
    WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'in-flight', 'broken')`,
  requestImip: `UPDATE deliveries SET state = 'queued', route = 'imip', target = NULL,
      next_attempt_at = $2, fallback_at = NULL, lease_breaks = 0, final_at = NULL, updated_at = $2
    WHERE id = ANY($1::bigint[]) AND state IN ('queued', 'failed', 'broken') AND ${BODY_KEPT}`,
};

export function applyOperatorAction(
  q: Runner,
  o: { action: OperatorAction; ids: readonly number[]; nowMs: number },
): Promise<number> {
  return changes(q, ACTIONS[o.action], [idArray(o.ids), o.nowMs]);
}

export async function countDeliveriesByState(q: Runner): Promise<Record<DeliveryState, number>> {
  const counts = Object.fromEntries(DELIVERY_STATES.map((s) => [s, 0])) as Record<DeliveryState, number>;
  for (const r of await rows(q, "SELECT state, count(*)::int AS n FROM deliveries GROUP BY state"))
    counts[r.state as DeliveryState] = r.n as number;
  return counts;
}

export async function nextDueAt(q: Runner): Promise<number | undefined> {
  const [r] = await rows(q, "SELECT min(next_attempt_at) AS due FROM deliveries WHERE state = 'queued'");
  return r?.due === null || r?.due === undefined ? undefined : Number(r.due);
}

export async function deliveriesOfMessage(q: Runner, messageId: number): Promise<DeliveryRow[]> {
  return (
    await rows(q, `SELECT ${COLUMNS} FROM deliveries WHERE message_id = $1 ORDER BY id`, [messageId])
  ).map(deliveryRow);
}

export async function getDeliveryRow(q: Runner, id: number): Promise<DeliveryRow | undefined> {
  const [r] = await rows(q, `SELECT ${COLUMNS} FROM deliveries WHERE id = $1`, [id]);
  return r ? deliveryRow(r) : undefined;
}
