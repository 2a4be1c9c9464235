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
 * Bun.SQL's own codes for a PostgreSQL connection that could not be made or was lost (the server
 * down, restarting, unreachable, or the connection timed out): the query never reached a server
 * that could answer it.
 */
const POSTGRES_CONNECTION_CODES =
  /^ERR_POSTGRES_(CONNECTION_(CLOSED|REFUSED|FAILED|TIMEOUT)|IDLE_TIMEOUT|LIFETIME_TIMEOUT)$/;

/**
 * SQLSTATEs a PostgreSQL server answers when it, not the statement, is the trouble
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html): class 08 connection exceptions,
 * class 53 insufficient resources (disk full, out of memory, too many connections), class 58 system
 * errors (I/O), 57P01-57P05 a server shutting down, crashed, starting up or ending an idle session,
 * and 25006 a read-only transaction (a standby, as after a failover before promotion). Each may pass
 * without anyone changing the request.
 */
const POSTGRES_UNAVAILABLE_STATES = /^(08...|53...|58...|57P0[1-5]|25006)$/;

/**
 * What went wrong, when `e` says the store is unavailable rather than that the code has a bug: a
 * storage failure of SQLite ("database or disk is full"), or a PostgreSQL server that cannot be
 * reached or cannot take the statement now; undefined otherwise. The one place that tells them
 * apart for both backends: callers answer it as a temporary failure (503 and Retry-After, SMTP 451
 * 4.3.0), never as a 500, and the dispatcher waits and tries again.
 */
export function storageFailure(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const { code, errno } = e as Error & { code?: unknown; errno?: unknown };
  if (typeof code === "string" && (STORAGE_CODES.test(code) || POSTGRES_CONNECTION_CODES.test(code)))
    return e.message;
  // Server errors (code ERR_POSTGRES_SERVER_ERROR) carry the SQLSTATE as a string errno; SQLite's is a number.
  if (typeof errno === "string" && POSTGRES_UNAVAILABLE_STATES.test(errno)) return e.message;
  return undefined;
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
