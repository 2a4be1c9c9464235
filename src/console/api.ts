/**
 * The JSON API under /api/v1 on the console listener: what the admin page, `isched send` and other
 * programs use. Every route needs the API token (`Authorization: Bearer TOKEN`); unauthenticated calls
 * get 401 with a JSON error. Reading never changes anything.
 */
import type { Database } from "bun:sqlite";
import { timingSafeEqual } from "node:crypto";
import { Elysia } from "elysia";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { Logger } from "../server/log.ts";
import { inbox } from "../store/inbox.ts";
import { messageJson } from "./views.ts";

export interface ApiOptions {
  db: Database;
  queue: DeliveryQueue;
  token: string;
  log: Logger;
}

const json = (status: number, value: unknown): Response =>
  new Response(JSON.stringify(value), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });

export const apiError = (status: number, message: string): Response => json(status, { error: message });

function tokenMatches(header: string | null, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function limitParam(raw: string | null, fallback: number, max: number): number | Response {
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    return apiError(400, `limit must be a whole number from 1 to ${max}`);
  return Number(raw);
}

export function createApi(o: ApiOptions) {
  return new Elysia({ prefix: "/api/v1" })
    .onBeforeHandle(({ request }) => {
      if (!tokenMatches(request.headers.get("authorization"), o.token)) {
        return apiError(401, "sign in, or send the API token as 'Authorization: Bearer TOKEN'");
      }
    })
    .get("/health", () => json(200, { ok: true, queue: o.queue.countByState() }))
    .get("/inbox", ({ request }) => {
      const url = new URL(request.url);
      const recipient = url.searchParams.get("recipient");
      if (!recipient) return apiError(400, "recipient is required, e.g. ?recipient=mailto:user@example.com");
      const limit = limitParam(url.searchParams.get("limit"), 50, 500);
      if (limit instanceof Response) return limit;
      const before = url.searchParams.get("before");
      if (before !== null && !/^\d+$/.test(before)) return apiError(400, "before must be a message id");
      return json(
        200,
        inbox(o.db, { recipient, limit, beforeId: before === null ? undefined : Number(before) }),
      );
    })
    .get("/messages/:id", ({ params }) => {
      const key = /^\d+$/.test(params.id) ? Number(params.id) : params.id;
      const detail = o.queue.getMessage(key);
      if (!detail) return apiError(404, `no message ${params.id}`);
      return json(200, messageJson(detail));
    })
    .all("*", () => apiError(404, "no such API route"));
}
