/**
 * The durable delivery queue.
 *
 * An accepted message is one `messages` row plus one `deliveries` row per recipient, written in one
 * transaction: after a crash a message is either there with all its deliveries or not there at all.
 * A delivery waits in 'queued' until its next_attempt_at. A worker leases a batch of due deliveries:
 * one UPDATE moves them to 'in-flight' and stamps lease_owner and lease_expires_at, so two workers,
 * or two connections, never get the same delivery. The worker makes the attempt and calls complete(),
 * which in one transaction records the attempt and moves the delivery to a final state or back to
 * 'queued' at the time the retry policy chose, provided the worker still holds the lease. A long
 * attempt renews its lease; a graceful shutdown releases its leases (back to 'queued', due now, no
 * attempt counted).
 *
 * A delivery that could not be tried because isched itself was not ready (its DKIM key not yet
 * visible in DNS) goes back to 'queued' with the reason and without an attempt counted or recorded:
 * it waited for us, not for the peer, and must not use up the peer's retries.
 *
 * A worker that dies mid-attempt leaves its deliveries 'in-flight'. recoverExpiredLeases() puts them
 * back in the queue, due a few seconds later (so a crash loop does not hammer a peer), and counts a
 * lease break. A delivery whose lease broke maxLeaseBreaks times in a row probably crashes the worker
 * itself: it goes to 'broken' and waits for an operator instead of looping. At start-up every
 * in-flight delivery belongs to a dead process (the data lock allows one process per database), so
 * start-up recovery takes them all, expired or not.
 *
 * "In a row" counts the process's deaths, not the delivery's leases. A poison delivery kills the
 * process each time it is attempted, so every death holds it. A process killed from outside (kill -9,
 * the OOM killer, a crash elsewhere) dies holding whatever happened to be in flight; a delivery caught
 * so is due again only seconds later, and the deaths that come meanwhile do not hold it. Counted by its
 * own leases instead, such a delivery gets parked once it has been caught often enough among any
 * number of deaths: under twenty kill -9 a second or so apart, a delivery to a slow peer in flight at
 * the 9th, 13th and 18th did. So start-up recovery first ends the breaks of every queued delivery (the
 * death it recovers from did not hold them). A poison delivery is still parked after maxLeaseBreaks
 * deaths; a clean restart or an unrelated crash in between gives it that many more. Expired leases
 * recovered while the process runs (workers that die one at a time) count per delivery.
 *
 * Crash safety rests on the store (src/store/store.ts): every change is one transaction, which the
 * database keeps through a process crash once committed (SQLite's WAL). The cost of a crash between a successful send and complete() is one
 * duplicate send, which the receiver drops by iSchedule-Message-ID.
 *
 * Reading (getMessage, messageRow, deliveriesOf, replayHolder, listMessages, countByState, nextDue)
 * never changes anything.
 */
import type {
  Completion,
  CompletionItem,
  DeliveryRow,
  DeliveryState,
  DeliveryToStore,
  DueRow,
  HeldInFlight,
  LeaseBreak,
  LeasedDelivery,
  LogPage,
  MessageDetail,
  MessageRow,
  NewAttempt,
  NewMessage,
  RecoveryReport,
  Route,
  Store,
} from "../store/store.ts";

export type { Completion, DeliveryWithAttempts, MessageDetail, RecoveryReport } from "../store/store.ts";

export interface DeliveryQueueOptions {
  /** The clock, in milliseconds. Default: Date.now. */
  nowMs?: () => number;
  /** Uniform in [0, 1). Default: Math.random. */
  random?: () => number;
  /** How long a lease lasts unless renewed. Default 5 minutes. */
  leaseMs?: number;
  /** Lease breaks in a row that make a delivery 'broken'. Default 3. */
  maxLeaseBreaks?: number;
  /** A recovered delivery is due after between this and twice this. Default 5 seconds. */
  recoveryDelayMs?: number;
}

export const DEFAULT_LEASE_MS = 5 * 60_000;
export const DEFAULT_MAX_LEASE_BREAKS = 3;
export const DEFAULT_RECOVERY_DELAY_MS = 5_000;

