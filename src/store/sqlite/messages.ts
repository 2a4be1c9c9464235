/**
 * The messages table: one row per message accepted through any intake, with the body and headers
 * as received and, for inbound messages, the answer we gave (so a replay gets the same answer).
 * Rows are camelCase here and snake_case in SQL; the statements are prepared once per connection.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";
import type { ItipKeyClaims } from "./itip-keys.ts";
import { claimReplayKey, type ReplayClaim } from "./replays.ts";

export type Direction = "inbound" | "outbound";
export type Intake = "ischedule" | "local" | "api" | "smtp" | "cli";
export type DkimResult = "pass" | "fail" | "none" | "trusted";
/** Header fields in wire order. */
export type HeaderList = readonly (readonly [name: string, value: string])[];

export interface NewMessage {
  /** Default: a fresh UUIDv7 (time-ordered, which keeps the unique index compact). */
  uuid?: string;
  /** Default: now. */
  receivedAt?: number;
  direction: Direction;
  intake: Intake;
  peerAddress?: string;
  /** Inbound: the verified signing domain (or originator domain for trusted unsigned); outbound: none. */
  peerDomain?: string;
  /** iSchedule-Message-ID as received. */
  remoteMessageId?: string;
  originator: string;
  method: string;
  component: string;
  uid?: string;
  summary?: string;
  organizer?: string;
  contentType: string;
  /** A string is stored as its UTF-8 bytes. */
  body: Uint8Array | string;
  /** base64 sha256 of the body (DKIM bh=). */
  bodyHash?: string;
  /** As received, with secrets already redacted by the caller. */
  headers?: HeaderList;
  dkimResult?: DkimResult;
  dkimDomain?: string;
  dkimSelector?: string;
  dkimReason?: string;
  /** Which rule accepted the signing domain for the Originator (src/inbound/signer-alignment.ts). */
  signerRule?: string;
  responseStatus?: number;
  responseBody?: string;
  /** The replay key this message answers for (replays.ts); claimed in the same transaction. */
  replay?: ReplayClaim;
  /** Its recipients' copies of its iTIP revision (itip-keys.ts); claimed by the queue with its deliveries. */
  itipKeys?: ItipKeyClaims;
  /** Why the request was refused: a refusal keeps no body and never gets a delivery (refusals.ts). */
  refusal?: string;
  /** Bytes of the body as received, when the body itself is not kept. */
  bodySize?: number;
  /** The iTIP facts a sender checks against a receiver (src/outbound/message-facts.ts), as JSON. */
  sendFacts?: string;
}

/** One stored message as the delivery side reads it (the console's list is in message-search.ts). */
export interface MessageRow {
  id: number;
  uuid: string;
  receivedAt: number;
  direction: Direction;
  intake: Intake;
  peerAddress: string | null;
  peerDomain: string | null;
  originator: string;
  method: string;
  component: string;
  uid: string | null;
  summary: string | null;
  organizer: string | null;
  dkimResult: DkimResult;
  remoteMessageId: string | null;
  contentType: string;
  body: Uint8Array;
  bodyHash: string | null;
  headers: HeaderList | null;
  dkimDomain: string | null;
  dkimSelector: string | null;
  dkimReason: string | null;
  signerRule: string | null;
  responseStatus: number | null;
  responseBody: string | null;
  /** Why the request was refused at intake; null for a message that was accepted. */
  refusal: string | null;
  /** Bytes of the body as received (a refusal's body is not kept). */
  bodySize: number | null;
  /** Copies of this message its peer sent again (under new message ids), answered from this one. */
  resends: number;
  lastResentAt: number | null;
  /** The iTIP facts kept at intake for sending (NewMessage.sendFacts); null when none were. */
  sendFacts: string | null;
}

/** The columns that come from the iTIP message itself. */
export type ItipColumns = "originator" | "method" | "component" | "uid" | "summary" | "organizer";

/** What every view of a message shows of it (the log's list, the message's page). */
export type MessageFacts = Pick<
  MessageRow,
  "id" | "uuid" | "receivedAt" | "direction" | "intake" | "peerDomain" | ItipColumns
>;

