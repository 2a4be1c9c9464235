/**
 * The one error type the store throws for conditions an operator must fix: a database that cannot be
 * opened, that belongs to another program or a newer isched, or that another isched process holds.
 * Anything else (a constraint violation, a full disk mid-transaction) is a bug or an I/O failure and
 * surfaces as bun:sqlite's own SQLiteError.
 */
export class StoreError extends Error {
  override readonly name = "StoreError";
}
