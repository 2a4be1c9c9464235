/**
 * A message as the console's detail view and `isched queue show` present it: the stored row with its
 * body as text, the iCalendar rendered for a person (describeItip), the DKIM verdict, and for each
 * recipient the attempt timeline with what happens next: the next retry, attempt n of max, and when
 * (or whether) iMIP takes over, as the delivery policy would decide it.
 */

import { formatRetrySchedule, LOCAL_GIVE_UP_MS } from "../delivery/policy.ts";
import { classifyStatus } from "../ischedule/status.ts";
import { describeItip, type ItipSummary, parseItip } from "../itip/index.ts";
import type { MessageDetail } from "../queue/queue.ts";
import { ACTION_STATES } from "../store/message-filter.ts";
import type {
  AttemptRow,
  BulkAction,
  DeliveryRow,
  DeliveryState,
  MessageFacts,
  MessageRow,
} from "../store/store.ts";
import { formatDuration } from "../time/duration.ts";

export interface DeliveryPlan {
  /** The attempt the next one will be (1-based). */
  nextAttempt: number;
  /** Attempts the retry schedule allows on this route; null: no such limit applies now. */
  maxAttempts: number | null;
  nextAttemptAt: number | null;
  /** "2 of 7" while the schedule runs, "1 made" once it no longer matters. */
  attemptsText: string;
  /** What happens next, in words: from the state, the route, the retry schedule and the flags. */
  next: string;
  /** Whether, when and how iMIP (e-mail) takes over, in words. */
  fallback: string;
  fallbackAt: number | null;
}

export interface DeliveryView extends Omit<DeliveryRow, "leaseOwner" | "leaseExpiresAt"> {
  inFlightUntil: number | null;
  attemptList: AttemptRow[];
  plan: DeliveryPlan;
  /** Which actions apply now, with the CLI command that does the same. */
  actions: { action: "retry" | "cancel" | "imip"; allowed: boolean; command: string }[];
}

/** A message as the API shows it: its row's columns (src/store/messages.ts), grouped and readable. */
export interface MessageView
  extends MessageFacts,
    Pick<MessageRow, "peerAddress" | "remoteMessageId" | "contentType" | "bodyHash" | "headers"> {
  /** The body as text. */
  body: string;
  dkim: {
    result: string;
    domain: string | null;
    selector: string | null;
    reason: string | null;
    /** Which rule accepted the signing domain for the Originator. */
    signerRule: string | null;
  };
  response: { status: number; body: string | null } | null;
  /**
   * Copies of this message the peer sent again under new message ids (src/inbound/resends.ts): each
   * got this message's answer, and nothing was delivered twice.
   */
  resent: { copies: number; lastAt: number | null } | null;
  /** A request refused at intake: why, what it was answered, and what is left of its body. */
  refusal: {
    reason: string;
    status: number | null;
    bodyBytes: number | null;
    bodySha256: string | null;
  } | null;
  itip: { ok: true; view: ItipSummary; sequence: number } | { ok: false; error: string };
  /** The body was emptied by retention (store/retention.ts): its size, and why, in a sentence. */
  bodyRemoved: { bytes: number; text: string } | null;
  deliveries: DeliveryView[];
  command: string;
}

export interface PlanContext {
  scheduleMs: readonly number[];
  /** isched can send e-mail (--smtp is set). */
  imipAvailable: boolean;
  /** --retain-bodies: how long bodies are kept (undefined: forever), to say why one is gone. */
  retainBodiesMs?: number;
}

export const ACTION_OF: Readonly<Record<"retry" | "cancel" | "imip", BulkAction>> = {
  retry: "retryNow",
  cancel: "cancel",
  imip: "requestImip",
};

const FINISHED: Readonly<Partial<Record<DeliveryState, string>>> = {
  delivered: "nothing: it was delivered",
  "sent-imip": "nothing: it was sent by iMIP (e-mail)",
  cancelled: "nothing: it was cancelled",
};

const IMIP_OFF = "off: isched runs without --smtp, so nothing is sent by e-mail";

/**
 * What happens next to a delivery, as the delivery policy and the queue's operator actions would have
 * it (src/delivery/policy.ts): every sentence is computed from the delivery, the retry schedule and
 * whether iMIP is on, so it never offers what this configuration cannot do.
 */
