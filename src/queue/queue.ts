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
 * Crash safety rests on SQLite: every change is one transaction, WAL keeps committed transactions
 * through a process crash. The cost of a crash between a successful send and complete() is one
 * duplicate send, which the receiver drops by iSchedule-Message-ID.
 *
 * Reading (getMessage, messageRow, deliveriesOf, replayHolder, listMessages, countByState, nextDue)
 * never changes anything.
 */
import type { Database } from "bun:sqlite";
import { type AttemptRow, attemptsOfMessage, insertAttempt, type NewAttempt } from "../store/attempts.ts";
import {
  applyOperatorAction,
  breakLease,
  completeLeased,
  countDeliveriesByState,
  type DeliveryRow,
  type DeliveryState,
  deliveriesOfMessage,
  endBreakStreaks,
  type FinalDeliveryState,
  inFlightDeliveries,
  insertDelivery,
  type LeasedDelivery,
  leaseDue,
  leaseIds,
  nextDueAt,
  postponeLeased,
  type Route,
  releaseLeases,
  renewLeases,
  wakeWaiting,
} from "../store/deliveries.ts";
import { claimItipKeys, ItipCopyError, noteResent } from "../store/itip-keys.ts";
import { type LogPage, searchMessages } from "../store/message-search.ts";
import {
  getMessageRow,
  insertMessage,
  type MessageRow,
  type NewMessage,
  recordResponse,
} from "../store/messages.ts";
import { findReplay } from "../store/replays.ts";

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

/** `route`/`target` change where the delivery goes next (iMIP fallback, the peer URL found). */
interface CompletionChange {
  requestStatus?: string;
  error?: string;
  route?: Route;
  target?: string;
}

export type Completion =
  | ({ state: FinalDeliveryState } & CompletionChange)
  | ({ state: "queued"; nextAttemptAt: number } & CompletionChange)
  /**
   * The delivery waited for isched itself (its DKIM key not yet visible in DNS), so nothing was
   * tried: back in the queue with the reason, no attempt recorded or counted.
   */
  | { state: "waiting"; nextAttemptAt: number; error: string };

export interface RecoveryReport {
  /** Back in the queue, due after the recovery delay. */
  requeued: number[];
  /** Moved to 'broken' after maxLeaseBreaks breaks in a row. */
  broken: number[];
}

export type DeliveryWithAttempts = DeliveryRow & { attemptList: AttemptRow[] };

export interface MessageDetail {
  message: MessageRow;
  deliveries: DeliveryWithAttempts[];
}

export class DeliveryQueue {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #leaseMs: number;
  readonly #maxLeaseBreaks: number;
  readonly #recoveryDelayMs: number;

