/**
 * The message log and queue control: search, detail, live updates, and the operator actions
 * (retry now, cancel, send by iMIP now) on chosen deliveries, a message's deliveries, or every
 * delivery a filter names. A filter-wide action must say how many deliveries it expects to change
 * (the count the page confirmed), and is refused with the current count when the set has changed.
 * A request refused at intake has no delivery: an action on it, or on `status:refused`, is answered
 * 409 with the reason, so nobody takes "0 changed" for "done".
 */
import type { Database } from "bun:sqlite";
import type { DeliveryQueue } from "../queue/queue.ts";
import { deliveryStateCounts } from "../store/console-stats.ts";
import { getDeliveryRow } from "../store/deliveries.ts";
import { inbox } from "../store/inbox.ts";
import {
  actionableDeliveries,
  deliveriesForAction,
  deliveryIdsOfMessage,
  type MessageFilter,
  namesRefused,
  searchMessages,
  unknownDeliveries,
} from "../store/message-search.ts";
import { getMessageRow, type MessageRow } from "../store/messages.ts";
import { FilterError, parseFilter } from "./filter.ts";
import { apiError, idList, json, RequestError, type Route, readJson } from "./http.ts";
import { type LiveFeed, MAX_SUBSCRIBERS } from "./live.ts";
import { ACTION_OF, messageView, type PlanContext } from "./message-view.ts";

export interface MessageRouteOptions {
  db: Database;
  queue: DeliveryQueue;
  live: LiveFeed;
  plan: PlanContext;
  nowMs: () => number;
  /** Wakes the dispatcher after an action made deliveries due now. */
  poke?: () => void;
  /** Whether a session cookie value still signs someone in (a live view ends with its session). */
  sessionAlive: (cookieValue: string) => boolean;
  log: { log(level: "info", message: string, fields?: Record<string, string | number>): void };
}

/** The most deliveries one filter-wide action may change. */
export const MAX_BULK = 100_000;

function filterOf(q: string | null, nowMs: number): MessageFilter {
  try {
    return parseFilter(q ?? "", nowMs);
  } catch (e) {
    if (e instanceof FilterError)
      throw new RequestError(400, e.message, { position: e.position, suggestion: e.suggestion });
    throw e;
  }
}

function limitOf(raw: string | null, fallback: number, max: number): number {
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    throw new RequestError(400, `limit must be a whole number from 1 to ${max}`);
  return Number(raw);
}

function beforeOf(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d+$/.test(raw)) throw new RequestError(400, "before must be a message id");
  return Number(raw);
}

/** Why an action on a refused request does nothing. */
function refusedSentence(m: MessageRow): string {
  const status = m.responseStatus === null ? "" : ` with HTTP ${m.responseStatus}`;
  return `message ${m.id} was refused at intake${status} (${m.refusal}): a refused request has no deliveries and is never delivered`;
}

