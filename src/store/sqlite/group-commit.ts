/**
 * Group commit: writes that arrive together share one write transaction, and each caller is
 * answered only once that transaction has committed. In WAL mode a commit writes every B-tree page
 * the transaction touched as a whole 4 KB frame, however little of it changed, so an accepted
 * message (its row, its delivery, its attempt, their index entries) costs about 19 frames when it
 * commits alone; sixteen messages committed together touch mostly the same pages and cost about
 * three frames each (docs/perf-notes.md, "What each index and setting costs").
 *
 * A batch closes at the end of the event loop's current turn (setImmediate), or as soon as it holds
 * `maxWrites` writes or `maxBytes` of their declared size. Nothing waits on a timer: one request
 * alone is committed as soon as its turn ends, and under load the requests that reached the store
 * while the previous batch was being written (the loop is blocked meanwhile) make the next batch, so
 * the batch grows with the load by itself.
 *
 * Each write runs in its own SAVEPOINT inside the batch's transaction: one that throws (a replay key
 * held, every iTIP copy held, a constraint) is rolled back to its savepoint and rejected alone; the
 * others commit. Writes run in arrival order, so of two that claim one key the first takes it and the
 * second sees it held, exactly as two transactions in a row would. When the transaction itself fails
 * (BEGIN, COMMIT, or an error after which SQLite rolled the whole transaction back, such as a full
 * disk), nothing of the batch is stored and every write in it is rejected with that error.
 *
 * While the checkpointer starts the WAL over (checkpointer.ts), writes are held: they queue here and
 * commit together when released, instead of the thread that answers requests sleeping in SQLite's
 * busy handler (1, 2, 5, 10, 15 ms steps) until the checkpoint lets go of the writer lock.
 */
import type { Database } from "bun:sqlite";

export interface GroupCommitOptions {
  /** Writes per transaction at most. */
  maxWrites?: number;
  /** Declared bytes per transaction at most (a batch closes once it reaches them). */
  maxBytes?: number;
}

export const DEFAULT_MAX_WRITES = 64;
export const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

interface PendingWrite {
  readonly work: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  readonly #db: Database;
  readonly #maxWrites: number;
  readonly #maxBytes: number;
  #pending: PendingWrite[] = [];
  #pendingBytes = 0;
  #scheduled = false;
  /** Writes are held (hold()): they wait for release(). */
  #held = false;
  /** Runs one write: in a SAVEPOINT when called inside the batch's transaction. */
  readonly #one: (work: () => unknown) => unknown;
  readonly #batch: { immediate: (batch: readonly PendingWrite[]) => Outcome[] };

  constructor(db: Database, o: GroupCommitOptions = {}) {
    this.#db = db;
    this.#maxWrites = Math.max(1, o.maxWrites ?? DEFAULT_MAX_WRITES);
    this.#maxBytes = Math.max(1, o.maxBytes ?? DEFAULT_MAX_BYTES);
    this.#one = db.transaction((work: () => unknown) => work());
    this.#batch = db.transaction((batch: readonly PendingWrite[]): Outcome[] =>
      batch.map((w): Outcome => {
        try {
          return { ok: true, value: this.#one(w.work) };
        } catch (error) {
          // SQLite rolls the whole transaction back on some errors (SQLITE_FULL, SQLITE_IOERR):
          // then nothing of the batch can commit.
          if (!db.inTransaction) throw error;
          return { ok: false, error };
        }
      }),
    );
  }

  /**
   * Runs `work` (synchronous statements) in the next batch's transaction; resolves with its result
   * once that transaction has committed, rejects with what it threw (or with the transaction's error).
   */
  run<T>(work: () => T, bytes = 0): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
    this.#pendingBytes += bytes;
    if (this.#pending.length >= this.#maxWrites || this.#pendingBytes >= this.#maxBytes) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
    return promise;
  }

  /**
   * Holds writes: from now on they wait, uncommitted and unanswered, until release(). For the
   * moment the checkpointer holds SQLite's writer lock, so that this thread goes on answering
   * requests meanwhile instead of waiting for the lock.
   */
  hold(): void {
    this.#held = true;
  }

  /** Ends a hold: what waited commits now, together. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.flush();
  }

  /**
   * Commits what is waiting now, unless writes are held (close() releases and calls it, so nothing
   * waiting is dropped).
   */
  flush(): void {
    const batch = this.#pending;
    if (batch.length === 0 || this.#held) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    let outcomes: Outcome[];
    try {
      // One write alone needs no savepoint: its own transaction, as without group commit.
      outcomes =
        batch.length === 1
          ? [{ ok: true, value: this.#db.transaction(batch[0]!.work).immediate() }]
          : this.#batch.immediate(batch);
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    // In arrival order, so callers continue in the order their writes were made.
    batch.forEach((w, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) w.resolve(outcome.value);
      else w.reject(outcome.error);
    });
  }
}
