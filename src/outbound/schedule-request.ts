/**
 * One scheduling POST as isched sends it (draft §6.1, §8): the headers,
 * the iSchedule-Message-ID, and the DKIM-Signature (draft §7.1). Pure apart from the clock, which
 * the caller passes in, so every redirect hop can be signed afresh.
 */
import { createHash } from "node:crypto";
import type { HeaderField } from "../dkim/canonicalize.ts";
import { type SigningKey, signRequest } from "../dkim/sign.ts";
import { addressKey } from "../ischedule/address.ts";
import type { PeerRequest } from "../net/peer-fetch.ts";

/** draft §8.2: the only version there is. */
export const ISCHEDULE_VERSION = "1.0";

/** x= is t + this (draft §7.1: at least 60 s; CalendarServer and Cyrus use 3600). */
export const SIGNATURE_LIFETIME_SECONDS = 3600;

/**
 * The iSchedule-Message-ID of the POST that carries `message` to `recipients` (draft §8.4).
 * Derived, not drawn: a retry of the same message to the same group (after a timeout, a 503, or a
 * crash between sending and recording) carries the same ID, so a receiver that keeps the IDs it saw
 * can drop the duplicate. The recipients are compared as addresses and sorted, so their order and
 * spelling do not matter; a different group (a retry after some recipients were delivered) gets a
 * different ID, since it is a different request. Only token characters (draft §8: `token`).
 */
export function scheduleMessageId(messageUuid: string, recipients: readonly string[]): string {
  const keys = [...new Set(recipients.map((r) => addressKey(r)))].sort();
  const digest = createHash("sha256").update(keys.join("\n")).digest("hex").slice(0, 12);
  return `${messageUuid}-${digest}`;
}

export interface ScheduleRequestInput {
  url: string;
  originator: string;
  /** Sent as one Recipient header, comma-joined. */
  recipients: readonly string[];
  method: string;
  component: string;
  body: Uint8Array;
  messageId: string;
  userAgent: string;
  /** Absent for a peer route with sign=no. */
  key?: SigningKey;
  /** The clock (t= is its whole seconds). */
  nowMs: number;
  /** x= is t + this; default SIGNATURE_LIFETIME_SECONDS. */
  expireSeconds?: number;
}

/** draft §6.1: text/calendar with the body's METHOD and component type as parameters. */
export function contentType(method: string, component: string): string {
  return `text/calendar; charset=utf-8; method=${method.toUpperCase()}; component=${component.toUpperCase()}`;
}

/**
 * The request, signed when a key is given. Throws TypeError when it cannot be signed (sign.ts), which
 * is a bug or a broken key, not a peer's problem.
 */
export function scheduleRequest(i: ScheduleRequestInput): PeerRequest {
  const fields: HeaderField[] = [
    ["Originator", i.originator],
    // One header with the addresses joined by a bare comma: ischedule-relaxed removes whitespace
    // around commas anyway (draft §7.2.1 step 7), and one field cannot be split or reordered by a
    // proxy (CalendarServer and Cyrus send it so).
    ["Recipient", i.recipients.join(",")],
    ["Content-Type", contentType(i.method, i.component)],
    ["iSchedule-Version", ISCHEDULE_VERSION],
    ["iSchedule-Message-ID", i.messageId],
    ["User-Agent", i.userAgent],
    // draft §6.1: MUST contain no-cache and no-transform; hop-by-hop, so never signed (draft §7.1).
    ["Cache-Control", "no-cache, no-transform"],
  ];
  if (i.key !== undefined) {
    // sign.ts defaults: h= the four required headers, then iSchedule-Message-ID and User-Agent
    // (draft §7.1 SHOULD); q=dns/txt:http/well-known, since dns/txt is the method every peer has.
    const signature = signRequest({
      key: i.key,
      fields,
      body: i.body,
      nowMs: i.nowMs,
      expireSeconds: i.expireSeconds ?? SIGNATURE_LIFETIME_SECONDS,
    });
    fields.unshift(["DKIM-Signature", signature]);
  }
  return {
    method: "POST",
    url: i.url,
    headers: fields.map(([name, value]) => [name, value] as [string, string]),
    body: i.body,
  };
}
