/**
 * The refusal log on PostgreSQL (src/store/sqlite/refusals.ts): refused requests stored as
 * metadata-only message rows, pruned oldest first past the limits, in the same transaction.
 * Pruning takes a transaction-level advisory lock, so two nodes never prune at once (and delete
 * the same oldest rows twice over in their counts).
 *
 * Not yet fixed for several nodes (docs/store-interface.md, "Races and sharing"): the totals are
 * still the caller's, read once and counted in memory, as on SQLite, so each node counts only its
 * own refusals and the log may grow past its limits by up to the number of nodes.
 */
import { METADATA_BYTES, type RefusalRow, refusalMessage } from "../sqlite/refusals.ts";
import type { RefusalLimits, RefusalTotals } from "../store.ts";
import { changes, idArray, type Runner, rows } from "./_values.ts";
import { insertMessage } from "./messages.ts";

/** The advisory lock of refusal pruning ("refu"). */
const PRUNE_LOCK = 0x72656675;

export async function refusalTotals(q: Runner): Promise<RefusalTotals> {
  const [r] = await rows(
    q,
    `SELECT count(*)::int AS count, sum(${METADATA_BYTES}) AS bytes FROM messages WHERE refusal IS NOT NULL`,
  );
  return { count: r!.count as number, bytes: r!.bytes === null ? 0 : Number(r!.bytes) };
}

export function insertRefusals(
  sql: Runner,
  o: { rows: readonly RefusalRow[]; totals: RefusalTotals; limits: RefusalLimits },
): Promise<RefusalTotals> {
  return sql.begin(async (tx) => {
    const ids: number[] = [];
    for (const r of o.rows) ids.push(await insertMessage(tx, refusalMessage(r)));
    const [added] = await rows(
      tx,
      `SELECT sum(${METADATA_BYTES}) AS bytes FROM messages WHERE id = ANY($1::bigint[])`,
      [idArray(ids)],
    );
    const totals = { count: o.totals.count + ids.length, bytes: o.totals.bytes + Number(added?.bytes ?? 0) };
    const { maxCount, maxBytes } = o.limits;
    if (totals.count <= maxCount && totals.bytes <= maxBytes) return totals;
    await tx.unsafe("SELECT pg_advisory_xact_lock($1)", [PRUNE_LOCK]);
    return pruneRefusals(tx, {
      totals,
      count: Math.floor(maxCount * 0.9),
      bytes: Math.floor(maxBytes * 0.9),
    });
  });
}

/** Deletes the oldest refusals until the totals are within `count` and `bytes`; the totals after. */
async function pruneRefusals(
  tx: Runner,
  o: { totals: RefusalTotals; count: number; bytes: number },
): Promise<RefusalTotals> {
  let { count, bytes } = o.totals;
  while (count > o.count || bytes > o.bytes) {
    const batch = await rows(
      tx,
      `SELECT id, ${METADATA_BYTES} AS bytes FROM messages WHERE refusal IS NOT NULL ORDER BY id LIMIT $1`,
      [Math.max(16, count - o.count)],
    );
    if (batch.length === 0) return { count: 0, bytes: 0 };
    const ids: number[] = [];
    for (const row of batch) {
      if (count <= o.count && bytes <= o.bytes) break;
      ids.push(Number(row.id));
      count--;
      bytes -= Number(row.bytes);
    }
    await changes(tx, "DELETE FROM messages WHERE refusal IS NOT NULL AND id = ANY($1::bigint[])", [
      idArray(ids),
    ]);
  }
  return { count, bytes };
}