export interface NewDelivery {
  recipient: string;
  domain: string;
  route: Route;
  target?: string;
  /** 'delivered' or 'failed' record a recipient decided at intake (refused with 3.7, say). Default 'queued'. */
  state?: "queued" | "delivered" | "failed";
  requestStatus?: string;
  lastError?: string;
  /** Default: now. Ignored unless queued. */
  nextAttemptAt?: number;
  /** When to fall back to iMIP if not delivered by then. */
  fallbackAt?: number;
  /**
   * The attempt that decided a delivered/failed delivery at intake (a target that answers without
   * I/O, like the store): recorded in the same transaction, so the log is the same as a queued
   * delivery's and the request costs one commit.
   */
  attempt?: NewAttempt;
}

export interface Accepted {
  messageId: number;
  uuid: string;
  /** In the order of the deliveries given, without those of `copies`. */
  deliveryIds: number[];
  /**
   * Recipients whose copy of this iTIP revision an earlier message holds (message.itipKeys): they get
   * no delivery here, and map to that message's id. Empty without itipKeys.
   */
  copies: ReadonlyMap<string, number>;
}

export class DeliveryQueue {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #leaseMs: number;
  readonly #maxLeaseBreaks: number;
  readonly #recoveryDelayMs: number;

  constructor(store: Store, o: DeliveryQueueOptions = {}) {
    this.#store = store;
    this.#now = o.nowMs ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#leaseMs = atLeast("leaseMs", o.leaseMs ?? DEFAULT_LEASE_MS, 1);
    this.#maxLeaseBreaks = atLeast("maxLeaseBreaks", o.maxLeaseBreaks ?? DEFAULT_MAX_LEASE_BREAKS, 1);
    this.#recoveryDelayMs = atLeast("recoveryDelayMs", o.recoveryDelayMs ?? DEFAULT_RECOVERY_DELAY_MS, 0);
  }

