/**
 * The refusal log of a running server: refused requests are written in batches. The first refusal
 * after a quiet spell is written at once; those that follow within windowMs wait and go in one
 * transaction at the end of the window. A flood of refusals then costs a few commits a second, not
 * one each: each commit adds every page it touches to the WAL, and at a few hundred refusals a
 * second that grew the WAL by megabytes between two checkpoints, for a few kilobytes of rows.
 * What waits is bounded (maxPending rows, metadata only); a crash loses at most one window of the
 * log, never a message.
 */
import type { Database } from "bun:sqlite";
import {
  DEFAULT_REFUSAL_LIMITS,
  insertRefusals,
  type NewRefusal,
  type RefusalLimits,
  type RefusalRow,
  type RefusalTotals,
  refusalTotals,
} from "../store/refusals.ts";

export interface RefusalLogOptions {
  limits?: RefusalLimits;
  nowMs?: () => number;
  /** Default 250 ms. */
  windowMs?: number;
  /** Rows that may wait; one more writes them at once. Default 500. */
  maxPending?: number;
}

export class RefusalLog {
  readonly #db: Database;
  readonly #limits: RefusalLimits;
  readonly #nowMs: () => number;
  readonly #windowMs: number;
  readonly #maxPending: number;
  #pending: RefusalRow[] = [];
  #window: ReturnType<typeof setTimeout> | undefined;
  #totals: RefusalTotals | undefined;

  constructor(db: Database, o: RefusalLogOptions = {}) {
    this.#db = db;
    this.#limits = o.limits ?? DEFAULT_REFUSAL_LIMITS;
    this.#nowMs = o.nowMs ?? Date.now;
    this.#windowMs = o.windowMs ?? 250;
    this.#maxPending = o.maxPending ?? 500;
  }

  /** Logs a refusal (now, or at the end of the current window); returns its uuid. */
  record(r: NewRefusal): string {
    const receivedAt = r.receivedAt ?? this.#nowMs();
    const row = { ...r, receivedAt, uuid: r.uuid ?? Bun.randomUUIDv7("hex", receivedAt) };
    if (this.#window === undefined) {
      this.#write([row]);
      this.#openWindow();
    } else {
      this.#pending.push(row);
      if (this.#pending.length >= this.#maxPending) this.flush();
    }
    return row.uuid;
  }

  /** Writes what waits. */
  flush(): void {
    const rows = this.#pending;
    this.#pending = [];
    if (rows.length > 0) this.#write(rows);
  }

  /** Writes what waits and stops the window (shutdown). */
  close(): void {
    clearTimeout(this.#window);
    this.#window = undefined;
    this.flush();
  }

  #openWindow(): void {
    this.#window = setTimeout(() => {
      this.#window = undefined;
      if (this.#pending.length === 0) return;
      this.flush();
      this.#openWindow();
    }, this.#windowMs);
  }

  #write(rows: readonly RefusalRow[]): void {
    // Read once; counted by hand from then on (one process owns the database).
    this.#totals ??= refusalTotals(this.#db);
    this.#totals = insertRefusals(this.#db, { rows, totals: this.#totals, limits: this.#limits });
  }
}
