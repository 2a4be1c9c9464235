/**
 * The workers: they lease due deliveries, group them (one message, one target), make one attempt per
 * group through the target, and record each delivery's attempt and what it means (the delivery
 * policy's decide(), policy.ts) in one transaction per group.
 *
 * Three ways in, all through the same attempt and the same policy:
 * - attemptBeforeCommit(): the intake (src/intake/accept.ts) asks it about a message not yet stored;
 *   targets that answer without I/O (the store) are attempted now, so their deliveries are stored
 *   already decided, with their attempt, in the message's own transaction: one commit per request.
 * - deliverNow(): the deliveries of a just-accepted message, at once, so the intake can relay the
 *   real answer when the target is quick; those not done by its deadline carry on and are recorded
 *   all the same.
 * - the background loop drains everything else as it falls due.
 * A global limit and a per-target limit bound concurrent attempts; stop() lets attempts in progress
 * finish (up to a grace period) and releases the leases of work not started, so nothing is lost on a
 * graceful shutdown either. An attempt still running when the grace period ends is abandoned: its
 * request is aborted, nothing is recorded for it, and its deliveries go back to the queue, due now
 * (if the peer had taken it, the next attempt is a resend the receiver drops by its
 * iSchedule-Message-ID, as after a crash).
 *
 * The database may be unavailable for a while (a full disk, a PostgreSQL server restarting). The
 * loop then reports it once for the whole outage (onError), waits longer after each failure
 * (STORAGE_RETRY_MS doubling up to STORAGE_RETRY_MAX_MS, or until new work pokes it) and tries again
 * rather than ending, and says when it works again (onRecovered). An attempt whose outcome cannot be
 * recorded keeps its outcome and its lease and records it once it can (at once when another
 * operation finds the database back), so a delivery that was made is not made again.
 */

import { STATUS } from "../ischedule/status.ts";
import type { Completion, DeliveryQueue, NewDelivery } from "../queue/queue.ts";
import type { DeliveryRow, DueRow, HeldInFlight, LeasedDelivery, NewAttempt } from "../store/store.ts";
import type { AttemptRecord } from "./attempt-log.ts";
import { decide } from "./policy.ts";
import {
  allRecipients,
  type DeliveryTarget,
  type RecipientOutcome,
  type TargetAttempt,
  type TargetMessage,
  targetMessage,
} from "./target.ts";

export interface DispatcherOptions {
  queue: DeliveryQueue;
  /** The target for a delivery, from its route and domain; undefined when none is configured. */
  targetFor: (delivery: Pick<DeliveryRow, "route" | "domain">) => DeliveryTarget | undefined;
  scheduleMs: readonly number[];
  imipAvailable: boolean;
  owner: string;
  nowMs?: () => number;
  random?: () => number;
  maxConcurrent?: number;
  maxPerTarget?: number;
  attemptTimeoutMs?: number;
  /** Called after each delivery's outcome is recorded (the console's live view listens). */
  onRecorded?: (delivery: DeliveryRow, outcome: RecipientOutcome) => void;
  /** Told when the queue cannot be read or written: once per outage, at its first failure. */
  onError?: (what: string, error: unknown) => void;
  /** Told when the queue works again after an outage, and how long it lasted. */
  onRecovered?: (downMs: number) => void;
  /**
   * Told of every attempt once its outcome is recorded (the log line of attempt-log.ts, the
   * metrics); not of a delivery put back to wait for isched's own key, which made no attempt.
   */
  onAttempt?: (attempt: AttemptRecord) => void;
}

export interface DeliveredNow {
  /** The outcome of every delivery whose attempt finished before the deadline, by delivery id. */
  readonly finished: ReadonlyMap<number, RecipientOutcome>;
}

