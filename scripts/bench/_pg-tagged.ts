/**
 * The benchmark's statements for the two drivers with tagged-template clients (Bun.SQL and
 * postgres): their query, transaction and LISTEN/NOTIFY calls have the same shape, so one adapter
 * serves both; each driver's file only makes the client.
 */
import type { AcceptRow, BenchDriver, Unlisten } from "./_pg-driver.ts";

type Row = Record<string, unknown>;
export type Tag = (strings: TemplateStringsArray, ...values: unknown[]) => PromiseLike<Row[]>;

/** What both clients offer, as the adapter uses it. */
export interface TaggedClient extends Tag {
  begin<T>(fn: (tx: Tag) => Promise<T>): Promise<T>;
  unsafe(sql: string): PromiseLike<unknown>;
  listen(
    channel: string,
    onPayload: (p: string) => void,
    onListen?: () => void,
  ): Promise<{ unlisten(): Promise<void> }>;
  notify(channel: string, payload: string): PromiseLike<unknown>;
}

export function taggedDriver(name: string, sql: TaggedClient, close: () => Promise<void>): BenchDriver {
  const insertMessage = (
    q: Tag,
    r: AcceptRow,
  ) => q`INSERT INTO messages (uuid, received_at, direction, intake,
      peer_domain, remote_message_id, originator, method, component, uid, content_type, body, body_hash, dkim_result)
    VALUES (${r.uuid}, ${r.nowMs}, 'inbound', 'ischedule', ${r.peerDomain}, ${r.remoteMessageId}, ${r.originator},
      'REQUEST', 'VEVENT', ${r.remoteMessageId}, 'text/calendar; charset=utf-8; method=REQUEST; component=VEVENT',
      ${r.body}, ${r.bodyHash}, 'pass')
    RETURNING id`;
  return {
    name,
    async exec(text) {
      await sql.unsafe(text);
    },
    accept: (r) =>
      sql.begin(async (tx) => {
        const [m] = await insertMessage(tx, r);
        const [d] =
          await tx`INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts,
            request_status, created_at, updated_at, final_at)
          VALUES (${m!.id}, ${r.recipient}, 'example.com', 'local', 'store', 'delivered', 1, '2.0;Success',
            ${r.nowMs}, ${r.nowMs}, ${r.nowMs})
          RETURNING id`;
        await tx`INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, request_status, outcome)
          VALUES (${d!.id}, ${r.nowMs}, 0, 'local', 'store', '2.0;Success', 'delivered')`;
        return Number(m!.id);
      }),
    async acceptOneStatement(r) {
      const [row] =
        await sql`WITH m AS (INSERT INTO messages (uuid, received_at, direction, intake, peer_domain,
            remote_message_id, originator, method, component, uid, content_type, body, body_hash, dkim_result)
          VALUES (${r.uuid}, ${r.nowMs}, 'inbound', 'ischedule', ${r.peerDomain}, ${r.remoteMessageId},
            ${r.originator}, 'REQUEST', 'VEVENT', ${r.remoteMessageId},
            'text/calendar; charset=utf-8; method=REQUEST; component=VEVENT', ${r.body}, ${r.bodyHash}, 'pass')
          RETURNING id),
        d AS (INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts, request_status,
            created_at, updated_at, final_at)
          SELECT id, ${r.recipient}, 'example.com', 'local', 'store', 'delivered', 1, '2.0;Success', ${r.nowMs},
            ${r.nowMs}, ${r.nowMs} FROM m
          RETURNING id)
        INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, request_status, outcome)
          SELECT id, ${r.nowMs}, 0, 'local', 'store', '2.0;Success', 'delivered' FROM d
        RETURNING (SELECT id FROM m) AS id`;
      return Number(row!.id);
    },
    async lease(o) {
      const rows = await sql`UPDATE deliveries SET state = 'in-flight', lease_owner = ${o.owner},
          lease_expires_at = ${o.nowMs + o.leaseMs}, updated_at = ${o.nowMs}
        WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= ${o.nowMs}
          ORDER BY next_attempt_at, id LIMIT ${o.limit} FOR UPDATE SKIP LOCKED)
        RETURNING id`;
      return rows.map((r) => Number(r.id));
    },
    async bodyOf(id) {
      const [row] = await sql`SELECT body FROM messages WHERE id = ${id}`;
      return row?.body as Uint8Array | undefined;
    },
    async receivedAt(id) {
      const [row] = await sql`SELECT received_at FROM messages WHERE id = ${id}`;
      return row?.received_at;
    },
    async listen(channel, onPayload, onListen): Promise<Unlisten> {
      const sub = await sql.listen(channel, onPayload, onListen);
      return () => sub.unlisten();
    },
    async notify(channel, payload) {
      await sql.notify(channel, payload);
    },
    async ping() {
      await sql`SELECT 1`;
    },
    close,
  };
}