  constructor(db: Database, o: DeliveryQueueOptions = {}) {
    this.#db = db;
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
  accept(message: NewMessage, deliveries: readonly NewDelivery[]): Accepted {
    const now = this.#now();
    const uuid = message.uuid ?? Bun.randomUUIDv7("hex", now);
    const receivedAt = message.receivedAt ?? now;
    return this.#db
      .transaction((): Accepted => {
        const messageId = insertMessage(this.#db, { ...message, uuid, receivedAt });
        const claims = message.itipKeys;
        const copies = claims
          ? claimItipKeys(this.#db, { ...claims, messageId, nowMs: receivedAt })
          : new Map<string, number>();
        if (claims && claims.keys.length > 0 && copies.size === claims.keys.length)
          throw new ItipCopyError(copies);
        const fresh = deliveries.filter((d) => !copies.has(d.recipient));
        return { messageId, uuid, deliveryIds: this.#insertDeliveries(messageId, fresh, now), copies };
      })
      .immediate();
  }

  /**
   * Adds deliveries to a stored message, in one transaction: recipients whose fate was decided after
   * the message was accepted (the SMTP intake's relayed recipients, recorded once the smarthost
   * answered).
   */
  addDeliveries(messageId: number, deliveries: readonly NewDelivery[]): number[] {
    const now = this.#now();
    return this.#db.transaction(() => this.#insertDeliveries(messageId, deliveries, now)).immediate();
  }

  #insertDeliveries(messageId: number, deliveries: readonly NewDelivery[], now: number): number[] {
    const deliveryIds = deliveries.map((d) => {
      const state = d.state ?? "queued";
      return insertDelivery(this.#db, {
        messageId,
        recipient: d.recipient,
        domain: d.domain,
        route: d.route,
        target: d.target ?? null,
        state,
        requestStatus: d.requestStatus ?? null,
        lastError: d.lastError ?? null,
        nextAttemptAt: state === "queued" ? (d.nextAttemptAt ?? now) : null,
        fallbackAt: d.fallbackAt ?? null,
        nowMs: now,
        attempts: d.attempt && state !== "queued" ? 1 : 0,
      });
    });
    deliveries.forEach((d, i) => {
      if (d.attempt && (d.state ?? "queued") !== "queued")
        insertAttempt(this.#db, deliveryIds[i]!, d.attempt);
    });
    return deliveryIds;
  }

  /** Leases up to `limit` due deliveries (of `routes`, when given), oldest due first. */
  lease(o: { owner: string; limit: number; routes?: readonly string[] }): LeasedDelivery[] {
    if (!Number.isInteger(o.limit) || o.limit < 0)
      throw new RangeError(`limit must be a whole number >= 0, not ${o.limit}`);
    if (o.limit === 0 || o.routes?.length === 0) return [];
    const now = this.#now();
    return leaseDue(this.#db, { ...o, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /** Leases those of `ids` still queued, due or not: "deliver now" right after accept(). */
  leaseIds(owner: string, ids: readonly number[]): LeasedDelivery[] {
    if (ids.length === 0) return [];
    const now = this.#now();
    return leaseIds(this.#db, { owner, ids, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /**
   * Records an attempt and applies its outcome, in one transaction. Returns false when `owner` no
   * longer holds the lease (it expired and was recovered, or an operator cancelled the delivery):
   * the delivery is then left as it is, since someone else may own it, but the attempt is recorded
   * all the same. It happened, and the history must show it (a send the peer accepted after the
   * operator cancelled explains what the attendee saw). So the attempts table can hold more rows
   * for a delivery than its `attempts` counter, which counts the outcomes applied.
   */
  complete(deliveryId: number, owner: string, attempt: NewAttempt, next: Completion): boolean {
    return this.completeMany(owner, [{ deliveryId, attempt, next }])[0]!;
  }

  /**
   * complete() for the deliveries of one attempt (a group sent in one request) in one transaction:
   * the same outcome as one by one, one commit instead of one per recipient.
   */
  completeMany(
    owner: string,
    items: readonly { deliveryId: number; attempt: NewAttempt; next: Completion }[],
  ): boolean[] {
    const now = this.#now();
    return this.#db
      .transaction(() =>
        items.map(({ deliveryId, attempt, next }) => {
          if (next.state === "waiting") {
            const { nextAttemptAt, error } = next;
            return postponeLeased(this.#db, { id: deliveryId, owner, nowMs: now, nextAttemptAt, error });
          }
          const applied = completeLeased(this.#db, {
            id: deliveryId,
            owner,
            nowMs: now,
            state: next.state,
            nextAttemptAt: next.state === "queued" ? next.nextAttemptAt : null,
            requestStatus: next.requestStatus ?? null,
            error: next.error ?? null,
            route: next.route ?? null,
            target: next.target ?? null,
          });
          insertAttempt(this.#db, deliveryId, attempt);
          return applied;
        }),
      )
      .immediate();
  }

  /** Extends the leases `owner` still holds by leaseMs from now; returns the ids still held. */
  renewLease(ids: readonly number[], owner: string): number[] {
    if (ids.length === 0) return [];
    const now = this.#now();
    return renewLeases(this.#db, { ids, owner, nowMs: now, leaseExpiresAt: now + this.#leaseMs });
  }

  /** Graceful shutdown: puts `owner`'s leased deliveries back, due now, no attempt counted. */
  release(ids: readonly number[], owner: string): number {
    if (ids.length === 0) return 0;
    return releaseLeases(this.#db, { ids, owner, nowMs: this.#now() });
  }

  /**
   * Ends abandoned leases: expired ones, or at start-up (`allInFlight`) every in-flight delivery,
   * which can only belong to a previous, dead process. Each goes back to the queue due in
   * recoveryDelayMs..2×recoveryDelayMs (spread, so that a restart does not send them all at once),
   * or to 'broken' when its lease has now broken maxLeaseBreaks times in a row. At start-up the
   * queued deliveries' breaks are forgotten first: the process died without them in flight.
   */
  recoverExpiredLeases(o: { allInFlight?: boolean } = {}): RecoveryReport {
    const now = this.#now();
    return this.#db
      .transaction((): RecoveryReport => {
        const report: RecoveryReport = { requeued: [], broken: [] };
        if (o.allInFlight) endBreakStreaks(this.#db);
        const abandoned = inFlightDeliveries(this.#db, { expiredBy: o.allInFlight ? undefined : now });
        for (const d of abandoned) {
          const breaks = d.leaseBreaks + 1;
          if (breaks >= this.#maxLeaseBreaks) {
            const error = o.allInFlight
              ? `isched died with this delivery in flight the last ${breaks} times it died (last owner ${d.leaseOwner}), without an attempt being recorded: the delivery may crash it.`
              : `The lease expired ${breaks} times in a row (last owner ${d.leaseOwner}) without an attempt being recorded: the delivery may crash the worker.`;
            breakLease(this.#db, { id: d.id, nowMs: now, state: "broken", error });
            report.broken.push(d.id);
          } else {
            const error = `The lease of ${d.leaseOwner} expired before it recorded an attempt (the worker stopped or crashed).`;
            const nextAttemptAt = now + Math.round(this.#recoveryDelayMs * (1 + this.#random()));
            breakLease(this.#db, { id: d.id, nowMs: now, state: "queued", nextAttemptAt, error });
            report.requeued.push(d.id);
          }
        }
        return report;
      })
      .immediate();
  }

  /** Deliveries of `route` waiting with a last error that starts with `prefix` become due now. */
  wakeWaiting(route: Route, prefix: string): number {
    return wakeWaiting(this.#db, { route, prefix, nowMs: this.#now() });
  }

  /** queued/failed/broken → queued, due now; attempts are kept, lease breaks forgotten. */
  retryNow(ids: readonly number[]): number {
    return this.#operator("retryNow", ids);
  }

  /** queued/in-flight/broken → cancelled. A worker holding a cancelled delivery loses its lease. */
  cancel(ids: readonly number[]): number {
    return this.#operator("cancel", ids);
  }

  /** queued/failed/broken → queued on route 'imip' (target cleared), due now. */
  requestImip(ids: readonly number[]): number {
    return this.#operator("requestImip", ids);
  }

  #operator(action: "retryNow" | "cancel" | "requestImip", ids: readonly number[]): number {
    if (ids.length === 0) return 0;
    return applyOperatorAction(this.#db, { action, ids, nowMs: this.#now() });
  }

  /** Every state with its number of deliveries (0 for none). */
  countByState(): Record<DeliveryState, number> {
    return countDeliveriesByState(this.#db);
  }

  /** When the earliest queued delivery is due (possibly in the past); undefined when none is queued. */
  nextDue(): number | undefined {
    return nextDueAt(this.#db);
  }

  /** A message by id or uuid, with its deliveries and each delivery's attempts. */
  getMessage(idOrUuid: number | string): MessageDetail | undefined {
    return this.#db
      .transaction((): MessageDetail | undefined => {
        const message = getMessageRow(this.#db, idOrUuid);
        if (!message) return undefined;
        const byDelivery = new Map<number, AttemptRow[]>();
        for (const a of attemptsOfMessage(this.#db, message.id)) {
          const list = byDelivery.get(a.deliveryId);
          if (list) list.push(a);
          else byDelivery.set(a.deliveryId, [a]);
        }
        const deliveries = deliveriesOfMessage(this.#db, message.id).map((d) => ({
          ...d,
          attemptList: byDelivery.get(d.id) ?? [],
        }));
        return { message, deliveries };
      })
      .deferred();
  }

  /** A stored message by id or uuid, without its deliveries (what a target needs to send it). */
  messageRow(idOrUuid: number | string): MessageRow | undefined {
    return getMessageRow(this.#db, idOrUuid);
  }

  /** The deliveries of a message, in the order they were stored. */
  deliveriesOf(messageId: number): DeliveryRow[] {
    return deliveriesOfMessage(this.#db, messageId);
  }

  /** The message that holds a replay key still in force (accept() claims them), if any. */
  replayHolder(key: string): number | undefined {
    return findReplay(this.#db, { key, nowMs: this.#now() });
  }

  /** Keeps the answer a message got (the iSchedule endpoint's), for its replays and copies. */
  recordResponse(o: { messageId: number; status: number; body: string }): void {
    recordResponse(this.#db, o);
  }

  /** Counts a copy sent again (a new request for an iTIP message these messages hold). */
  noteResent(messageIds: readonly number[]): void {
    noteResent(this.#db, { messageIds, nowMs: this.#now() });
  }

  /** Messages newest first, `limit` at a time; pass the page's nextBeforeId as `beforeId` for the next. */
  listMessages(o: { limit: number; beforeId?: number }): LogPage {
    return searchMessages(this.#db, { filter: [], ...o });
  }
}

function atLeast(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw new RangeError(`${name} must be a whole number >= ${min}, not ${value}`);
  return value;
}
