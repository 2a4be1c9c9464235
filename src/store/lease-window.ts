/**
 * How both backends split a lease's window of due deliveries (Store.leaseFitting): in due order, the
 * first `limit` that `fits` accepts are chosen; the rest (refused, or beyond the limit) stay queued.
 */

/**
 * Generic rather than typed with DueRow and HeldInFlight: those are declared in sqlite/deliveries.ts,
 * which imports this (an import cycle otherwise).
 */
export function splitWindow<Row extends { id: number }, Held>(
  head: readonly Row[],
  o: { limit: number; heldElsewhere: Held; fits: (row: Row, heldElsewhere: Held) => boolean },
): { chosen: number[]; refused: number[] } {
  const chosen: number[] = [];
  const refused: number[] = [];
  for (const row of head) {
    if (chosen.length < o.limit && o.fits(row, o.heldElsewhere)) chosen.push(row.id);
    else refused.push(row.id);
  }
  return { chosen, refused };
}
