/**
 * The refusal log of a running server: refused requests are written in batches. The first refusal
 * after a quiet spell is written at once; those that follow within windowMs wait and go in one
 * transaction at the end of the window. A flood of refusals then costs a few commits a second, not
 * one each: each commit adds every page it touches to the WAL, and at a few hundred refusals a
 * second that grew the WAL by megabytes between two checkpoints, for a few kilobytes of rows.
 * What waits is bounded (maxPending rows, metadata only); a crash loses at most one window of the
 * log, never a message.
 *
 * When the database cannot be written (a full disk) the refusal is still answered as it should be:
 * its row waits with the others and is written at a later window, once there is room; past
 * maxPending the oldest waiting rows are dropped. The first failure of a spell is reported.
 */
import { storageFailure } from "../store/errors.ts";
import { DEFAULT_REFUSAL_LIMITS } from "../store/refusal-limits.ts";
import type { NewRefusal, RefusalLimits, RefusalRow, RefusalTotals, Store } from "../store/store.ts";

export interface RefusalLogOptions {
  limits?: RefusalLimits;
  nowMs?: () => number;
  /** Default 250 ms. */
  windowMs?: number;
  /** Rows that may wait; one more writes them at once. Default 500. */
  maxPending?: number;
  /** Told when the log cannot be written (once per spell of failures), with the reason. */
  onWriteError?: (reason: string, waiting: number) => void;
}

export class RefusalLog {
  readonly #store: Store;
  readonly #limits: RefusalLimits;
  readonly #nowMs: () => number;
  readonly #windowMs: number;
  readonly #maxPending: number;
  #pending: RefusalRow[] = [];
  #window: ReturnType<typeof setTimeout> | undefined;
  #totals: RefusalTotals | undefined;
  readonly #onWriteError: ((reason: string, waiting: number) => void) | undefined;
  #failing = false;
  /** The batch being written: the next one waits for it (the totals are counted batch by batch). */
  #writing: Promise<void> = Promise.resolve();

  constructor(store: Store, o: RefusalLogOptions = {}) {
    this.#store = store;
    this.#limits = o.limits ?? DEFAULT_REFUSAL_LIMITS;
    this.#nowMs = o.nowMs ?? Date.now;
    this.#windowMs = o.windowMs ?? 250;
    this.#maxPending = o.maxPending ?? 500;
    this.#onWriteError = o.onWriteError;
  }

  /** Logs a refusal (now, or at the end of the current window); returns its uuid. */
  record(r: NewRefusal): string {
    const receivedAt = r.receivedAt ?? this.#nowMs();
    const row = { ...r, receivedAt, uuid: r.uuid ?? Bun.randomUUIDv7("hex", receivedAt) };
    if (this.#window === undefined) {
      void this.#write([row]);
      this.#openWindow();
    } else {
      this.#pending.push(row);
      if (this.#pending.length >= this.#maxPending) void this.flush();
    }
    return row.uuid;
  }

  /** Writes what waits; resolves when it is written (or kept for the next window). */
  flush(): Promise<void> {
    const rows = this.#pending;
    this.#pending = [];
    return rows.length > 0 ? this.#write(rows) : this.#writing;
  }

  /** Writes what waits and stops the window (shutdown). */
  /**
   * Forgets the totals it keeps between writes: retention (store/sqlite/retention.ts) deleted refusals
   * behind its back, and the next write counts them again.
   */
  forget(): void {
    this.#totals = undefined;
  }

  close(): Promise<void> {
    clearTimeout(this.#window);
    this.#window = undefined;
    return this.flush();
  }

  #openWindow(): void {
    this.#window = setTimeout(() => {
      this.#window = undefined;
      if (this.#pending.length === 0) return;
      void this.flush();
      this.#openWindow();
    }, this.#windowMs);
  }

  #write(rows: readonly RefusalRow[]): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writeNow(rows));
    return this.#writing;
  }

  async #writeNow(rows: readonly RefusalRow[]): Promise<void> {
    try {
      // Read once; counted by hand from then on (one process owns the database).
      this.#totals ??= await this.#store.refusalTotals();
      this.#totals = await this.#store.insertRefusals({ rows, totals: this.#totals, limits: this.#limits });
      this.#failing = false;
    } catch (e) {
      // Not the storage (a bug): told once like a storage failure, and these rows are dropped, since
      // writing them again would fail again.
      const reason = storageFailure(e);
      if (reason === undefined) {
        this.#onWriteError?.((e as Error)?.message ?? String(e), this.#pending.length);
        return;
      }
      // Kept for the next window; the oldest go first when too many wait.
      this.#pending = [...rows, ...this.#pending].slice(-this.#maxPending);
      if (!this.#failing) this.#onWriteError?.(reason, this.#pending.length);
      this.#failing = true;
    }
  }
}
