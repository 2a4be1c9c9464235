/**
 * A scheduling POST from its checked headers to the answer, for a remote peer or the organisation's
 * own trusted server: authenticate (DKIM or a trusted source), answer a replay with its first
 * answer, check the iTIP body against the capabilities, and hand the message to the intake
 * (src/intake/accept.ts: the iTIP rules, routing, the commit, the attempt by the deadline); then
 * answer per recipient (answers.ts: 1.1 for what isched holds but has not delivered yet), the first
 * answer for a copy an earlier message holds (resends.ts). A refused request is logged too (with its
 * verdict and the answer) when its headers were readable, so the log shows forgeries and mistakes:
 * its metadata only, never its body, and never with a delivery (refusals.ts).
 */

import { createHash } from "node:crypto";
import type { KeyResolver } from "../dkim/key-resolver.ts";
import type { SignatureLifetime } from "../dkim/verify.ts";
import type { AcceptResult, IntakeService, Known } from "../intake/accept.ts";
import { addressDomain } from "../ischedule/address.ts";
import type { ComponentCapability } from "../ischedule/capabilities.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import type { Recipient } from "../ischedule/headers.ts";
import { type ScheduleResponseItem, scheduleResponseXml } from "../ischedule/xml-writer.ts";
import type { ItipMessage } from "../itip/index.ts";
import type { IschedMetrics } from "../metrics/isched-metrics.ts";
import { ReplayConflictError } from "../store/errors.ts";
import type { ReplayClaim } from "../store/store.ts";
import { type EndpointAnswer, type Finished, HELD, HELD_STATUS, refusal, responseItems } from "./answers.ts";
import { type Authentication, AuthenticationError, authenticate } from "./authenticate.ts";
import { type PublishedCapabilities, unionComponents } from "./capabilities.ts";
import type { CheckedHeaders } from "./header-checks.ts";
import { checkItip } from "./itip-checks.ts";
import type { RefusalLog } from "./refusal-log.ts";
import { logRefusal, requestFacts } from "./refusals.ts";
import { type InFlightRequests, replayKeyOf, storedAnswer, TRUSTED_WINDOW_MS } from "./replays.ts";
import { answerOfMessage, itemOf } from "./resends.ts";
import type { AlignmentMode, TrustPolicy } from "./trust-policy.ts";

export interface ReceiverContext {
  /** Where accepted messages go: src/intake. */
  intake: IntakeService;
  keys: KeyResolver;
  capabilities: () => PublishedCapabilities;
  trust: (domain: string) => TrustPolicy | Promise<TrustPolicy>;
  /** How a signing domain must relate to the Originator's domain (signer-alignment.ts; default relaxed). */
  alignment?: AlignmentMode;
  /** How long a POST waits for its local targets before answering 1.1 (held). */
  deadlineMs: number;
  allowSha1: boolean;
  /** One deadline for a request's DKIM verification, key retrieval included. */
  verifyDeadlineMs: number;
  /** How long a signature stays good (verify.ts): also how long its replay key is kept. */
  signatureLifetime: SignatureLifetime;
  /** Requests being processed, by replay key (and messages being answered): a copy waits for the first. */
  inFlight: InFlightRequests<EndpointAnswer>;
  /** Where refused requests are logged: metadata only, pruned oldest first. */
  refusals: RefusalLog;
  nowMs: () => number;
  /** What isched can send to other domains, on top of what its local targets take (outbound checks). */
  outboundComponents?: readonly ComponentCapability[];
  /** Counts each request's DKIM verdict. */
  metrics?: Pick<IschedMetrics, "dkim">;
}

export interface ScheduleRequest {
  headers: CheckedHeaders;
  fields: readonly (readonly [string, string])[];
  body: Uint8Array;
  remoteAddress: string;
  /** The key resolver of the place reserveKeyLookup() gave this request (default ctx.keys). */
  keys?: KeyResolver;
}