  /**
   * Stores a message and its deliveries in one transaction. With message.itipKeys, a recipient whose
   * copy an earlier message holds gets no delivery (Accepted.copies); when that is every recipient
   * claimed, nothing is stored and ItipCopyError says who holds them.
   */
  async accept(message: NewMessage, deliveries: readonly NewDelivery[]): Promise<Accepted> {
    const now = this.#now();
    const uuid = message.uuid ?? Bun.randomUUIDv7("hex", now);
    const receivedAt = message.receivedAt ?? now;
    const stored = await this.#store.accept({
      message: { ...message, uuid, receivedAt },
      deliveries: deliveries.map((d) => toStore(d, now)),
      nowMs: now,
    });
    return { ...stored, uuid };
  }

  /**
   * Adds deliveries to a stored message, in one transaction: recipients whose fate was decided after
   * the message was accepted (the SMTP intake's relayed recipients, recorded once the smarthost
   * answered).
   */
  addDeliveries(messageId: number, deliveries: readonly NewDelivery[]): Promise<number[]> {
    const now = this.#now();
    return this.#store.addDeliveries({
      messageId,
      deliveries: deliveries.map((d) => toStore(d, now)),
      nowMs: now,
    });
  }

  /** Leases up to `limit` due deliveries (of `routes`, when given), oldest due first. */
  async lease(o: { owner: string; limit: number; routes?: readonly string[] }): Promise<LeasedDelivery[]> {
    if (!Number.isInteger(o.limit) || o.limit < 0)
      throw new RangeError(`limit must be a whole number >= 0, not ${o.limit}`);
    if (o.limit === 0 || o.routes?.length === 0) return [];
    const now = this.#now();
    return this.#store.lease({ ...o, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /**
   * Leases, among the `window` oldest due deliveries, up to `limit` that `fits` accepts (the
   * dispatcher's room per target, which counts what other nodes hold: `heldElsewhere`), so that
   * nothing is leased only to be given back. With `rotate`,
   * a full window's refused deliveries move behind the rest of what is due. `refused` counts them.
   */
  async leaseFitting(o: {
    owner: string;
    limit: number;
    window: number;
    fits: (row: DueRow, heldElsewhere: readonly HeldInFlight[]) => boolean;
    rotate: boolean;
  }): Promise<{ leased: LeasedDelivery[]; refused: number }> {
    if (o.limit <= 0 || o.window <= 0) return { leased: [], refused: 0 };
    const now = this.#now();
    return this.#store.leaseFitting({ ...o, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /** Leases those of `ids` still queued, due or not: "deliver now" right after accept(). */
  async leaseIds(owner: string, ids: readonly number[]): Promise<LeasedDelivery[]> {
    if (ids.length === 0) return [];
    const now = this.#now();
    return this.#store.leaseIds({ owner, ids, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /**
   * Records an attempt and applies its outcome, in one transaction. Returns false when `owner` no
   * longer holds the lease (it expired and was recovered, or an operator cancelled the delivery):
   * the delivery is then left as it is, since someone else may own it, but the attempt is recorded
   * all the same. It happened, and the history must show it (a send the peer accepted after the
   * operator cancelled explains what the attendee saw). So the attempts table can hold more rows
   * for a delivery than its `attempts` counter, which counts the outcomes applied.
   */
  async complete(deliveryId: number, owner: string, attempt: NewAttempt, next: Completion): Promise<boolean> {
    return (await this.completeMany(owner, [{ deliveryId, attempt, next }]))[0]!;
  }

  /**
   * complete() for the deliveries of one attempt (a group sent in one request) in one transaction:
   * the same outcome as one by one, one commit instead of one per recipient.
   */
  completeMany(owner: string, items: readonly CompletionItem[]): Promise<boolean[]> {
    return this.#store.completeMany({ owner, nowMs: this.#now(), items });
  }

  /** Extends the leases `owner` still holds by leaseMs from now; returns the ids still held. */
  async renewLease(ids: readonly number[], owner: string): Promise<number[]> {
    if (ids.length === 0) return [];
    const now = this.#now();
    return this.#store.renewLeases({ ids, owner, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /** Graceful shutdown: puts `owner`'s leased deliveries back, due now, no attempt counted. */
  async release(ids: readonly number[], owner: string): Promise<number> {
    if (ids.length === 0) return 0;
    return this.#store.releaseLeases({ ids, owner, nowMs: this.#now() });
  }

  /**
   * Ends abandoned leases: expired ones, or at start-up (`allInFlight`) every in-flight delivery,
   * which can only belong to a previous, dead process. Each goes back to the queue due in
   * recoveryDelayMs..2×recoveryDelayMs (spread, so that a restart does not send them all at once),
   * or to 'broken' when its lease has now broken maxLeaseBreaks times in a row. At start-up the
   * queued deliveries' breaks are forgotten first: the process died without them in flight.
   *
   * With several nodes on one database, start-up gives `startOfNode` (the lease owner's `NODE:`)
   * instead of `allInFlight`: the expired leases and those of this node's earlier processes, never
   * the unexpired leases of another node, which may be alive and attempting them.
   */
  recoverExpiredLeases(o: { allInFlight?: boolean; startOfNode?: string } = {}): Promise<RecoveryReport> {
    const now = this.#now();
    const atStart = o.allInFlight === true || o.startOfNode !== undefined;
    return this.#store.recoverLeases({
      nowMs: now,
      expiredBy: o.allInFlight ? undefined : now,
      ownerPrefix: o.startOfNode,
      // At start-up the death recovered from did not hold the queued deliveries: their runs end.
      endStreaks: atStart,
      plan: (d): LeaseBreak => {
        const breaks = d.leaseBreaks + 1;
        if (breaks >= this.#maxLeaseBreaks) {
          const error = atStart
            ? `isched died with this delivery in flight the last ${breaks} times it died (last owner ${d.leaseOwner}), without an attempt being recorded: the delivery may crash it.`
            : `The lease expired ${breaks} times in a row (last owner ${d.leaseOwner}) without an attempt being recorded: the delivery may crash the worker.`;
          return { state: "broken", error };
        }
        const error = `The lease of ${d.leaseOwner} expired before it recorded an attempt (the worker stopped or crashed).`;
        return {
          state: "queued",
          nextAttemptAt: now + Math.round(this.#recoveryDelayMs * (1 + this.#random())),
          error,
        };
      },
    });
  }

  /** Deliveries of `route` waiting with a last error that starts with `prefix` become due now. */
  wakeWaiting(route: Route, prefix: string): Promise<number> {
    return this.#store.wakeWaiting({ route, prefix, nowMs: this.#now() });
  }

  /** queued/failed/broken → queued, due now; attempts are kept, lease breaks forgotten. */
  retryNow(ids: readonly number[]): Promise<number> {
    return this.#operator("retryNow", ids);
  }

  /** queued/in-flight/broken → cancelled. A worker holding a cancelled delivery loses its lease. */
  cancel(ids: readonly number[]): Promise<number> {
    return this.#operator("cancel", ids);
  }

  /** queued/failed/broken → queued on route 'imip' (target cleared), due now. */
  requestImip(ids: readonly number[]): Promise<number> {
    return this.#operator("requestImip", ids);
  }

  async #operator(action: "retryNow" | "cancel" | "requestImip", ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.#store.operatorAction({ action, ids, nowMs: this.#now() });
  }

  /** Every state with its number of deliveries (0 for none). */
  countByState(): Promise<Record<DeliveryState, number>> {
    return this.#store.countByState();
  }

  /** When the earliest queued delivery is due (possibly in the past); undefined when none is queued. */
  nextDue(): Promise<number | undefined> {
    return this.#store.nextDueAt();
  }

  /** A message by id or uuid, with its deliveries and each delivery's attempts. */
  getMessage(idOrUuid: number | string): Promise<MessageDetail | undefined> {
    return this.#store.messageDetail(idOrUuid);
  }

  /** A stored message by id or uuid, without its deliveries (what a target needs to send it). */
  messageRow(idOrUuid: number | string): Promise<MessageRow | undefined> {
    return this.#store.messageRow(idOrUuid);
  }

  /** The deliveries of a message, in the order they were stored. */
  deliveriesOf(messageId: number): Promise<DeliveryRow[]> {
    return this.#store.deliveriesOf(messageId);
  }

  /** The message that holds a replay key still in force (accept() claims them), if any. */
  replayHolder(key: string): Promise<number | undefined> {
    return this.#store.replayHolder({ key, nowMs: this.#now() });
  }

  /** Keeps the answer a message got (the iSchedule endpoint's), for its replays and copies. */
  recordResponse(o: { messageId: number; status: number; body: string }): Promise<void> {
    return this.#store.recordResponse(o);
  }

  /** Counts a copy sent again (a new request for an iTIP message these messages hold). */
  noteResent(messageIds: readonly number[]): Promise<void> {
    return this.#store.noteResent({ messageIds, nowMs: this.#now() });
  }

  /** Messages newest first, `limit` at a time; pass the page's nextBeforeId as `beforeId` for the next. */
  listMessages(o: { limit: number; beforeId?: number }): Promise<LogPage> {
    return this.#store.searchMessages({ filter: [], ...o });
  }
}

/** A delivery with the queue's defaults filled in: queued, due now. */
function toStore(d: NewDelivery, now: number): DeliveryToStore {
  const state = d.state ?? "queued";
  return {
    recipient: d.recipient,
    domain: d.domain,
    route: d.route,
    target: d.target ?? null,
    state,
    requestStatus: d.requestStatus ?? null,
    lastError: d.lastError ?? null,
    nextAttemptAt: state === "queued" ? (d.nextAttemptAt ?? now) : null,
    fallbackAt: d.fallbackAt ?? null,
    attempt: d.attempt,
  };
}

function atLeast(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw new RangeError(`${name} must be a whole number >= ${min}, not ${value}`);
  return value;
}
