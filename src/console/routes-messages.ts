/**
 * The message log and queue control: search, detail, live updates, and the operator actions
 * (retry now, cancel, send by iMIP now) on chosen deliveries, a message's deliveries, or every
 * delivery a filter names. A filter-wide action must say how many deliveries it expects to change
 * (the count the page confirmed), and is refused with the current count when the set has changed.
 * A request refused at intake has no delivery: an action on it, or on `status:refused`, is answered
 * 409 with the reason, so nobody takes "0 changed" for "done".
 */
import { t } from "elysia";
import type { DeliveryQueue } from "../queue/queue.ts";
import { namesRefused } from "../store/message-filter.ts";
import type { MessageFilter, MessageRow, Store } from "../store/store.ts";
import { FilterError, parseFilter } from "./filter.ts";
import { apiError, json, RequestError, type Route, route, safeInteger } from "./http.ts";
import { type LiveFeed, MAX_SUBSCRIBERS } from "./live.ts";
import { ACTION_OF, messageView, type PlanContext } from "./message-view.ts";

export interface MessageRouteOptions {
  store: Store;
  queue: DeliveryQueue;
  live: LiveFeed;
  plan: PlanContext;
  nowMs: () => number;
  /** Wakes the dispatcher after an action made deliveries due now. */
  poke?: () => void;
  /** Whether a session cookie value still signs someone in (a live view ends with its session). */
  sessionAlive: (cookieValue: string) => Promise<boolean>;
  log: { log(level: "info", message: string, fields?: Record<string, string | number>): void };
}

/** The most deliveries one filter-wide action may change. */
export const MAX_BULK = 100_000;
/** The most delivery ids one action may list. */
const MAX_BULK_IDS = 100_000;

function filterOf(q: string | undefined, nowMs: number): MessageFilter {
  try {
    return parseFilter(q ?? "", nowMs);
  } catch (e) {
    if (e instanceof FilterError)
      throw new RequestError(400, e.message, { position: e.position, suggestion: e.suggestion });
    throw e;
  }
}

const MAX_PAGE = 500;
/**
 * A page of the log or an inbox: how many (default 50), older than which message id (keyset paging).
 * Digits only, as strings: a query's numbers are never Elysia's coerced numbers (see mount.ts).
 */
const paging = {
  limit: t.Optional(
    t.String({
      // 1 to 500, leading zeros allowed.
      pattern: "^0*([1-9][0-9]?|[1-4][0-9][0-9]|500)$",
      error: `limit must be a whole number from 1 to ${MAX_PAGE}`,
    }),
  ),
  before: t.Optional(t.String({ pattern: "^[0-9]+$", error: "before must be a message id" })),
};
/** The page's size and start as numbers. */
const pageOf = (q: { limit?: string; before?: string }) => ({
  limit: q.limit === undefined ? 50 : Number(q.limit),
  beforeId: q.before === undefined ? undefined : Number(q.before),
});
const filterQuery = t.Optional(t.String({ error: "q must be a filter" }));

/** Which deliveries an action applies to: exactly one of ids, messageId or q (with expect). */
const actionBody = t.Object({
  ids: t.Optional(
    t.Array(safeInteger({ minimum: 1 }), {
      maxItems: MAX_BULK_IDS,
      error: `ids must be a list of ids (whole numbers from 1), not more than ${MAX_BULK_IDS} ids`,
    }),
  ),
  messageId: t.Optional(safeInteger({ error: "messageId must be a message id" })),
  q: t.Optional(t.String({ error: "q must be a filter" })),
  dryRun: t.Optional(t.Boolean({ error: "dryRun must be true or false" })),
  expect: t.Optional(safeInteger({ error: "expect must be the count you confirmed" })),
});

/** Why an action on a refused request does nothing. */
function refusedSentence(m: MessageRow): string {
  const status = m.responseStatus === null ? "" : ` with HTTP ${m.responseStatus}`;
  return `message ${m.id} was refused at intake${status} (${m.refusal}): a refused request has no deliveries and is never delivered`;
}

