/**
 * The attempts table: one row per delivery attempt, what was tried and what came back. It is the
 * history the console shows; the delivery row only keeps the latest status.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";
import type { Route } from "./deliveries.ts";

export type AttemptOutcome = "delivered" | "pending" | "temporary" | "permanent" | "sent-imip" | "cancelled";

export interface NewAttempt {
  startedAt: number;
  durationMs: number;
  route: Route;
  target?: string;
  httpStatus?: number;
  /** The per-recipient iSchedule status, e.g. `2.0;Success`. */
  requestStatus?: string;
  outcome: AttemptOutcome;
  error?: string;
  /** TLS version and cipher, or a summary of the peer certificate. */
  tls?: string;
  /** The raw response, capped at 16 KiB by the caller. */
  response?: string;
}

export interface AttemptRow {
  id: number;
  deliveryId: number;
  startedAt: number;
  durationMs: number;
  route: Route;
  target: string | null;
  httpStatus: number | null;
  requestStatus: string | null;
  outcome: AttemptOutcome;
  error: string | null;
  tls: string | null;
  response: string | null;
}

const COLUMNS = `a.id, a.delivery_id AS deliveryId, a.started_at AS startedAt, a.duration_ms AS durationMs, a.route,
  a.target, a.http_status AS httpStatus, a.request_status AS requestStatus, a.outcome, a.error, a.tls, a.response`;

type Bindings = Record<string, string | number | null>;

const statements = perDatabase((db) => ({
  // Conditional, so that recording an attempt for a delivery deleted meanwhile (its message purged)
  // is a no-op instead of a foreign-key error.
  insert: db.query<
    never,
    Bindings
  >(`INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target,
      http_status, request_status, outcome, error, tls, response)
    SELECT $deliveryId, $startedAt, $durationMs, $route, $target, $httpStatus, $requestStatus, $outcome, $error,
      $tls, $response
    WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $deliveryId)`),
  ofMessage: db.query<AttemptRow, { messageId: number }>(`SELECT ${COLUMNS} FROM attempts a
    JOIN deliveries d ON d.id = a.delivery_id WHERE d.message_id = $messageId ORDER BY a.id`),
}));

/** Records an attempt; false when the delivery no longer exists. */
export function insertAttempt(db: Database, deliveryId: number, a: NewAttempt): boolean {
  const result = statements(db).insert.run({
    deliveryId,
    startedAt: a.startedAt,
    durationMs: a.durationMs,
    route: a.route,
    target: a.target ?? null,
    httpStatus: a.httpStatus ?? null,
    requestStatus: a.requestStatus ?? null,
    outcome: a.outcome,
    error: a.error ?? null,
    tls: a.tls ?? null,
    response: a.response ?? null,
  });
  return result.changes === 1;
}

/** Every attempt for any delivery of the message, oldest first. */
export function attemptsOfMessage(db: Database, messageId: number): AttemptRow[] {
  return statements(db).ofMessage.all({ messageId });
}
