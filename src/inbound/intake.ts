/**
 * A scheduling POST from its checked headers to the answer: authenticate (DKIM or trusted source),
 * drop replays, check the iTIP body, route each recipient, store the message with one delivery per
 * recipient (committed before anyone is told anything) except those whose copy of this iTIP message
 * an earlier message holds (resends.ts), deliver what can be delivered by the deadline, and answer
 * per recipient (answers.ts: 1.1 for what isched holds but has not delivered yet). A refused request
 * is logged too (with its verdict and the answer) when its headers were readable, so the log shows
 * forgeries and mistakes: its metadata only, never its body, and never with a delivery (refusals.ts).
 */
import type { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import type { Dispatcher } from "../delivery/dispatcher.ts";
import type { KeyResolver } from "../dkim/key-resolver.ts";
import type { SignatureLifetime } from "../dkim/verify.ts";
import { addressDomain } from "../ischedule/address.ts";
import type { ComponentCapability } from "../ischedule/capabilities.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import type { Recipient } from "../ischedule/headers.ts";
import { classifyStatus, STATUS } from "../ischedule/status.ts";
import { errorXml, type ScheduleResponseItem, scheduleResponseXml } from "../ischedule/xml-writer.ts";
import type { ItipMessage } from "../itip/index.ts";
import type { Accepted, DeliveryQueue, NewDelivery } from "../queue/queue.ts";
import type { Route } from "../store/deliveries.ts";
import { ItipCopyError, noteResent } from "../store/itip-keys.ts";
import { type NewMessage, recordResponse } from "../store/messages.ts";
import { type ReplayClaim, ReplayConflictError } from "../store/replays.ts";
import type { DeliveryTarget, RecipientOutcome } from "../targets/target.ts";
import { type Finished, HELD, HELD_STATUS, responseItems } from "./answers.ts";
import { type Authentication, AuthenticationError, authenticate } from "./authenticate.ts";
import { type PublishedCapabilities, unionComponents } from "./capabilities.ts";
import type { CheckedHeaders } from "./header-checks.ts";
import { checkItip } from "./itip-checks.ts";
import type { RefusalLog } from "./refusal-log.ts";
import { logRefusal, requestFacts } from "./refusals.ts";
import { type InFlightRequests, replayKeyOf, storedAnswer, TRUSTED_WINDOW_MS } from "./replays.ts";
import { answerOfMessage, itemOf, itipKeysOf } from "./resends.ts";
import type { AlignmentMode, TrustPolicy } from "./trust-policy.ts";

export interface IntakeContext {
  db: Database;
  queue: DeliveryQueue;
  dispatcher: Dispatcher;
  keys: KeyResolver;
  capabilities: () => PublishedCapabilities;
  hosted: (domain: string) => boolean;
  trust: (domain: string) => TrustPolicy;
  /** How a signing domain must relate to the Originator's domain (signer-alignment.ts; default relaxed). */
  alignment?: AlignmentMode;
  /** The local target's label for a hosted domain (stored with the delivery). */
  localTargetLabel: (domain: string) => string;
  /** May isched send this recipient elsewhere (it came from a trusted local server)? */
  remoteRoute: (domain: string) => Route | undefined;
  deadlineMs: number;
  allowSha1: boolean;
  /** One deadline for a request's DKIM verification, key retrieval included. */
  verifyDeadlineMs: number;
  /** How long a signature stays good (verify.ts): also how long its replay key is kept. */
  signatureLifetime: SignatureLifetime;
  /** Requests being processed, by replay key: a copy waits for its first one's answer. */
  inFlight: InFlightRequests<IntakeAnswer>;
  /** Where refused requests are logged: metadata only, pruned oldest first. */
  refusals: RefusalLog;
  nowMs: () => number;
  /** Remote deliveries of a trusted local server's message fall back to iMIP after this long. */
  fallbackAfterMs?: number;
  /** What isched can send to other domains, on top of what its local targets take (outbound checks). */
  outboundComponents?: readonly ComponentCapability[];
  /** The local target of a hosted domain, to ask immediate targets (the store) before the commit. */
  localTarget?: (domain: string) => DeliveryTarget | undefined;
}

export interface IntakeRequest {
  headers: CheckedHeaders;
  fields: readonly (readonly [string, string])[];
  body: Uint8Array;
  remoteAddress: string;
  /** The key resolver of the place reserveKeyLookup() gave this request (default ctx.keys). */
  keys?: KeyResolver;
}

export interface IntakeAnswer {
  status: number;
  xml: string;
  headers?: Record<string, string>;
  /** The stored message, when there is one. */
  messageUuid?: string;
}

/** What the log keeps of an accepted request: its facts, and the body as received. */
function logBaseOf(req: IntakeRequest, bodyHash: string) {
  return { ...requestFacts(req), body: req.body, bodyHash };
}

type LogBase = ReturnType<typeof logBaseOf>;

export async function receive(req: IntakeRequest, ctx: IntakeContext): Promise<IntakeAnswer> {
  const h = req.headers;
  const originatorDomain = addressDomain(h.originator) ?? "";
  const bodyHash = createHash("sha256").update(req.body).digest("base64");
  const logBase = logBaseOf(req, bodyHash);

  let auth: Authentication;
  try {
    auth = await authenticate({
      fields: req.fields,
      body: req.body,
      originatorDomain,
      remoteAddress: req.remoteAddress,
      hosted: ctx.hosted,
      trust: ctx.trust,
      alignment: ctx.alignment,
      keys: req.keys ?? ctx.keys,
      nowMs: ctx.nowMs(),
      allowSha1: ctx.allowSha1,
      verifyDeadlineMs: ctx.verifyDeadlineMs,
      lifetime: ctx.signatureLifetime,
    });
  } catch (e) {
    if (!(e instanceof AuthenticationError)) throw e;
    const v = e.verdict;
    const answer = refusal(e, e.retryAfterSeconds);
    logRefusal(ctx, { ...req, bodySha256: bodyHash }, answer, {
      reason: e.publicMessage,
      direction: "inbound",
      peerDomain: v?.domain ?? originatorDomain,
      dkimResult: v ? (v.ok ? "pass" : "fail") : "none",
      dkimDomain: v?.domain,
      dkimSelector: v?.selector,
      dkimReason: v && !v.ok ? `${v.reason}: ${v.message}` : e.publicMessage,
    });
    return answer;
  }

  // A copy of a request gets its first answer (replays.ts): from the copy still being processed, or
  // from the database. Between the two checks and run() nothing awaits, so no copy slips in between.
  const replay = replayKeyOf({ auth, messageId: h.messageId, bodySha256: bodyHash, nowMs: ctx.nowMs() });
  if (!replay) return accept(req, ctx, { auth, logBase });
  const pending = ctx.inFlight.pending(replay.key);
  if (pending) return asReplay(await pending);
  const earlier = storedAnswer(ctx.db, { key: replay.key, nowMs: ctx.nowMs() });
  if (earlier) return asReplay(earlier);
  return ctx.inFlight.run(replay.key, () => accept(req, ctx, { auth, logBase, replay }));
}

function asReplay(first: IntakeAnswer): IntakeAnswer {
  return { ...first, headers: { ...first.headers, "iSchedule-Replay": "true" } };
}

/** An authenticated request: the iTIP checks, routing, the durable store, delivery and the answer. */
async function accept(
  req: IntakeRequest,
  ctx: IntakeContext,
  o: { auth: Authentication; logBase: LogBase; replay?: ReplayClaim },
): Promise<IntakeAnswer> {
  const { auth, logBase } = o;
  const signature =
    auth.kind === "dkim"
      ? {
          dkimResult: "pass" as const,
          dkimDomain: auth.verdict.domain,
          dkimSelector: auth.verdict.selector,
          dkimReason: `verified with the key from ${auth.verdict.keySource} (${auth.verdict.keyBits} bits)`,
          signerRule: auth.signerRule,
        }
      : { dkimResult: "trusted" as const };
  const h = req.headers;
  const originatorDomain = addressDomain(h.originator) ?? "";
  const caps = ctx.capabilities().capabilities;
  const direction = ctx.hosted(originatorDomain) ? "outbound" : "inbound";
  let itip: ItipMessage;
  try {
    itip = checkItip({
      body: req.body,
      contentType: h.contentType,
      originator: h.originator,
      recipients: h.recipients.map((r) => r.address),
      // A trusted local server's message is checked against what isched can send on, not only take.
      capabilities:
        direction === "outbound" && ctx.outboundComponents
          ? { ...caps, components: unionComponents([caps.components, ctx.outboundComponents]) }
          : caps,
    });
  } catch (e) {
    if (!(e instanceof IScheduleError)) throw e;
    const answer = refusal(e);
    logRefusal(ctx, { ...req, bodySha256: logBase.bodyHash }, answer, {
      ...signature,
      reason: e.publicMessage,
      direction,
      peerDomain: auth.peerDomain,
    });
    return answer;
  }

  // Route each recipient: hosted domains to their local target; other domains only for a trusted
  // local server's outbound message (never relay for a remote peer): refused with 3.7 otherwise.
  const deliveries: NewDelivery[] = h.recipients.map((r) => {
    const domain = addressDomain(r.address) ?? "";
    if (ctx.hosted(domain))
      return { recipient: r.address, domain, route: "local", target: ctx.localTargetLabel(domain) };
    const route = direction === "outbound" ? ctx.remoteRoute(domain) : undefined;
    if (route) {
      const fallbackAt = ctx.fallbackAfterMs === undefined ? undefined : ctx.nowMs() + ctx.fallbackAfterMs;
      return { recipient: r.address, domain, route, fallbackAt };
    }
    return {
      recipient: r.address,
      domain,
      route: "local",
      state: "failed",
      requestStatus: STATUS.invalidUser,
      lastError: `${domain || r.address} is not a domain served here; isched does not relay`,
    };
  });
  const message: NewMessage = {
    ...logBase,
    ...signature,
    direction,
    intake: direction === "outbound" ? "local" : "ischedule",
    peerDomain: auth.peerDomain,
    method: itip.method,
    component: itip.component,
    uid: itip.uid,
    summary: itip.summary,
    organizer: itip.organizer?.address,
    replay: o.replay,
  };
  // Targets that answer without I/O (the store) are asked before the commit, so their deliveries are
  // stored already decided, with their attempt: one transaction for the whole request.
  message.uuid = Bun.randomUUIDv7("hex", ctx.nowMs());
  const decided = await decideImmediately(ctx, message, itip, deliveries);
  // Each recipient that is to get the message claims its copy (resends.ts): a peer's copy sent again
  // under a new message id is delivered once.
  message.itipKeys = itipKeysOf({
    originator: h.originator,
    itip,
    recipients: deliveries.filter((d) => d.state !== "failed").map((d) => d.recipient),
    expiresAt: o.replay?.expiresAt ?? ctx.nowMs() + TRUSTED_WINDOW_MS,
  });
  const allDecided = deliveries.every((d) => (d.state ?? "queued") !== "queued");
  const freeBusy = itip.component === "VFREEBUSY";
  const itemsOf = (finished: Finished, copies: ReadonlyMap<number, ScheduleResponseItem>) =>
    responseItems({ recipients: h.recipients, deliveries, decided, finished, copies, freeBusy });
  const noCopies = new Map<number, ScheduleResponseItem>();
  const firstXml = allDecided ? scheduleResponseXml(itemsOf(new Map(), noCopies)) : undefined;
  const stored = store(
    ctx,
    firstXml === undefined ? message : { ...message, responseStatus: 200, responseBody: firstXml },
    deliveries,
  );
  if ("replayOf" in stored) return asReplay(stored.replayOf);
  if ("copyOf" in stored) {
    // Nothing of it was stored: every recipient that was to get it has it from an earlier message.
    const copies = await firstItems(ctx, h.recipients, stored.copyOf);
    return { status: 200, xml: scheduleResponseXml(itemsOf(new Map(), copies)) };
  }
  const accepted = stored;
  if (firstXml !== undefined && accepted.copies.size === 0)
    return { status: 200, xml: firstXml, messageUuid: accepted.uuid };
  // The deliveries stored, by the index of their recipient (those of accepted.copies have none).
  const ids = new Map<number, number>();
  let next = 0;
  deliveries.forEach((d, i) => {
    if (!accepted.copies.has(d.recipient)) ids.set(i, accepted.deliveryIds[next++]!);
  });
  // Copies of this message that arrive while it is being delivered wait for its answer.
  return ctx.inFlight.run(answerKey(accepted.messageId), async () => {
    const queued = [...ids]
      .filter(([i]) => (deliveries[i]!.state ?? "queued") === "queued")
      .map(([, id]) => id);
    const [now, copies] = await Promise.all([
      ctx.dispatcher.deliverNow(queued, ctx.deadlineMs),
      firstItems(ctx, h.recipients, accepted.copies),
    ]);
    if (queued.length > 0 && now.finished.size < queued.length) ctx.dispatcher.poke();
    const byIndex = new Map<number, RecipientOutcome>();
    for (const [i, id] of ids) {
      const outcome = now.finished.get(id);
      if (outcome) byIndex.set(i, outcome);
    }
    const xml = scheduleResponseXml(itemsOf(byIndex, copies));
    recordResponse(ctx.db, { messageId: accepted.messageId, status: 200, body: xml });
    return { status: 200, xml, messageUuid: accepted.uuid };
  });
}

/** The in-flight key under which a stored message's answer is awaited by its copies (resends.ts). */
const answerKey = (messageId: number): string => `message\n${messageId}`;

/**
 * For each recipient (by index) that an earlier message holds, the item that message's answer gave
 * it: awaited when that message is still being answered here, else read from the database.
 */
async function firstItems(
  ctx: IntakeContext,
  recipients: readonly Recipient[],
  holders: ReadonlyMap<string, number>,
): Promise<Map<number, ScheduleResponseItem>> {
  const answers = new Map<number, Promise<string | undefined>>();
  for (const id of new Set(holders.values())) {
    const pending = ctx.inFlight.pending(answerKey(id));
    const stored = () => answerOfMessage(ctx.db, id)?.xml;
    answers.set(id, pending ? pending.then((a) => a.xml, stored) : Promise.resolve(stored()));
  }
  const items = new Map<number, ScheduleResponseItem>();
  for (const [i, r] of recipients.entries()) {
    const holder = holders.get(r.address);
    if (holder === undefined) continue;
    const xml = await answers.get(holder)!;
    const first = xml === undefined ? undefined : itemOf(xml, r.address);
    items.set(i, first ?? { recipient: r.address, requestStatus: HELD_STATUS, description: HELD });
  }
  noteResent(ctx.db, { messageIds: [...holders.values()], nowMs: ctx.nowMs() });
  return items;
}

/**
 * queue.accept(); or the answer of the message that already holds the replay key; or, when every
 * recipient's copy is held by earlier messages, those messages (resends.ts). Replays in this process
 * wait for their first copy before this point, so a replay key taken is the database's word for the
 * rare rest (a key taken while the first copy's answer was lost in a crash).
 */
function store(
  ctx: IntakeContext,
  message: NewMessage,
  deliveries: readonly NewDelivery[],
): Accepted | { replayOf: IntakeAnswer } | { copyOf: ReadonlyMap<string, number> } {
  try {
    return ctx.queue.accept(message, deliveries);
  } catch (e) {
    if (e instanceof ItipCopyError) return { copyOf: e.held };
    if (!(e instanceof ReplayConflictError)) throw e;
    const first = storedAnswer(ctx.db, { key: e.key, nowMs: ctx.nowMs() });
    if (!first) throw e;
    return { replayOf: first };
  }
}

/** Asks the immediate local targets for their outcomes and records them on the deliveries. */
async function decideImmediately(
  ctx: IntakeContext,
  message: NewMessage,
  itip: ItipMessage,
  deliveries: NewDelivery[],
): Promise<Map<number, RecipientOutcome>> {
  const decided = new Map<number, RecipientOutcome>();
  const byTarget = new Map<DeliveryTarget, number[]>();
  deliveries.forEach((d, i) => {
    if ((d.state ?? "queued") !== "queued" || d.route !== "local") return;
    const target = ctx.localTarget?.(d.domain);
    if (target?.immediate) byTarget.set(target, [...(byTarget.get(target) ?? []), i]);
  });
  for (const [target, indexes] of byTarget) {
    const startedAt = ctx.nowMs();
    const attempt = await target.deliver(
      {
        uuid: message.uuid!,
        originator: message.originator,
        method: itip.method,
        component: itip.component,
        contentType: message.contentType,
        body: message.body as Uint8Array,
        uid: itip.uid,
        summary: itip.summary ?? null,
        dkimDomain: message.dkimDomain ?? null,
        dkimResult: message.dkimResult ?? "none",
      },
      indexes.map((i) => deliveries[i]!.recipient),
      AbortSignal.timeout(1000),
    );
    indexes.forEach((i, k) => {
      const outcome = attempt.outcomes[k];
      if (!outcome) return;
      const kind = classifyStatus(outcome.requestStatus);
      if (kind !== "delivered" && kind !== "permanent") return;
      const delivered = kind === "delivered";
      deliveries[i] = {
        ...deliveries[i]!,
        state: delivered ? "delivered" : "failed",
        requestStatus: outcome.requestStatus,
        lastError: delivered ? undefined : outcome.description,
        attempt: {
          startedAt,
          durationMs: 0,
          route: "local",
          target: target.label,
          requestStatus: outcome.requestStatus,
          outcome: delivered ? "delivered" : "permanent",
          error: delivered ? undefined : outcome.description,
        },
      };
      decided.set(i, outcome);
    });
  }
  return decided;
}

export function refusal(e: IScheduleError, retryAfterSeconds?: number): IntakeAnswer {
  return {
    status: e.httpStatus,
    xml: errorXml(e.element, e.publicMessage),
    headers: retryAfterSeconds ? { "Retry-After": String(retryAfterSeconds) } : undefined,
  };
}
