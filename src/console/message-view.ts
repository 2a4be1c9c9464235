/**
 * A message as the console's detail view and `isched queue show` present it: the stored row with its
 * body as text, the iCalendar rendered for a person (describeItip), the DKIM verdict, and for each
 * recipient the attempt timeline with what happens next: the next retry, attempt n of max, and when
 * (or whether) iMIP takes over, as decide.ts would decide it.
 */
import { describeItip, type ItipSummary, parseItip } from "../itip/index.ts";
import type { MessageDetail } from "../queue/queue.ts";
import type { AttemptRow } from "../store/attempts.ts";
import type { DeliveryRow, DeliveryState } from "../store/deliveries.ts";
import { ACTION_STATES, type BulkAction } from "../store/message-search.ts";
import type { HeaderList } from "../store/messages.ts";

export interface DeliveryPlan {
  /** The attempt the next one will be (1-based). */
  nextAttempt: number;
  /** Attempts the retry schedule allows on this route; null: local deliveries keep trying. */
  maxAttempts: number | null;
  nextAttemptAt: number | null;
  /** When iMIP takes over, in words. */
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

export interface MessageView {
  id: number;
  uuid: string;
  receivedAt: number;
  direction: string;
  intake: string;
  peerAddress: string | null;
  peerDomain: string | null;
  remoteMessageId: string | null;
  originator: string;
  method: string;
  component: string;
  uid: string | null;
  summary: string | null;
  organizer: string | null;
  contentType: string;
  body: string;
  bodyHash: string | null;
  headers: HeaderList | null;
  dkim: { result: string; domain: string | null; selector: string | null; reason: string | null };
  response: { status: number; body: string | null } | null;
  /** A request refused at intake: why, what it was answered, and what is left of its body. */
  refusal: {
    reason: string;
    status: number | null;
    bodyBytes: number | null;
    bodySha256: string | null;
  } | null;
  itip: { ok: true; view: ItipSummary; sequence: number } | { ok: false; error: string };
  deliveries: DeliveryView[];
  command: string;
}

export interface PlanContext {
  scheduleMs: readonly number[];
  imipAvailable: boolean;
}

export const ACTION_OF: Readonly<Record<"retry" | "cancel" | "imip", BulkAction>> = {
  retry: "retryNow",
  cancel: "cancel",
  imip: "requestImip",
};

const FINAL: ReadonlySet<DeliveryState> = new Set(["delivered", "sent-imip", "cancelled"]);

export function planOf(d: DeliveryRow, c: PlanContext): DeliveryPlan {
  const nextAttempt = d.attempts + 1;
  const maxAttempts = d.route === "local" ? null : c.scheduleMs.length + 1;
  const base = { nextAttempt, maxAttempts, nextAttemptAt: d.nextAttemptAt, fallbackAt: d.fallbackAt };
  if (FINAL.has(d.state)) return { ...base, nextAttemptAt: null, fallback: "none: the delivery is finished" };
  if (d.state === "failed") {
    return {
      ...base,
      nextAttemptAt: null,
      fallback: "none: the delivery failed; retry now (or send by iMIP now) queues it again",
    };
  }
  if (d.state === "broken") {
    return {
      ...base,
      nextAttemptAt: null,
      fallback: "none: its attempts kept stopping the worker; retry now queues it again",
    };
  }
  if (d.route === "imip") return { ...base, fallback: "this delivery goes by iMIP (e-mail)" };
  if (d.route === "local") {
    return { ...base, fallback: "none: deliveries to our own calendar server keep trying for 30 days" };
  }
  if (!c.imipAvailable) {
    return {
      ...base,
      fallback: `never: iMIP is off (no --smtp), so the delivery fails after attempt ${maxAttempts}`,
    };
  }
  const at =
    d.fallbackAt === null ? "" : ` or at ${new Date(d.fallbackAt).toISOString()}, whichever comes first`;
  return {
    ...base,
    fallback: `by iMIP after attempt ${maxAttempts}${at}; at once if the peer has no iSchedule service (5.2/5.3)`,
  };
}

export function messageView(detail: MessageDetail, c: PlanContext): MessageView {
  const m = detail.message;
  const body = Buffer.from(m.body).toString("utf8");
  let itip: MessageView["itip"];
  if (m.refusal !== null) {
    itip = { ok: false, error: "not kept: the request was refused, and a refusal keeps no body" };
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
    dkim: { result: m.dkimResult, domain: m.dkimDomain, selector: m.dkimSelector, reason: m.dkimReason },
    response: m.responseStatus === null ? null : { status: m.responseStatus, body: m.responseBody },
    refusal:
      m.refusal === null
        ? null
        : { reason: m.refusal, status: m.responseStatus, bodyBytes: m.bodySize, bodySha256: m.bodyHash },
    itip,
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
