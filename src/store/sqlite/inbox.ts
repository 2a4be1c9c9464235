/**
 * isched's own inbox (the `store` delivery target): the messages delivered to a recipient that way,
 * newest first, with their iCalendar body, for the API.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export interface InboxItem {
  uuid: string;
  receivedAt: number;
  originator: string;
  method: string;
  component: string;
  uid: string | null;
  summary: string | null;
  dkimResult: string;
  dkimDomain: string | null;
  recipient: string;
  requestStatus: string | null;
  body: string;
}

const statements = perDatabase((db) => ({
  list: db.query<InboxItem & { messageId: number }, { recipient: string; beforeId: number; limit: number }>(`
    SELECT m.id AS messageId, m.uuid, m.received_at AS receivedAt, m.originator, m.method, m.component, m.uid,
      m.summary, m.dkim_result AS dkimResult, m.dkim_domain AS dkimDomain, d.recipient,
      d.request_status AS requestStatus, CAST(m.body AS TEXT) AS body
    FROM deliveries d JOIN messages m ON m.id = d.message_id
    WHERE d.recipient = $recipient COLLATE NOCASE AND d.target = 'store' AND d.state = 'delivered' AND d.message_id < $beforeId
    ORDER BY d.message_id DESC LIMIT $limit`),
}));

export function inbox(
  db: Database,
  o: { recipient: string; limit: number; beforeId?: number },
): { items: InboxItem[]; nextBeforeId?: number } {
  const rows = statements(db).list.all({
    recipient: o.recipient,
    beforeId: o.beforeId ?? Number.MAX_SAFE_INTEGER,
    limit: o.limit + 1,
  });
  const more = rows.length > o.limit;
  const page = rows.slice(0, o.limit);
  return {
    items: page.map(({ messageId: _, ...item }) => item),
    nextBeforeId: more ? page[page.length - 1]!.messageId : undefined,
  };
}