export function messageRoutes(o: MessageRouteOptions): Route[] {
  const actionRoute = (action: "retry" | "cancel" | "imip", summary: string): Route =>
    route({
      method: "POST",
      path: `/deliveries/${action}`,
      access: "change",
      summary,
      body: { schema: actionBody },
      async handle({ body, caller }) {
        const { ids, messageId, q } = body;
        const given = [ids !== undefined, messageId !== undefined, q !== undefined].filter(Boolean).length;
        if (given !== 1) throw new RequestError(400, "give exactly one of ids, messageId or q");
        const kind = ACTION_OF[action];
        let targets: number[];
        if (ids !== undefined) {
          const unknown = await o.store.unknownDeliveries(ids);
          if (unknown.length > 0)
            return apiError(
              404,
              `no delivery ${unknown.slice(0, 10).join(", ")} (see the message's deliveries)`,
            );
          targets = await o.store.actionableDeliveries(ids, kind);
        } else if (messageId !== undefined) {
          const message = await o.store.messageRow(messageId);
          if (!message) return apiError(404, `no message ${messageId}`);
          if (message.refusal !== null) return apiError(409, refusedSentence(message));
          targets = await o.store.actionableDeliveries(await o.store.deliveryIdsOfMessage(message.id), kind);
        } else {
          const filter = filterOf(q, o.nowMs());
          if (namesRefused(filter))
            return apiError(
              409,
              "status:refused names requests refused at intake: they have no deliveries and are never retried, cancelled or sent by iMIP",
            );
          targets = await o.store.deliveriesForAction({ filter, action: kind, max: MAX_BULK });
          if (targets.length > MAX_BULK)
            return apiError(413, `the filter names more than ${MAX_BULK} deliveries: narrow it`);
        }
        if (action === "imip" && !o.plan.imipAvailable)
          return apiError(409, "iMIP is off: start isched with --smtp to send by e-mail");
        // Which deliveries of which messages, so that a caller can follow what the action leads to.
        const deliveries = [];
        for (const id of targets.slice(0, 1000))
          deliveries.push({ id, messageId: (await o.store.deliveryRow(id))?.messageId ?? null });
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
            ? await o.queue.retryNow(targets)
            : kind === "cancel"
              ? await o.queue.cancel(targets)
              : await o.queue.requestImip(targets);
        if (changed > 0 && kind !== "cancel") o.poke?.();
        o.log.log("info", `console: ${action} deliveries`, { count: changed, via: caller?.via ?? "" });
        return json(200, { action, count: targets.length, changed });
      },
    });

  return [
    route({
      method: "GET",
      path: "/health",
      access: "read",
      summary: "the queue's counts by state",
      handle: async () => json(200, { ok: true, queue: await o.store.deliveryStateCounts() }),
    }),
    route({
      method: "GET",
      path: "/inbox",
      access: "read",
      summary: "messages the store target delivered to ?recipient=, newest first (?limit=, ?before=)",
      query: t.Object({
        recipient: t.String({
          minLength: 1,
          error: "recipient is required, e.g. ?recipient=mailto:user@example.com",
        }),
        ...paging,
      }),
      async handle({ query }) {
        return json(200, await o.store.inbox({ recipient: query.recipient, ...pageOf(query) }));
      },
    }),
    route({
      method: "GET",
      path: "/messages",
      access: "read",
      summary:
        "the message log, newest first: ?q=FILTER&limit=50&before=ID (keyset paging); imipAvailable says whether Send by iMIP can work",
      query: t.Object({ q: filterQuery, ...paging }),
      async handle({ query }) {
        const filter = filterOf(query.q, o.nowMs());
        const page = await o.store.searchMessages({ filter, ...pageOf(query) });
        return json(200, { ...page, imipAvailable: o.plan.imipAvailable });
      },
    }),
    route({
      method: "GET",
      path: "/messages/:id",
      access: "read",
      summary: "one message (by id or uuid) with its deliveries, attempts and what happens next",
      async handle({ params }) {
        const key = /^\d+$/.test(params.id!) ? Number(params.id) : params.id!;
        const detail = await o.queue.getMessage(key);
        if (!detail) return apiError(404, `no message ${params.id}`);
        return json(200, messageView(detail, o.plan));
      },
    }),
    route({
      method: "GET",
      path: "/events",
      access: "read",
      summary: "server-sent events: changed messages matching ?q=, and the queue counts",
      query: t.Object({ q: filterQuery }),
      handle({ query, request, caller, keepOpen }) {
        const filter = filterOf(query.q, o.nowMs());
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
    }),
    actionRoute("retry", "retry now: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
    actionRoute("cancel", "cancel: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
    actionRoute("imip", "send by iMIP now: {ids} | {messageId} | {q, expect} (dryRun: true counts)"),
  ];
}