const ROW_COLUMNS = `m.id, m.uuid, m.received_at AS receivedAt, m.direction, m.intake,
  m.peer_address AS peerAddress, m.peer_domain AS peerDomain, m.originator, m.method, m.component,
  m.uid, m.summary, m.organizer, m.dkim_result AS dkimResult, m.remote_message_id AS remoteMessageId,
  m.content_type AS contentType, m.body, m.body_hash AS bodyHash, m.headers, m.dkim_domain AS dkimDomain, m.dkim_selector AS dkimSelector,
  m.dkim_reason AS dkimReason, m.signer_rule AS signerRule, m.response_status AS responseStatus, m.response_body AS responseBody,
  m.refusal, coalesce(m.body_size, length(m.body)) AS bodySize, m.resends, m.last_resent_at AS lastResentAt,
  m.send_facts AS sendFacts`;

type RawRow = Omit<MessageRow, "headers"> & { headers: string | null };
type Bindings = Record<string, string | number | Uint8Array | null>;

const statements = perDatabase((db) => ({
  insert: db.query<never, Bindings>(`INSERT INTO messages (uuid, received_at, direction, intake, peer_address,
      peer_domain, remote_message_id, originator, method, component, uid, summary, organizer, content_type, body,
      body_hash, headers, dkim_result, dkim_domain, dkim_selector, dkim_reason, signer_rule, response_status,
      response_body, refusal, body_size, send_facts)
    VALUES ($uuid, $receivedAt, $direction, $intake, $peerAddress, $peerDomain, $remoteMessageId, $originator,
      $method, $component, $uid, $summary, $organizer, $contentType, $body, $bodyHash, $headers, $dkimResult,
      $dkimDomain, $dkimSelector, $dkimReason, $signerRule, $responseStatus, $responseBody, $refusal, $bodySize,
      $sendFacts)`),
  byId: db.query<RawRow, { id: number }>(`SELECT ${ROW_COLUMNS} FROM messages m WHERE m.id = $id`),
  byUuid: db.query<RawRow, { uuid: string }>(`SELECT ${ROW_COLUMNS} FROM messages m WHERE m.uuid = $uuid`),
  response: db.query<never, { id: number; status: number; body: string | null }>(
    "UPDATE messages SET response_status = $status, response_body = $body WHERE id = $id",
  ),
}));

const encoder = new TextEncoder();

/**
 * Inserts one message row (and claims its replay key); the caller holds the transaction. Returns
 * its id. Throws ReplayConflictError when another message holds the replay key.
 */
export function insertMessage(db: Database, m: NewMessage & { uuid: string; receivedAt: number }): number {
  const result = statements(db).insert.run({
    uuid: m.uuid,
    receivedAt: m.receivedAt,
    direction: m.direction,
    intake: m.intake,
    peerAddress: m.peerAddress ?? null,
    peerDomain: m.peerDomain ?? null,
    remoteMessageId: m.remoteMessageId ?? null,
    originator: m.originator,
    method: m.method,
    component: m.component,
    uid: m.uid ?? null,
    summary: m.summary ?? null,
    organizer: m.organizer ?? null,
    contentType: m.contentType,
    body: typeof m.body === "string" ? encoder.encode(m.body) : m.body,
    bodyHash: m.bodyHash ?? null,
    headers: m.headers ? JSON.stringify(m.headers) : null,
    dkimResult: m.dkimResult ?? "none",
    dkimDomain: m.dkimDomain ?? null,
    dkimSelector: m.dkimSelector ?? null,
    dkimReason: m.dkimReason ?? null,
    signerRule: m.signerRule ?? null,
    responseStatus: m.responseStatus ?? null,
    responseBody: m.responseBody ?? null,
    refusal: m.refusal ?? null,
    bodySize: m.bodySize ?? null,
    sendFacts: m.sendFacts ?? null,
  });
  const id = Number(result.lastInsertRowid);
  if (m.replay) claimReplayKey(db, { ...m.replay, messageId: id, nowMs: m.receivedAt });
  return id;
}

export function getMessageRow(db: Database, idOrUuid: number | string): MessageRow | undefined {
  const s = statements(db);
  const raw = typeof idOrUuid === "number" ? s.byId.get({ id: idOrUuid }) : s.byUuid.get({ uuid: idOrUuid });
  return raw ? fromRaw(raw) : undefined;
}

/** Records what we answered for an inbound message. False when the message does not exist. */
export function recordResponse(
  db: Database,
  o: { messageId: number; status: number; body?: string },
): boolean {
  return (
    statements(db).response.run({ id: o.messageId, status: o.status, body: o.body ?? null }).changes === 1
  );
}

function fromRaw(raw: RawRow): MessageRow {
  return { ...raw, headers: raw.headers === null ? null : (JSON.parse(raw.headers) as HeaderList) };
}
