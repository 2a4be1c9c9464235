/**
 * The one error type the store throws for conditions an operator must fix: a database that cannot be
 * opened, that belongs to another program or a newer isched, or that another isched process holds.
 * Anything else (a constraint violation, a full disk mid-transaction) is a bug or an I/O failure and
 * surfaces as bun:sqlite's own SQLiteError.
 */
export class StoreError extends Error {
  override readonly name = "StoreError";
}

/**
 * SQLite result codes that say the storage itself failed (https://sqlite.org/rescode.html): the
 * disk is full (SQLITE_FULL), an I/O error (SQLITE_IOERR_*), a file system gone read-only, a file
 * that cannot be opened, another program holding a lock past the busy timeout, no memory. None is
 * the client's doing, and each may pass once the operator makes room or the disk recovers.
 */
const STORAGE_CODES = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|NOMEM|PROTOCOL)(_|$)/;

/**
 * What went wrong, when `e` is a failure of the storage rather than a bug ("database or disk is
 * full"); undefined otherwise. Callers answer it as a temporary failure (503 and Retry-After, SMTP
 * 451), never as a 500, and log it.
 */
export function storageFailure(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as Error & { code?: unknown }).code;
  return typeof code === "string" && STORAGE_CODES.test(code) ? e.message : undefined;
}

export interface ReplayClaim {
  key: string;
  /** When the key stops answering for its message (ms). */
  expiresAt: number;
}

/** A claim on a key another message holds: the caller's transaction is rolled back. */
export class ReplayConflictError extends Error {
  override readonly name = "ReplayConflictError";
  constructor(readonly key: string) {
    super("another message holds this replay key");
  }
}

export interface ItipKeyClaims {
  /** One per recipient whose copy is claimed; recipients without one are not deduplicated. */
  readonly keys: readonly { readonly recipient: string; readonly key: string }[];
  /** When the keys stop answering for their message (ms). */
  readonly expiresAt: number;
}

/**
 * Every recipient claimed is held by earlier messages: the whole request is a copy sent again. The
 * caller's transaction is rolled back (nothing of the copy is stored); `held` maps each recipient to
 * the message that holds its copy.
 */
export class ItipCopyError extends Error {
  override readonly name = "ItipCopyError";
  constructor(readonly held: ReadonlyMap<string, number>) {
    super("every recipient's copy of this iTIP revision is held by an earlier message");
  }
}
