/**
 * Live updates for the Messages page and the overview, as server-sent events. One poller per
 * console, running only while someone listens, asks the database once a second what changed
 * (new messages, deliveries whose updated_at moved: console-stats.ts), so changes made by the
 * dispatcher, the endpoint, an operator action or another tool all show up without wiring into each.
 * Each subscriber then gets the changed messages that match its own filter, and the queue counts
 * when they change.
 */
import type { ChangeCursor, LogMessageSummary, MessageFilter, Store } from "../store/store.ts";
import { API_HEADERS } from "./http.ts";

export type LiveEvent =
  | { type: "messages"; messages: LogMessageSummary[]; changed: number[] }
  | { type: "counts"; counts: Record<string, number> };

interface Subscriber {
  filter: MessageFilter;
  send(event: LiveEvent): void;
  /** False when the session behind it ended: the stream closes. */
  stillAllowed(): boolean | Promise<boolean>;
  close(): void;
}

export const MAX_SUBSCRIBERS = 64;

/** Counts at most `maxAgeMs` old: the live view and the overview ask often, the answer moves slowly. */
export function cachedCounts(
  count: () => Promise<Record<string, number>>,
  nowMs: () => number,
  maxAgeMs = 5000,
): () => Promise<Record<string, number>> {
  let last: { atMs: number; counts: Promise<Record<string, number>> } | undefined;
  return () => {
    const now = nowMs();
    if (!last || now - last.atMs >= maxAgeMs) {
      const counts = count();
      last = { atMs: now, counts };
      // A failed count is not kept: the next caller asks again.
      counts.catch(() => {
        if (last?.counts === counts) last = undefined;
      });
    }
    return last.counts;
  };
}
const HEARTBEAT_MS = 15_000;

export class LiveFeed {
  readonly #store: Store;
  readonly #counts: () => Promise<Record<string, number>>;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #subscribers = new Set<Subscriber>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #cursor: Promise<ChangeCursor> | undefined;
  /** The tick in progress: ticks never overlap (each advances the cursor). */
  #ticking: Promise<void> | undefined;
  #lastCounts = "";

  constructor(o: {
    store: Store;
    /** The queue's counts by state (cached: counting a million deliveries is not free). */
    counts: () => Promise<Record<string, number>>;
    nowMs: () => number;
    intervalMs?: number;
  }) {
    this.#store = o.store;
    this.#counts = o.counts;
    this.#now = o.nowMs;
    this.#intervalMs = o.intervalMs ?? 1000;
  }

  get size(): number {
    return this.#subscribers.size;
  }

  subscribe(s: Subscriber): () => void {
    this.#subscribers.add(s);
    if (!this.#timer) {
      this.#cursor = this.#store.changeCursor(this.#now());
      this.#cursor.catch(() => {});
      this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    }
    return () => {
      this.#subscribers.delete(s);
      if (this.#subscribers.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** One poll; public so tests need not wait for the timer. A tick asked for during one joins it. */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (!this.#cursor) return;
    let ids: number[];
    let counts: string;
    try {
      const cursor = await this.#cursor;
      ids = await this.#store.changedMessages(cursor, { nowMs: this.#now(), overlapMs: 2000 });
      counts = JSON.stringify(await this.#counts());
    } catch {
      // The database is closing (shutdown): the streams end with the server.
      return;
    }
    const countsChanged = counts !== this.#lastCounts;
    this.#lastCounts = counts;
    for (const s of [...this.#subscribers]) {
      try {
        if (!(await s.stillAllowed())) {
          s.close();
          continue;
        }
        if (ids.length > 0)
          s.send({ type: "messages", messages: await this.#store.summariesOf(ids, s.filter), changed: ids });
      } catch {
        return;
      }
      if (countsChanged) s.send({ type: "counts", counts: JSON.parse(counts) });
    }
  }

  stop(): void {
    for (const s of [...this.#subscribers]) s.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A text/event-stream answer that lasts until the client goes, the session ends or the server stops. */
  stream(o: {
    filter: MessageFilter;
    signal: AbortSignal;
    stillAllowed: () => boolean | Promise<boolean>;
  }): Response {
    const encoder = new TextEncoder();
    let unsubscribe = () => {};
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    let closed = false;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const write = (text: string) => {
          if (closed) return;
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            close();
          }
        };
        const close = () => {
          if (closed) return;
          closed = true;
          unsubscribe();
          clearInterval(heartbeat);
          try {
            controller.close();
          } catch {
            // Already closed by the client going away.
          }
        };
        unsubscribe = this.subscribe({
          filter: o.filter,
          send: (e) => write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`),
          stillAllowed: o.stillAllowed,
          close,
        });
        o.signal.addEventListener("abort", close);
        // A comment line now and then keeps proxies from closing an idle stream.
        heartbeat = setInterval(() => write(": keep-alive\n\n"), HEARTBEAT_MS);
        write(`retry: 3000\nevent: ready\ndata: {}\n\n`);
        // The counts are a promise: sent when they are read (a failed count waits for the poller's next).
        this.#counts().then(
          (counts) => write(`event: counts\ndata: ${JSON.stringify({ type: "counts", counts })}\n\n`),
          () => {},
        );
      },
      cancel: () => {
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
      },
    });
    return new Response(body, {
      headers: {
        ...API_HEADERS,
        "Content-Type": "text/event-stream; charset=utf-8",
        "X-Accel-Buffering": "no",
      },
    });
  }
}
