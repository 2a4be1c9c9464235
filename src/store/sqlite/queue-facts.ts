/**
 * The queue as monitoring sees it (/metrics): how many deliveries are queued or in flight, and since
 * when the oldest queued one waits. Both read indexes only: the counts walk the two small partial
 * indexes of the queue's working set, and the oldest is found by one seek into deliveries_state,
 * which orders queued deliveries by message id, that is by age (message ids grow with time).
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export interface QueueFacts {
  /** Deliveries queued or in flight. */
  readonly depth: number;
  /** When the oldest queued delivery was made (ms); undefined when nothing is queued. */
  readonly oldestCreatedAtMs: number | undefined;
}

const statements = perDatabase((db) => ({
  depth: db.query<{ n: number }, []>(`SELECT
      (SELECT count(*) FROM deliveries INDEXED BY deliveries_due WHERE state = 'queued')
      + (SELECT count(*) FROM deliveries INDEXED BY deliveries_leases WHERE state = 'in-flight') AS n`),
  oldest: db.query<{ at: number | null }, []>(`SELECT min(d.created_at) AS at FROM deliveries d
    WHERE d.state = 'queued' AND d.message_id = (SELECT message_id FROM deliveries INDEXED BY deliveries_state
      WHERE state = 'queued' AND state <> 'delivered' ORDER BY message_id LIMIT 1)`),
}));

export function queueFacts(db: Database): QueueFacts {
  const s = statements(db);
  return db
    .transaction(() => ({
      depth: s.depth.get()!.n,
      oldestCreatedAtMs: s.oldest.get()?.at ?? undefined,
    }))
    .deferred();
}