export function messageRoutes(o: MessageRouteOptions): Route[] {
  const actionRoute = (action: "retry" | "cancel" | "imip", summary: string): Route => ({
    method: "POST",
    path: `/deliveries/${action}`,
    access: "change",
    summary,
    async handle({ request, caller }) {
      const body = await readJson(request);
      const ids = idList(body, "ids");
      const messageId = body.messageId;
      const q = body.q;
      const given = [ids !== undefined, messageId !== undefined, q !== undefined].filter(Boolean).length;
      if (given !== 1) throw new RequestError(400, "give exactly one of ids, messageId or q");
      const kind = ACTION_OF[action];
      let targets: number[];
      if (ids !== undefined) {
        const unknown = unknownDeliveries(o.db, ids);
        if (unknown.length > 0)
          return apiError(
            404,
            `no delivery ${unknown.slice(0, 10).join(", ")} (see the message's deliveries)`,
          );
        targets = actionableDeliveries(o.db, ids, kind);
      } else if (messageId !== undefined) {
        if (!Number.isSafeInteger(messageId)) throw new RequestError(400, "messageId must be a message id");
        const message = getMessageRow(o.db, messageId as number);
        if (!message) return apiError(404, `no message ${messageId}`);
        if (message.refusal !== null) return apiError(409, refusedSentence(message));
        targets = actionableDeliveries(o.db, deliveryIdsOfMessage(o.db, message.id), kind);
      } else {
        if (typeof q !== "string") throw new RequestError(400, "q must be a filter");
        const filter = filterOf(q, o.nowMs());
        if (namesRefused(filter))
          return apiError(
            409,
            "status:refused names requests refused at intake: they have no deliveries and are never retried, cancelled or sent by iMIP",
          );
        targets = deliveriesForAction(o.db, { filter, action: kind, max: MAX_BULK });
        if (targets.length > MAX_BULK)
          return apiError(413, `the filter names more than ${MAX_BULK} deliveries: narrow it`);
      }
      if (action === "imip" && !o.plan.imipAvailable)
        return apiError(409, "iMIP is off: start isched with --smtp to send by e-mail");
      // Which deliveries of which messages, so that a caller can follow what the action leads to.
      const deliveries = targets.slice(0, 1000).map((id) => ({
        id,
        messageId: getDeliveryRow(o.db, id)?.messageId ?? null,
      }));
      if (body.dryRun === true)
        return json(200, { action, count: targets.length, ids: targets.slice(0, 1000), deliveries });
      if (q !== undefined && body.expect === undefined)
        throw new RequestError(
          400,
          "a filter-wide action needs expect: the count you confirmed (ask with dryRun)",
        );
      if (body.expect !== undefined && body.expect !== targets.length) {
        return apiError(
          409,
          `the set changed: ${targets.length} deliveries now, not ${body.expect}; confirm again`,
          {
            count: targets.length,
          },
        );
      }
      const changed =
        kind === "retryNow"
          ? o.queue.retryNow(targets)
          : kind === "cancel"
            ? o.queue.cancel(targets)
            : o.queue.requestImip(targets);
      if (changed > 0 && kind !== "cancel") o.poke?.();
      o.log.log("info", `console: ${action} deliveries`, { count: changed, via: caller?.via ?? "" });
      return json(200, { action, count: targets.length, changed });
    },
  });

  return [
    {
      method: "GET",
      path: "/health",
      access: "read",
      summary: "the queue's counts by state",
      handle: () => json(200, { ok: true, queue: deliveryStateCounts(o.db) }),
    },
    {
      method: "GET",
      path: "/inbox",
      access: "read",
      summary: "messages the store target delivered to ?recipient=, newest first (?limit=, ?before=)",
      handle({ url }) {
        const recipient = url.searchParams.get("recipient");
        if (!recipient)
          return apiError(400, "recipient is required, e.g. ?recipient=mailto:user@example.com");
        const limit = limitOf(url.searchParams.get("limit"), 50, 500);
        return json(
          200,
          inbox(o.db, { recipient, limit, beforeId: beforeOf(url.searchParams.get("before")) }),
        );
      },
    },
    {
      method: "GET",
      path: "/messages",
      access: "read",
      summary:
        "the message log, newest first: ?q=FILTER&limit=50&before=ID (keyset paging); imipAvailable says whether Send by iMIP can work",
      handle({ url }) {
        const filter = filterOf(url.searchParams.get("q"), o.nowMs());
        const limit = limitOf(url.searchParams.get("limit"), 50, 500);
        const page = searchMessages(o.db, {
          filter,
          limit,
          beforeId: beforeOf(url.searchParams.get("before")),
        });
        return json(200, { ...page, imipAvailable: o.plan.imipAvailable });
      },
    },
    {
      method: "GET",
      path: "/messages/:id",
      access: "read",
      summary: "one message (by id or uuid) with its deliveries, attempts and what happens next",
      handle({ params }) {
        const key = /^\d+$/.test(params.id!) ? Number(params.id) : params.id!;
        const detail = o.queue.getMessage(key);
        if (!detail) return apiError(404, `no message ${params.id}`);
        return json(200, messageView(detail, o.plan));
      },
    },
    {
      method: "GET",
      path: "/events",
      access: "read",
      summary: "server-sent events: changed messages matching ?q=, and the queue counts",
      handle({ url, request, caller, keepOpen }) {
        const filter = filterOf(url.searchParams.get("q"), o.nowMs());
        if (o.live.size >= MAX_SUBSCRIBERS) return apiError(503, "too many live views are open");
        keepOpen();
        const cookieValue = caller?.cookieValue;
        return o.live.stream({
          filter,
          signal: request.signal,
          // Signing out, or a new password, ends the session's streams too.
          stillAllowed: () => cookieValue === undefined || o.sessionAlive(cookieValue),
        });
      },
    },
    actionRoute("retry", "retry now: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
    actionRoute("cancel", "cancel: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
    actionRoute("imip", "send by iMIP now: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
  ];
}
