/**
 * What monitoring reads of the PostgreSQL store (src/store/sqlite/queue-facts.ts, health-probe.ts):
 * the queue's depth and oldest queued delivery from the partial indexes, a write that proves the
 * connection reaches a writable primary, and the database's size (PostgreSQL reuses free space by
 * itself, autovacuum, so none is reported as reusable).
 */
import type { QueueFacts } from "../store.ts";
import { type Runner, rows } from "./_values.ts";
import { setSetting } from "./settings.ts";

/** The setting the probe writes, the same as SQLite's. */
const PROBE_SETTING = "health.probed-at";

export async function queueFacts(q: Runner): Promise<QueueFacts> {
  const [r] = await rows(
    q,
    `SELECT count(*) FILTER (WHERE state IN ('queued', 'in-flight'))::int AS depth,
      min(created_at) FILTER (WHERE state = 'queued') AS oldest
    FROM deliveries WHERE state IN ('queued', 'in-flight')`,
  );
  return { depth: r!.depth as number, oldestCreatedAtMs: r!.oldest === null ? undefined : Number(r!.oldest) };
}

export function probeWrite(q: Runner, nowMs: number): Promise<void> {
  return setSetting(q, PROBE_SETTING, String(nowMs));
}

export async function databaseSpace(q: Runner): Promise<{ bytes: number; freeBytes: number }> {
  const [r] = await rows(q, "SELECT pg_database_size(current_database()) AS bytes");
  return { bytes: Number(r!.bytes), freeBytes: 0 };
}