const RESPONSE_LOG_CHARS = 16 * 1024;
/** A target that answers without I/O has this long before the commit goes ahead without it. */
const IMMEDIATE_TIMEOUT_MS = 1000;
/**
 * What a target's answer leaves in a delivery and its attempt, at most: a request-status is a code
 * and a short text (RFC 5545 §3.8.8.3), a reason one readable paragraph. The answer itself stays in
 * the attempt's response, capped above.
 */
const STATUS_CHARS = 256;
const REASON_CHARS = 2048;
const clipped = (text: string, max: number): string =>
  text.length > max ? `${text.slice(0, max - 3)}...` : text;
/** Free slots worth a lease transaction while other attempts are still running. */
const LEASE_BATCH = 4;
/** Due deliveries a lease looks at beyond the free slots, to find some whose target has room. */
const LEASE_WINDOW_EXTRA = 32;
/**
 * How often a lease moves what it looked at and left (targets at their limit) behind the rest of
 * what is due, so that one target's long backlog at the head of the queue cannot keep the others
 * out of every window: another target's delivery waits at most about backlog / window × this.
 */
const ROTATE_MS = 100;
/** How long the loop waits, at most, before leasing again when due work is held back by full targets. */
const HELD_BACK_MS = 200;
/**
 * How long the loop, or an outcome waiting to be recorded, waits after the database first failed;
 * each further failure of the same outage doubles it, up to STORAGE_RETRY_MAX_MS: a database that is
 * down for minutes costs a few attempts a minute, not one a second.
 */
const STORAGE_RETRY_MS = 500;
const STORAGE_RETRY_MAX_MS = 8000;
const LEASE_FAILED = "cannot lease deliveries";
const RECORD_FAILED = "cannot record delivery outcomes";