/** What the log keeps of an accepted request: its facts, and the body as received. */
function logBaseOf(req: ScheduleRequest, bodyHash: string) {
  return { ...requestFacts(req), body: req.body, bodyHash };
}

type LogBase = ReturnType<typeof logBaseOf>;

export async function receive(req: ScheduleRequest, ctx: ReceiverContext): Promise<EndpointAnswer> {
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
      hosted: ctx.intake.hosted,
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
    if (v) ctx.metrics?.dkim.inc(v.ok ? { result: "pass" } : { result: "fail", reason: v.reason });
    else if (!req.fields.some(([n]) => n.toLowerCase() === "dkim-signature"))
      ctx.metrics?.dkim.inc({ result: "none" });
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

  ctx.metrics?.dkim.inc({ result: auth.kind === "dkim" ? "pass" : "trusted" });

  // A copy of a request gets its first answer (replays.ts): from the copy still being processed, or
  // from the database. The database read awaits, so the in-flight check is made again after it:
  // between that last check and run() nothing awaits, so no copy slips in between.
  const replay = replayKeyOf({ auth, messageId: h.messageId, bodySha256: bodyHash, nowMs: ctx.nowMs() });
  if (!replay) return accept(req, ctx, { auth, logBase });
  const pending = ctx.inFlight.pending(replay.key);
  if (pending) return asReplay(await pending);
  const earlier = await storedAnswer(ctx.intake.queue, replay.key);
  if (earlier) return asReplay(earlier);
  const started = ctx.inFlight.pending(replay.key);
  if (started) return asReplay(await started);
  return ctx.inFlight.run(replay.key, () => accept(req, ctx, { auth, logBase, replay }));
}

function asReplay(first: EndpointAnswer): EndpointAnswer {
  return { ...first, headers: { ...first.headers, "iSchedule-Replay": "true" } };
}

