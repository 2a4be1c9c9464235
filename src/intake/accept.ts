/**
 * The one way into the queue. Every intake (the iSchedule endpoint for peers and for the
 * organisation's trusted servers, the submission API and `isched send`, the SMTP intake) reads and
 * checks its own wire format (headers, signature, body), then calls accept(), which for every
 * source does the same:
 *
 * 1. checks the iTIP message against its Originator and Recipients (RFC 5546 §3: who may send
 *    this method, who may receive it; an IScheduleError otherwise, nothing stored);
 * 2. routes each recipient (routing.ts): a hosted domain's local target, iSchedule for others when
 *    the Originator is ours, refused with 3.7 otherwise;
 * 3. asks the dispatcher to attempt, before the commit, the targets that answer without I/O (the
 *    store), so those deliveries are stored already decided (one commit per request);
 * 4. stores the message and its deliveries in one transaction (the queue): committed before anyone
 *    is told anything; a replay key or iTIP copy keys the message claims are claimed in the same
 *    transaction (a key already held answers "replay" or "copies" instead, nothing stored);
 * 5. when the intake waits for outcomes (`deadlineMs`), attempts the rest at once through the
 *    dispatcher and returns what finished by then; the dispatcher's loop takes the others.
 *
 * Two hooks let the iSchedule endpoint keep its answer with the message: `answerBeforeCommit` (an
 * answer complete before the commit is stored in the same transaction) and `onStored` (called right
 * after the commit, before anything awaits, so copies arriving meanwhile can wait for this answer).
 */

import type { Dispatcher } from "../delivery/dispatcher.ts";
import { type RecipientOutcome, targetMessage } from "../delivery/target.ts";
import { addressDomain } from "../ischedule/address.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { checkOriginator, checkRecipients, type ItipMessage } from "../itip/index.ts";
import { sendFactsOf, storableSendFacts } from "../outbound/message-facts.ts";
import type { Accepted, DeliveryQueue, NewDelivery } from "../queue/queue.ts";
import { ItipCopyError, ReplayConflictError } from "../store/errors.ts";
import type { Direction, Intake, ItipColumns, NewMessage } from "../store/store.ts";
import { itipKeysOf } from "./copies.ts";
import { isHosted, type RoutingTable, route } from "./routing.ts";

export interface IntakeOptions {
  queue: DeliveryQueue;
  dispatcher: Pick<Dispatcher, "attemptBeforeCommit" | "storedDecided" | "deliverNow" | "poke">;
  routes: RoutingTable;
  nowMs: () => number;
}

/** A message as an intake hands it over, checked for its wire format. */
export interface Arrival {
  /** Which intake took it: the message log's `intake` column. */
  readonly source: Intake;
  readonly itip: ItipMessage;
  readonly originator: string;
  /** One delivery each, in this order. */
  readonly recipients: readonly string[];
  /**
   * What is stored with the message besides what the iTIP message says: the body as received, its
   * hash, the peer's address and headers, the signature's verdict, the replay key.
   */
  readonly stored: Omit<NewMessage, "direction" | "intake" | ItipColumns | "itipKeys">;
  /**
   * Claim each routed recipient's copy of this iTIP revision until then (copies.ts): a copy sent
   * again under a new message id is then delivered once. Absent: no claim (the submission API).
   */
  readonly copiesUntil?: number;
}

export interface AcceptOptions {
  /** Attempt the deliveries now and wait this long for outcomes; absent: the dispatcher's loop takes them. */
  deadlineMs?: number;
  /**
   * Called before the commit when every delivery is decided already (routed away or attempted
   * before the commit): what it returns is stored with the message in the same transaction.
   */
  answerBeforeCommit?: (known: Known) => Pick<NewMessage, "responseStatus" | "responseBody">;
  /** Called right after the commit, before anything awaits. */
  onStored?: (stored: Stored) => void;
}

/** What is known of the deliveries before the commit, by the index of their recipient. */
export interface Known {
  readonly deliveries: readonly NewDelivery[];
  /** Outcomes of the targets asked before the commit. */
  readonly decided: ReadonlyMap<number, RecipientOutcome>;
}

export interface Stored extends Known {
  readonly accepted: Accepted;
  /** The stored delivery of each recipient, by its index; none for a copy an earlier message holds. */
  readonly deliveryIds: ReadonlyMap<number, number>;
}

export type AcceptResult =
  | ({ readonly kind: "accepted"; readonly direction: Direction } & Stored & {
        /** Outcomes of the deliveries attempted now that finished by the deadline, by recipient index. */
        readonly finished: ReadonlyMap<number, RecipientOutcome>;
      })
  /** The replay key is held by an earlier message (nothing stored). */
  | { readonly kind: "replay"; readonly key: string }
  /** Every recipient's copy of this iTIP message is held by earlier messages (nothing stored). */
  | { readonly kind: "copies"; readonly held: ReadonlyMap<string, number>; readonly known: Known };

