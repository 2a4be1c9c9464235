/**
 * The messages and attempts tables on PostgreSQL: the statements of src/store/sqlite/messages.ts and
 * attempts.ts. Bodies are bytea (a string body is stored as its UTF-8 bytes and read back as a
 * Uint8Array), headers JSON text, times int8 read back as numbers.
 */
import type { AttemptRow, HeaderList, MessageRow, NewAttempt, NewMessage } from "../store.ts";
import { bytes, changes, type Row, type Runner, rows, withNumbers } from "./_values.ts";
import { claimReplayKey } from "./key-claims.ts";

const ROW_COLUMNS = `m.id, m.uuid, m.received_at AS "receivedAt", m.direction, m.intake,
  m.peer_address AS "peerAddress", m.peer_domain AS "peerDomain", m.originator, m.method, m.component,
  m.uid, m.summary, m.organizer, m.dkim_result AS "dkimResult", m.remote_message_id AS "remoteMessageId",
  m.content_type AS "contentType", m.body, m.body_hash AS "bodyHash", m.headers, m.dkim_domain AS "dkimDomain",
  m.dkim_selector AS "dkimSelector", m.dkim_reason AS "dkimReason", m.signer_rule AS "signerRule",
  m.response_status AS "responseStatus", m.response_body AS "responseBody", m.refusal,
  coalesce(m.body_size, octet_length(m.body)) AS "bodySize", m.resends, m.last_resent_at AS "lastResentAt",
  m.send_facts AS "sendFacts"`;

const MESSAGE_INT8 = ["id", "receivedAt", "bodySize", "lastResentAt"] as const;

const encoder = new TextEncoder();

function messageRow(r: Row): MessageRow {
  const m = withNumbers<MessageRow & { headers: unknown }>(r, MESSAGE_INT8);
  const headers = typeof r.headers === "string" ? (JSON.parse(r.headers) as HeaderList) : null;
  return { ...m, body: bytes(r.body), headers };
}

/** Inserts one message row and claims its replay key, in the caller's transaction; its id. */
export async function insertMessage(
  q: Runner,
  m: NewMessage & { uuid: string; receivedAt: number },
): Promise<number> {
  const [r] = await rows(
    q,
    `INSERT INTO messages (uuid, received_at, direction, intake, peer_address, peer_domain, remote_message_id,
      originator, method, component, uid, summary, organizer, content_type, body, body_hash, headers,
      dkim_result, dkim_domain, dkim_selector, dkim_reason, signer_rule, response_status, response_body,
      refusal, body_size, send_facts)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
      $22, $23, $24, $25, $26, $27)
    RETURNING id`,
    [
      m.uuid,
      m.receivedAt,
      m.direction,
      m.intake,
      m.peerAddress ?? null,
      m.peerDomain ?? null,
      m.remoteMessageId ?? null,
      m.originator,
      m.method,
      m.component,
      m.uid ?? null,
      m.summary ?? null,
      m.organizer ?? null,
      m.contentType,
      typeof m.body === "string" ? encoder.encode(m.body) : m.body,
      m.bodyHash ?? null,
      m.headers ? JSON.stringify(m.headers) : null,
      m.dkimResult ?? "none",
      m.dkimDomain ?? null,
      m.dkimSelector ?? null,
      m.dkimReason ?? null,
      m.signerRule ?? null,
      m.responseStatus ?? null,
      m.responseBody ?? null,
      m.refusal ?? null,
      m.bodySize ?? null,
      m.sendFacts ?? null,
    ],
  );
  const id = Number(r!.id);
  if (m.replay) await claimReplayKey(q, { ...m.replay, messageId: id, nowMs: m.receivedAt });
  return id;
}

export async function getMessageRow(q: Runner, idOrUuid: number | string): Promise<MessageRow | undefined> {
  const [r] =
    typeof idOrUuid === "number"
      ? await rows(q, `SELECT ${ROW_COLUMNS} FROM messages m WHERE m.id = $1`, [idOrUuid])
      : await rows(q, `SELECT ${ROW_COLUMNS} FROM messages m WHERE m.uuid = $1`, [idOrUuid]);
  return r ? messageRow(r) : undefined;
}

export async function recordResponse(
  q: Runner,
  o: { messageId: number; status: number; body?: string },
): Promise<boolean> {
  const n = await changes(q, "UPDATE messages SET response_status = $2, response_body = $3 WHERE id = $1", [
    o.messageId,
    o.status,
    o.body ?? null,
  ]);
  return n === 1;
}

const ATTEMPT_COLUMNS = `a.id, a.delivery_id AS "deliveryId", a.started_at AS "startedAt",
  a.duration_ms AS "durationMs", a.route, a.target, a.http_status AS "httpStatus",
  a.request_status AS "requestStatus", a.outcome, a.error, a.tls, a.response`;

/** Records an attempt; false when the delivery no longer exists. */
export async function insertAttempt(q: Runner, deliveryId: number, a: NewAttempt): Promise<boolean> {
  const n = await changes(
    q,
    `INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, http_status, request_status,
      outcome, error, tls, response)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
    WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $1)`,
    [
      deliveryId,
      a.startedAt,
      a.durationMs,
      a.route,
      a.target ?? null,
      a.httpStatus ?? null,
      a.requestStatus ?? null,
      a.outcome,
      a.error ?? null,
      a.tls ?? null,
      a.response ?? null,
    ],
  );
  return n === 1;
}

/** Every attempt for any delivery of the message, oldest first. */
export async function attemptsOfMessage(q: Runner, messageId: number): Promise<AttemptRow[]> {
  const found = await rows(
    q,
    `SELECT ${ATTEMPT_COLUMNS} FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
      WHERE d.message_id = $1 ORDER BY a.id`,
    [messageId],
  );
  return found.map((r) => withNumbers<AttemptRow>(r, ["id", "deliveryId", "startedAt"]));
}