/** An authenticated request: the body checks, the intake, and the answer. */
async function accept(
  req: ScheduleRequest,
  ctx: ReceiverContext,
  o: { auth: Authentication; logBase: LogBase; replay?: ReplayClaim },
): Promise<EndpointAnswer> {
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
  const caps = ctx.capabilities().capabilities;
  // A message whose Originator isched serves came from a trusted local server, to be sent on.
  const outbound = ctx.intake.hosted(addressDomain(h.originator) ?? "");
  const refused = (e: IScheduleError): EndpointAnswer => {
    const answer = refusal(e);
    logRefusal(ctx, { ...req, bodySha256: logBase.bodyHash }, answer, {
      ...signature,
      reason: e.publicMessage,
      direction: outbound ? "outbound" : "inbound",
      peerDomain: auth.peerDomain,
    });
    return answer;
  };
  let itip: ItipMessage;
  try {
    itip = checkItip({
      body: req.body,
      contentType: h.contentType,
      // A trusted local server's message is checked against what isched can send on, not only take.
      capabilities:
        outbound && ctx.outboundComponents
          ? { ...caps, components: unionComponents([caps.components, ctx.outboundComponents]) }
          : caps,
    });
  } catch (e) {
    if (!(e instanceof IScheduleError)) throw e;
    return refused(e);
  }

  const freeBusy = itip.component === "VFREEBUSY";
  const itemsOf = (known: Known, finished: Finished, copies: ReadonlyMap<number, ScheduleResponseItem>) =>
    responseItems({
      recipients: h.recipients,
      deliveries: known.deliveries,
      decided: known.decided,
      finished,
      copies,
      freeBusy,
    });
  // The answer when every recipient is decided before the commit: stored in the same transaction.
  let firstXml: string | undefined;
  // When the answer comes after the commit, copies of this message that arrive meanwhile wait for it.
  let answered: ReturnType<typeof Promise.withResolvers<EndpointAnswer>> | undefined;
  let copies: Promise<Map<number, ScheduleResponseItem>> = Promise.resolve(new Map());
  let result: AcceptResult;
  try {
    result = await ctx.intake.accept(
      {
        source: outbound ? "local" : "ischedule",
        itip,
        originator: h.originator,
        recipients: h.recipients.map((r) => r.address),
        // logBase is this request's own: completed in place rather than copied.
        stored: Object.assign(logBase, signature, { peerDomain: auth.peerDomain, replay: o.replay }),
        // Each recipient that is to get the message claims its copy (resends.ts).
        copiesUntil: o.replay?.expiresAt ?? ctx.nowMs() + TRUSTED_WINDOW_MS,
      },
      {
        deadlineMs: ctx.deadlineMs,
        answerBeforeCommit: (known) => {
          firstXml = scheduleResponseXml(itemsOf(known, new Map(), new Map()));
          return { responseStatus: 200, responseBody: firstXml };
        },
        onStored: (stored) => {
          if (firstXml !== undefined && stored.accepted.copies.size === 0) return;
          const waiting = Promise.withResolvers<EndpointAnswer>();
          answered = waiting;
          ctx.inFlight.run(answerKey(stored.accepted.messageId), () => waiting.promise).catch(() => {});
          copies = firstItems(ctx, h.recipients, stored.accepted.copies);
        },
      },
    );
  } catch (e) {
    answered?.reject(e);
    if (!(e instanceof IScheduleError)) throw e;
    return refused(e);
  }
  try {
    if (result.kind === "replay") {
      // Replays in this process wait for their first copy before this point, so a replay key taken is
      // the database's word for the rare rest (a key taken while the first copy's answer was lost).
      const first = await storedAnswer(ctx.intake.queue, result.key);
      if (!first) throw new ReplayConflictError(result.key);
      return asReplay(first);
    }
    if (result.kind === "copies") {
      // Nothing of it was stored: every recipient that was to get it has it from an earlier message.
      const held = await firstItems(ctx, h.recipients, result.held);
      return { status: 200, xml: scheduleResponseXml(itemsOf(result.known, new Map(), held)) };
    }
    const messageUuid = result.accepted.uuid;
    if (firstXml !== undefined && result.accepted.copies.size === 0)
      return { status: 200, xml: firstXml, messageUuid };
    const xml = scheduleResponseXml(itemsOf(result, result.finished, await copies));
    await ctx.intake.queue.recordResponse({ messageId: result.accepted.messageId, status: 200, body: xml });
    const answer = { status: 200, xml, messageUuid };
    answered?.resolve(answer);
    return answer;
  } catch (e) {
    answered?.reject(e);
    throw e;
  }
}

/** The in-flight key under which a stored message's answer is awaited by its copies (resends.ts). */
const answerKey = (messageId: number): string => `message\n${messageId}`;

/**
 * For each recipient (by index) that an earlier message holds, the item that message's answer gave
 * it: awaited when that message is still being answered here, else read from the database.
 */
async function firstItems(
  ctx: ReceiverContext,
  recipients: readonly Recipient[],
  holders: ReadonlyMap<string, number>,
): Promise<Map<number, ScheduleResponseItem>> {
  const items = new Map<number, ScheduleResponseItem>();
  if (holders.size === 0) return items;
  const answers = new Map<number, Promise<string | undefined>>();
  for (const id of new Set(holders.values())) {
    const pending = ctx.inFlight.pending(answerKey(id));
    const stored = async () => (await answerOfMessage(ctx.intake.queue, id))?.xml;
    answers.set(id, pending ? pending.then((a) => a.xml, stored) : stored());
  }
  for (const [i, r] of recipients.entries()) {
    const holder = holders.get(r.address);
    if (holder === undefined) continue;
    const xml = await answers.get(holder)!;
    const first = xml === undefined ? undefined : itemOf(xml, r.address);
    items.set(i, first ?? { recipient: r.address, requestStatus: HELD_STATUS, description: HELD });
  }
  await ctx.intake.queue.noteResent([...holders.values()]);
  return items;
}