export interface IntakeService {
  accept(arrival: Arrival, o?: AcceptOptions): Promise<AcceptResult>;
  /** Whether isched serves this domain (the routing table's hosted domains). */
  hosted(domain: string): boolean;
  readonly queue: DeliveryQueue;
  readonly nowMs: () => number;
}

export function createIntake(o: IntakeOptions): IntakeService {
  return {
    queue: o.queue,
    nowMs: o.nowMs,
    hosted: (domain) => isHosted(o.routes, domain),
    accept: (arrival, options = {}) => accept(o, arrival, options),
  };
}

async function accept(ctx: IntakeOptions, a: Arrival, o: AcceptOptions): Promise<AcceptResult> {
  // 1. Checks common to every source: the iTIP rules for the Originator and the Recipients.
  const originatorProblem = checkOriginator(a.itip, a.originator);
  if (originatorProblem) throw new IScheduleError(originatorProblem.element, originatorProblem.message);
  const recipientProblem = checkRecipients(a.itip, a.recipients);
  if (recipientProblem) throw new IScheduleError(recipientProblem.element, recipientProblem.message);

  // 2. Routing.
  const now = ctx.nowMs();
  const deliveries = a.recipients.map((recipient) =>
    route(ctx.routes, { recipient, originator: a.originator, nowMs: now }),
  );
  const direction: Direction = isHosted(ctx.routes, addressDomain(a.originator) ?? "")
    ? "outbound"
    : "inbound";
  const message: NewMessage & { uuid: string } = {
    ...a.stored,
    uuid: a.stored.uuid ?? Bun.randomUUIDv7("hex", now),
    direction,
    intake: a.source,
    originator: a.originator,
    method: a.itip.method,
    component: a.itip.component,
    uid: a.itip.uid,
    summary: a.itip.summary,
    organizer: a.itip.organizer?.address,
    // What a remote receiver's capabilities are checked against on each send, without parsing the
    // body again; an inbound message goes to local targets, which do not check them.
    ...(direction === "outbound" ? { sendFacts: storableSendFacts(sendFactsOf(a.itip)) } : {}),
  };

  // 3. Targets that answer without I/O, before the commit.
  const decided = await ctx.dispatcher.attemptBeforeCommit(targetMessage(message), deliveries);
  if (a.copiesUntil !== undefined)
    message.itipKeys = itipKeysOf({
      originator: a.originator,
      itip: a.itip,
      recipients: deliveries.filter((d) => d.state !== "failed").map((d) => d.recipient),
      expiresAt: a.copiesUntil,
    });
  const known: Known = { deliveries, decided };
  const allDecided = deliveries.every((d) => (d.state ?? "queued") !== "queued");
  const withAnswer =
    allDecided && o.answerBeforeCommit ? { ...message, ...o.answerBeforeCommit(known) } : message;

  // 4. The commit.
  let accepted: Accepted;
  try {
    accepted = await ctx.queue.accept(withAnswer, deliveries);
  } catch (e) {
    if (e instanceof ItipCopyError) return { kind: "copies", held: e.held, known };
    if (e instanceof ReplayConflictError) return { kind: "replay", key: e.key };
    throw e;
  }
  const deliveryIds = new Map<number, number>();
  let next = 0;
  deliveries.forEach((d, i) => {
    if (!accepted.copies.has(d.recipient)) deliveryIds.set(i, accepted.deliveryIds[next++]!);
  });
  const stored: Stored = { ...known, accepted, deliveryIds };
  // Nothing awaits between the commit's answer and here: the caller registers what copies wait for.
  ctx.dispatcher.storedDecided(accepted.uuid, deliveries, deliveryIds);
  o.onStored?.(stored);

  // 5. The attempt now, through the dispatcher.
  const queued = allDecided
    ? []
    : [...deliveryIds].filter(([i]) => (deliveries[i]!.state ?? "queued") === "queued").map(([, id]) => id);
  const finished = new Map<number, RecipientOutcome>();
  if (o.deadlineMs !== undefined && queued.length > 0) {
    const now = await ctx.dispatcher.deliverNow(queued, o.deadlineMs);
    for (const [i, id] of deliveryIds) {
      const outcome = now.finished.get(id);
      if (outcome) finished.set(i, outcome);
    }
    if (now.finished.size < queued.length) ctx.dispatcher.poke();
  } else if (queued.length > 0) ctx.dispatcher.poke();
  return { kind: "accepted", direction, deliveries, decided, accepted, deliveryIds, finished };
}