export function planOf(d: DeliveryRow, c: PlanContext): DeliveryPlan {
  const nextAttempt = d.attempts + 1;
  const scheduled = d.route !== "local" && (d.state === "queued" || d.state === "in-flight");
  const maxAttempts = scheduled ? c.scheduleMs.length + 1 : null;
  const base = {
    nextAttempt,
    maxAttempts,
    nextAttemptAt: scheduled || d.route === "local" ? d.nextAttemptAt : null,
    attemptsText: maxAttempts === null ? `${d.attempts} made` : `${d.attempts} of ${maxAttempts}`,
    fallbackAt: d.fallbackAt,
  };
  const finished = FINISHED[d.state];
  if (finished)
    return { ...base, nextAttemptAt: null, next: finished, fallback: "none: the delivery is finished" };

  if (d.state === "failed" || d.state === "broken") {
    const why =
      d.state === "broken"
        ? "its attempts kept stopping the worker"
        : d.requestStatus && classifyStatus(d.requestStatus) === "permanent"
          ? `the answer ${d.requestStatus} is final`
          : (d.lastError ?? "it failed");
    const emailed = c.imipAvailable ? "; Send by iMIP now e-mails it" : "";
    return {
      ...base,
      nextAttemptAt: null,
      next: `nothing until an operator acts (${why}): Retry now queues it again${emailed}`,
      fallback: c.imipAvailable ? "not automatic for a delivery that failed: Send by iMIP now" : IMIP_OFF,
    };
  }

  const when = d.nextAttemptAt === null ? "" : ` at ${new Date(d.nextAttemptAt).toISOString()}`;
  if (d.route === "local") {
    const every = formatDuration(c.scheduleMs.at(-1) ?? 0);
    const until = new Date(d.createdAt + LOCAL_GIVE_UP_MS).toISOString();
    return {
      ...base,
      next: `attempt ${nextAttempt}${when}; our own calendar server is retried every ${every} at most, until ${until}`,
      fallback: "none: deliveries to our own calendar server are not e-mailed",
    };
  }
  const schedule = formatRetrySchedule(c.scheduleMs);
  const next = `attempt ${nextAttempt} of ${maxAttempts}${when} (retry schedule ${schedule})`;
  if (d.route === "imip") {
    return {
      ...base,
      next,
      fallback: `this delivery goes by iMIP (e-mail); it fails after attempt ${maxAttempts}`,
    };
  }
  if (!c.imipAvailable)
    return {
      ...base,
      next,
      fallback: `never: iMIP is off (no --smtp), so the delivery fails after attempt ${maxAttempts}`,
    };
  const at =
    d.fallbackAt === null
      ? ""
      : ` or at ${new Date(d.fallbackAt).toISOString()} (--fallback-after), whichever comes first`;
  return {
    ...base,
    next,
    fallback: `by iMIP after attempt ${maxAttempts}${at}; at once if the peer has no iSchedule service (5.2/5.3)`,
  };
}

const DAY_MS = 86_400_000;

/**
 * A body retention emptied (it keeps the size in body_size and leaves an empty body), with the
 * sentence the console shows; null for a message that still has its body, and for a refusal.
 */
function removedBody(
  m: Pick<MessageRow, "body" | "bodySize" | "refusal">,
  retainBodiesMs: number | undefined,
): MessageView["bodyRemoved"] {
  if (m.refusal !== null || m.body.length > 0 || m.bodySize === null || m.bodySize === 0) return null;
  const after =
    retainBodiesMs === undefined ? "by retention" : `after ${Math.round(retainBodiesMs / DAY_MS)} days`;
  return {
    bytes: m.bodySize,
    text: `body removed ${after} (--retain-bodies); it was ${m.bodySize} bytes, what became of it is kept`,
  };
}

export function messageView(detail: MessageDetail, c: PlanContext): MessageView {
  const m = detail.message;
  const body = Buffer.from(m.body).toString("utf8");
  const bodyRemoved = removedBody(m, c.retainBodiesMs);
  let itip: MessageView["itip"];
  if (m.refusal !== null) {
    itip = { ok: false, error: "not kept: the request was refused, and a refusal keeps no body" };
  } else if (bodyRemoved) {
    itip = { ok: false, error: `not kept: ${bodyRemoved.text}` };
  } else {
    try {
      const parsed = parseItip(body);
      itip = { ok: true, view: describeItip(parsed), sequence: parsed.sequence };
    } catch (e) {
      itip = { ok: false, error: (e as Error).message };
    }
  }
  return {
    id: m.id,
    uuid: m.uuid,
    receivedAt: m.receivedAt,
    direction: m.direction,
    intake: m.intake,
    peerAddress: m.peerAddress,
    peerDomain: m.peerDomain,
    remoteMessageId: m.remoteMessageId,
    originator: m.originator,
    method: m.method,
    component: m.component,
    uid: m.uid,
    summary: m.summary,
    organizer: m.organizer,
    contentType: m.contentType,
    body,
    bodyHash: m.bodyHash,
    headers: m.headers,
    dkim: {
      result: m.dkimResult,
      domain: m.dkimDomain,
      selector: m.dkimSelector,
      reason: m.dkimReason,
      signerRule: m.signerRule,
    },
    response: m.responseStatus === null ? null : { status: m.responseStatus, body: m.responseBody },
    resent: m.resends > 0 ? { copies: m.resends, lastAt: m.lastResentAt } : null,
    refusal:
      m.refusal === null
        ? null
        : { reason: m.refusal, status: m.responseStatus, bodyBytes: m.bodySize, bodySha256: m.bodyHash },
    itip,
    bodyRemoved,
    command: `isched queue show ${m.id}`,
    deliveries: detail.deliveries.map(({ leaseOwner: _o, leaseExpiresAt, ...d }) => ({
      ...d,
      inFlightUntil: d.state === "in-flight" ? leaseExpiresAt : null,
      plan: planOf({ ...d, leaseOwner: _o, leaseExpiresAt }, c),
      actions: (["retry", "cancel", "imip"] as const).map((action) => ({
        action,
        allowed: ACTION_STATES[ACTION_OF[action]].includes(d.state) && (action !== "imip" || c.imipAvailable),
        command: `isched queue ${action} ${d.id}`,
      })),
    })),
  };
}