export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #max: number;
  readonly #maxPerTarget: number;
  #active = 0;
  /** Leased groups waiting for a slot of their target, by target key. */
  readonly #waiting = new Map<string, LeasedDelivery[][]>();
  #waitingDeliveries = 0;
  readonly #activeByTarget = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  /** The deliveries of each attempt in progress, to give back when the grace period ends. */
  readonly #attempting = new Set<readonly LeasedDelivery[]>();
  /** Aborts the requests of attempts abandoned at shutdown. */
  readonly #abandon = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** The database outage under way: since when, and how many operations failed in it. */
  #outage: { sinceMs: number; failures: number } | undefined;
  /** Outcomes waiting to be recorded, woken as soon as the database answers again. */
  readonly #recordWaiters = new Set<() => void>();
  #heartbeatMs: number | undefined;
  #rotatedAtMs = Number.NEGATIVE_INFINITY;
  /**
   * Set when the last lease left due work behind because its targets were full: then the next lease
   * waits for LEASE_BATCH finished attempts (or HELD_BACK_MS), so a busy peer's backlog is leased a
   * few at a time instead of one lease transaction per finished attempt.
   */
  #heldBack: { atMs: number; freedSince: number } | undefined;

  constructor(o: DispatcherOptions) {
    this.#o = o;
    this.#now = o.nowMs ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#max = o.maxConcurrent ?? 16;
    this.#maxPerTarget = o.maxPerTarget ?? 4;
  }

  /**
   * Attempts, before `message` is stored, the deliveries whose target answers without I/O (the
   * store target), and writes on each one the policy decided final (delivered or failed) its state
   * and attempt, so the queue stores it decided in the message's transaction. Returns their outcomes
   * by index; the other deliveries are left as they are (queued: deliverNow() or the loop takes them).
   */
  async attemptBeforeCommit(
    message: TargetMessage,
    deliveries: NewDelivery[],
  ): Promise<Map<number, RecipientOutcome>> {
    const decided = new Map<number, RecipientOutcome>();
    const byTarget = new Map<DeliveryTarget, number[]>();
    deliveries.forEach((d, i) => {
      if ((d.state ?? "queued") !== "queued") return;
      const target = this.#o.targetFor(d);
      if (target?.immediate) byTarget.set(target, [...(byTarget.get(target) ?? []), i]);
    });
    for (const [target, indexes] of byTarget) {
      const startedAt = this.#now();
      const group = indexes.map((i) => deliveries[i]!);
      const attempt = await this.#deliver(target, message, group, IMMEDIATE_TIMEOUT_MS);
      indexes.forEach((i, k) => {
        const outcome = attempt.outcomes[k];
        const d = deliveries[i]!;
        if (!outcome) return;
        const { completion, attemptOutcome } = decide({
          outcome,
          delivery: { route: d.route, attempts: 0, fallbackAt: d.fallbackAt ?? null, createdAt: startedAt },
          component: message.component,
          nowMs: startedAt,
          scheduleMs: this.#o.scheduleMs,
          random: this.#random,
          retryAfterMs: attempt.retryAfterMs,
          imipAvailable: this.#o.imipAvailable,
        });
        if (completion.state !== "delivered" && completion.state !== "failed") return;
        const delivered = completion.state === "delivered";
        deliveries[i] = {
          ...d,
          state: completion.state,
          requestStatus: completion.requestStatus,
          lastError: completion.error,
          attempt: {
            startedAt,
            durationMs: 0,
            route: d.route,
            target: target.label,
            requestStatus: outcome.requestStatus,
            outcome: attemptOutcome,
            error: delivered ? undefined : outcome.description,
          },
        };
        decided.set(i, outcome);
      });
    }
    return decided;
  }

  /** Attempts these (just accepted) deliveries now; resolves when all are done or at the deadline. */
  async deliverNow(ids: readonly number[], deadlineMs: number): Promise<DeliveredNow> {
    let leased: LeasedDelivery[];
    try {
      leased = await this.#o.queue.leaseIds(this.#o.owner, ids);
      this.#worked();
    } catch (e) {
      // They are stored and queued: the loop delivers them once the database takes writes again.
      this.#failed(LEASE_FAILED, e);
      return { finished: new Map() };
    }
    const finished = new Map<number, RecipientOutcome>();
    const work = this.#groups(leased).map((group) =>
      this.#track(this.#attempt(group, (d, outcome) => finished.set(d.id, outcome))),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(work),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    return { finished: new Map(finished) };
  }

  /** Starts the background loop. */
  start(): void {
    if (this.#loop) return;
    this.#stopping = false;
    this.#loop = this.#run();
  }

  /** Wakes the loop (new work is due). */
  poke(): void {
    this.#wake?.();
  }

  /**
   * Stops leasing, waits up to graceMs for attempts in progress, then abandons those still running
   * (their deliveries back to the queue, due now, no attempt counted); resolves when the loop has
   * ended and nothing holds a lease.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.poke();
    await this.#loop;
    this.#loop = undefined;
    // Work leased but not started goes back to the queue, due now, for the next run.
    const waiting = [...this.#waiting.values()].flat(2);
    this.#waiting.clear();
    this.#waitingDeliveries = 0;
    if (waiting.length > 0)
      await this.#o.queue.release(
        waiting.map((d) => d.id),
        this.#o.owner,
      );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#running),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (this.#attempting.size === 0) return;
    const abandoned = [...this.#attempting].flat().map((d) => d.id);
    this.#abandon.abort(new Error("isched is shutting down"));
    await this.#o.queue.release(abandoned, this.#o.owner);
  }

  get activeAttempts(): number {
    return this.#active;
  }

  /**
   * The deliveries this dispatcher holds leases on now: attempts in progress (their outcomes being
   * recorded included) and leased groups waiting for a slot. Their leases must be renewed while
   * another node could otherwise take them over (src/server/cluster.ts).
   */
  heldIds(): number[] {
    return [...this.#attempting, ...[...this.#waiting.values()].flat()].flat().map((d) => d.id);
  }

  /**
   * When the loop last went round (ms), whether or not the database let it lease; undefined before
   * start() and after stop(). The loop wakes every 5 s at the latest, so an old heartbeat means it
   * is stuck (/readyz, ops/health-checks.ts).
   */
  get heartbeatMs(): number | undefined {
    return this.#loop ? this.#heartbeatMs : undefined;
  }

  /**
   * Tells onAttempt of the attempts attemptBeforeCommit() made, once the intake has stored them with
   * their message (`deliveryIds`: the delivery's id by its index in `deliveries`).
   */
  storedDecided(
    messageUuid: string,
    deliveries: readonly NewDelivery[],
    deliveryIds: ReadonlyMap<number, number>,
  ) {
    if (!this.#o.onAttempt) return;
    deliveries.forEach((d, i) => {
      const id = deliveryIds.get(i);
      if (!d.attempt || id === undefined || (d.state !== "delivered" && d.state !== "failed")) return;
      this.#o.onAttempt?.({
        messageUuid,
        deliveryId: id,
        recipient: d.recipient,
        peer: d.route === "local" ? (d.attempt.target ?? d.domain) : d.domain,
        route: d.route,
        target: d.attempt.target,
        outcome: d.attempt.outcome,
        requestStatus: d.attempt.requestStatus,
        reason: d.attempt.error ?? (d.state === "failed" ? d.lastError : undefined),
        state: d.state,
        attempt: 1,
        durationMs: d.attempt.durationMs,
      });
    });
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#heartbeatMs = this.#now();
      let delayMs: number;
      try {
        delayMs = await this.#turn();
        this.#worked();
      } catch (e) {
        delayMs = this.#failed(LEASE_FAILED, e);
      }
      await this.#sleep(delayMs);
    }
  }

  /** One turn of the loop: leases what is due and starts it; returns how long to sleep. */
  async #turn(): Promise<number> {
    // Lease no more than could start soon: the global free slots, and for each target its free
    // slots plus room in its waiting list (#fits), so nothing leased has to be given back.
    const free = this.#max - this.#active - this.#waitingDeliveries;
    let leased: LeasedDelivery[] = [];
    let refused = 0;
    // Leasing is a write transaction: look (a read) before leasing, so an idle queue costs no commits;
    // and while attempts run, lease in batches of a few slots rather than one lease per finished attempt.
    const now = this.#now();
    const held = this.#heldBack;
    const waitForBatch =
      held !== undefined && held.freedSince < LEASE_BATCH && now - held.atMs < HELD_BACK_MS;
    const worthLeasing =
      free > 0 && !waitForBatch && (free >= Math.min(LEASE_BATCH, this.#max) || this.#active === 0);
    const next = worthLeasing ? await this.#o.queue.nextDue() : undefined;
    if (next !== undefined && next <= now) {
      const rotate = now - this.#rotatedAtMs >= ROTATE_MS;
      ({ leased, refused } = await this.#o.queue.leaseFitting({
        owner: this.#o.owner,
        limit: free,
        window: free + LEASE_WINDOW_EXTRA,
        fits: this.#fits(),
        rotate,
      }));
      if (rotate) this.#rotatedAtMs = now;
      this.#heldBack = refused > 0 && leased.length < free ? { atMs: now, freedSince: 0 } : undefined;
    }
    // #fits counted the room; a group that finds none anyway (the global limit) is given back.
    const released: LeasedDelivery[][] = [];
    for (const group of this.#groups(leased)) {
      const key = this.#targetKey(group[0]!);
      if (this.#hasSlot(key)) this.#track(this.#attempt(group));
      else if ((this.#waiting.get(key)?.length ?? 0) < this.#maxPerTarget) this.#wait(key, group);
      else released.push(group);
    }
    if (released.length > 0)
      await this.#o.queue.release(
        released.flat().map((d) => d.id),
        this.#o.owner,
      );
    // Go round again at once only when the lease filled every free slot: more may be waiting.
    const busy = leased.length > 0 && leased.length >= free && released.length === 0;
    if (waitForBatch) return HELD_BACK_MS - (now - held.atMs);
    return busy ? 0 : this.#idleDelay(released.length > 0 || refused > 0);
  }

  /**
   * For one lease: whether a due delivery fits, in due order. A target has room for as many groups
   * (one message, one target) as it has free slots and free places in its waiting list; the
   * deliveries of a group already taken ride along.
   *
   * Where other processes lease from the same queue (nodes on one PostgreSQL), what they hold in
   * flight for the target counts too: while another holds any, all of them together hold at most
   * maxPerTarget (no waiting list beyond it), so the peer never sees more attempts at once than
   * --max-per-peer from the whole cluster. A process alone with the target keeps its waiting list:
   * the others take none while it holds maxPerTarget or more, and it starts no more than
   * maxPerTarget itself. The store leases one process at a time, so the count stays true.
   */
  #fits(): (row: DueRow, heldElsewhere: readonly HeldInFlight[]) => boolean {
    const room = new Map<string, number>();
    const taken = new Set<string>();
    let elsewhere: Map<string, number> | undefined;
    return (row, held) => {
      const key = this.#targetKey(row);
      const group = `${row.messageId}|${key}`;
      if (taken.has(group)) return true;
      elsewhere ??= this.#byTarget(held);
      const left = room.get(key) ?? this.#room(key, elsewhere.get(key) ?? 0);
      if (left <= 0) return false;
      room.set(key, left - 1);
      taken.add(group);
      return true;
    };
  }

  /** Groups a target can still take: `heldElsewhere` of them are held by other processes. */
  #room(key: string, heldElsewhere: number): number {
    const here = (this.#activeByTarget.get(key) ?? 0) + (this.#waiting.get(key)?.length ?? 0);
    if (heldElsewhere === 0) return 2 * this.#maxPerTarget - here;
    return this.#maxPerTarget - heldElsewhere - here;
  }

  /** What other processes hold in flight, by this dispatcher's target key. */
  #byTarget(held: readonly HeldInFlight[]): Map<string, number> {
    const byKey = new Map<string, number>();
    for (const h of held) {
      const key = this.#targetKey(h);
      byKey.set(key, (byKey.get(key) ?? 0) + h.messages);
    }
    return byKey;
  }

  /** Counts a failure of the database, reporting the first of an outage; how long to wait now. */
  #failed(what: string, e: unknown): number {
    if (this.#outage === undefined) {
      this.#outage = { sinceMs: this.#now(), failures: 0 };
      this.#o.onError?.(what, e);
    }
    const failures = ++this.#outage.failures;
    return Math.min(STORAGE_RETRY_MAX_MS, STORAGE_RETRY_MS * 2 ** Math.min(failures - 1, 16));
  }

  /** The database answered: an outage under way is over. */
  #worked(): void {
    if (this.#outage === undefined) return;
    const downMs = this.#now() - this.#outage.sinceMs;
    this.#outage = undefined;
    this.#o.onRecovered?.(downMs);
    for (const wake of this.#recordWaiters) wake();
  }

  /**
   * Records a group's outcomes; while the database refuses (a full disk), keeps them and tries again,
   * holding the leases, so that what was delivered is not delivered again. Gives up when the
   * dispatcher stops: start-up recovery then puts the deliveries back in the queue.
   */
  async #complete(records: Parameters<DeliveryQueue["completeMany"]>[1]): Promise<boolean> {
    for (;;) {
      try {
        await this.#o.queue.completeMany(this.#o.owner, records);
        this.#worked();
        return true;
      } catch (e) {
        const waitMs = this.#failed(RECORD_FAILED, e);
        if (this.#stopping) return false;
        await this.#untilRecordRetry(waitMs);
      }
    }
  }

  /** Waits `ms`, or less when the database answers another operation in the meantime. */
  #untilRecordRetry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#recordWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#recordWaiters.add(done);
    });
  }

  #hasSlot(key: string): boolean {
    return this.#active < this.#max && (this.#activeByTarget.get(key) ?? 0) < this.#maxPerTarget;
  }

  #wait(key: string, group: LeasedDelivery[]): void {
    const list = this.#waiting.get(key);
    if (list) list.push(group);
    else this.#waiting.set(key, [group]);
    this.#waitingDeliveries += group.length;
  }

  /** Starts waiting groups whose target has a free slot again. */
  #startWaiting(): void {
    for (const [key, list] of this.#waiting) {
      while (list.length > 0 && this.#hasSlot(key)) {
        const group = list.shift()!;
        this.#waitingDeliveries -= group.length;
        this.#track(this.#attempt(group));
      }
      if (list.length === 0) this.#waiting.delete(key);
    }
  }

  async #idleDelay(saturated: boolean): Promise<number> {
    if (saturated) return HELD_BACK_MS;
    const next = await this.#o.queue.nextDue();
    if (next === undefined) return 5_000;
    return Math.max(10, Math.min(5_000, next - this.#now()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      this.#timer = setTimeout(done, ms);
    });
  }

  #track(p: Promise<void>): Promise<void> {
    this.#running.add(p);
    p.finally(() => {
      this.#running.delete(p);
      // A slot freed up: leased work may be waiting for it, and due work in the queue.
      if (this.#heldBack) this.#heldBack.freedSince++;
      if (!this.#stopping) this.#startWaiting();
      this.poke();
    });
    return p;
  }

  /** Deliveries of one message to one target, in lease order. */
  #groups(leased: readonly LeasedDelivery[]): LeasedDelivery[][] {
    const groups = new Map<string, LeasedDelivery[]>();
    for (const d of leased) {
      const key = `${d.messageId}|${this.#targetKey(d)}`;
      const g = groups.get(key);
      if (g) g.push(d);
      else groups.set(key, [d]);
    }
    return [...groups.values()];
  }

  #targetKey(d: Pick<DeliveryRow, "route" | "domain">): string {
    return d.route === "local" ? `local|${this.#o.targetFor(d)?.label ?? "none"}` : `${d.route}|${d.domain}`;
  }

  async #attempt(
    group: LeasedDelivery[],
    onOutcome?: (d: DeliveryRow, o: RecipientOutcome) => void,
  ): Promise<void> {
    const first = group[0]!;
    const key = this.#targetKey(first);
    this.#active++;
    this.#activeByTarget.set(key, (this.#activeByTarget.get(key) ?? 0) + 1);
    this.#attempting.add(group);
    const startedAt = this.#now();
    const t0 = performance.now();
    try {
      const message = await this.#o.queue.messageRow(first.messageId);
      const target = this.#o.targetFor(first);
      let attempt: TargetAttempt;
      if (!message) {
        attempt = {
          outcomes: allRecipients(
            group.map((d) => d.recipient),
            STATUS.invalidService,
          ),
          target: "-",
          error: "the message is gone",
        };
      } else if (!target) {
        const why = `no delivery target is configured for route ${first.route} (${first.domain})`;
        attempt = {
          outcomes: allRecipients(
            group.map((d) => d.recipient),
            STATUS.invalidService,
            why,
          ),
          target: "-",
          error: why,
        };
      } else {
        attempt = await this.#deliver(target, targetMessage(message), group);
      }
      // Abandoned at shutdown: its leases were given back, so its outcome is not this run's to record.
      if (this.#abandon.signal.aborted) return;
      const durationMs = Math.round(performance.now() - t0);
      const outcomes = group.map(
        (d, i) => attempt.outcomes[i] ?? { recipient: d.recipient, requestStatus: STATUS.serviceUnavailable },
      );
      // One transaction for the whole group: one request, one commit.
      const records = group.map((d, i) =>
        this.#record(
          d,
          outcomes[i]!,
          attempt,
          message?.component ?? "",
          startedAt,
          durationMs,
          target?.label,
        ),
      );
      const recorded = await this.#complete(records);
      if (recorded)
        group.forEach((d, i) => {
          this.#o.onRecorded?.(d, outcomes[i]!);
          onOutcome?.(d, outcomes[i]!);
          const r = records[i]!;
          if (r.next.state !== "waiting")
            this.#o.onAttempt?.({
              messageUuid: message?.uuid ?? "-",
              deliveryId: d.id,
              recipient: d.recipient,
              peer: d.route === "local" ? (target?.label ?? d.domain) : d.domain,
              route: d.route,
              target: r.attempt.target,
              outcome: r.attempt.outcome,
              httpStatus: r.attempt.httpStatus,
              requestStatus: r.attempt.requestStatus,
              // The policy's reason (completion.error) says what a bare request-status means.
              reason: r.attempt.error ?? r.next.error,
              nextAttemptAtMs: r.next.state === "queued" ? r.next.nextAttemptAt : undefined,
              state: r.next.state,
              attempt: d.attempts + 1,
              durationMs,
            });
        });
    } finally {
      this.#attempting.delete(group);
      this.#active--;
      this.#activeByTarget.set(key, (this.#activeByTarget.get(key) ?? 1) - 1);
    }
  }

  async #deliver(
    target: DeliveryTarget,
    message: TargetMessage,
    group: readonly Pick<DeliveryRow, "recipient">[],
    timeoutMs = this.#o.attemptTimeoutMs ?? 60_000,
  ): Promise<TargetAttempt> {
    const recipients = group.map((d) => d.recipient);
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#abandon.signal]);
    try {
      return await target.deliver(message, recipients, signal);
    } catch (e) {
      // A target that throws has a bug or met something unexpected: treat it as temporary, keep the error.
      const error = `${target.label}: ${(e as Error)?.message ?? String(e)}`;
      return {
        outcomes: allRecipients(recipients, STATUS.serviceUnavailable, "Delivery failed unexpectedly."),
        target: target.label,
        error,
      };
    }
  }

  #record(
    d: LeasedDelivery,
    answered: RecipientOutcome,
    attempt: TargetAttempt,
    component: string,
    startedAt: number,
    durationMs: number,
    label: string | undefined,
  ): { deliveryId: number; attempt: NewAttempt; next: Completion } {
    // A peer writes these: a 500 KB description must not become a 500 KB reason in every row.
    const outcome: RecipientOutcome = {
      ...answered,
      requestStatus: clipped(answered.requestStatus, STATUS_CHARS),
      ...(answered.description !== undefined && { description: clipped(answered.description, REASON_CHARS) }),
    };
    const { completion, attemptOutcome } = decide({
      outcome,
      delivery: d,
      component,
      nowMs: this.#now(),
      scheduleMs: this.#o.scheduleMs,
      random: this.#random,
      retryAfterMs: attempt.retryAfterMs,
      imipAvailable: this.#o.imipAvailable,
    });
    const via = outcome.via ?? {};
    const record: NewAttempt = {
      startedAt,
      durationMs,
      route: d.route,
      target: via.target ?? attempt.target,
      httpStatus: via.httpStatus ?? attempt.httpStatus,
      requestStatus: outcome.requestStatus,
      outcome: attemptOutcome,
      error:
        attempt.error !== undefined
          ? clipped(attempt.error, REASON_CHARS)
          : attemptOutcome === "delivered" || attemptOutcome === "sent-imip"
            ? undefined
            : outcome.description,
      tls: via.tls ?? attempt.tls,
      response: (via.response ?? attempt.response)?.slice(0, RESPONSE_LOG_CHARS),
    };
    const target = d.route === "local" ? label : via.target;
    const next = target && completion.state !== "waiting" ? { ...completion, target } : completion;
    return { deliveryId: d.id, attempt: record, next };
  }
}
