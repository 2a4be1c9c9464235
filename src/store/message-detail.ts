/**
 * A message's page as both backends assemble it: its deliveries, each with its attempts, from the
 * rows read in one snapshot (SQLite: a deferred transaction; PostgreSQL: REPEATABLE READ).
 */
import type { AttemptRow } from "./sqlite/attempts.ts";
import type { DeliveryRow } from "./sqlite/deliveries.ts";

/** Each delivery with its attempts, in the order given (attempts oldest first). */
export function withAttempts(
  deliveries: readonly DeliveryRow[],
  attempts: readonly AttemptRow[],
): (DeliveryRow & { attemptList: AttemptRow[] })[] {
  const byDelivery = new Map<number, AttemptRow[]>();
  for (const a of attempts) {
    const list = byDelivery.get(a.deliveryId);
    if (list) list.push(a);
    else byDelivery.set(a.deliveryId, [a]);
  }
  return deliveries.map((d) => ({ ...d, attemptList: byDelivery.get(d.id) ?? [] }));
}
