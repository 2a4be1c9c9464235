/**
 * The SMTP intake's record of what it relayed: the recipients of an iMIP mail it handed to the
 * smarthost (route `relay`), already delivered or refused, so the log shows every recipient of the
 * message and how it went: on the message stored for the iSchedule recipients, or on a new one when
 * none went by iSchedule. A message relayed because it could not be upgraded says why on each
 * recipient's attempt. Nothing here is delivered by isched: these deliveries are born final.
 */

import { createHash } from "node:crypto";
import { addressDomain } from "../ischedule/address.ts";
import type { ItipMessage } from "../itip/index.ts";
import type { DeliveryQueue, NewDelivery } from "../queue/queue.ts";
import type { HeaderList } from "../store/store.ts";

export interface RelayRecord {
  /** The message already stored for this mail's iSchedule recipients, if there was one. */
  messageId?: number;
  /** What the mail's iMIP part holds: parsed, or as far as it could be read. */
  itip: ItipMessage | UnparsedItip;
  /** Why the mail was relayed rather than upgraded to iSchedule, when it was an iMIP message. */
  notUpgraded?: string;
  /** Message-ID and Subject of the mail. */
  headers?: HeaderList;
  originator: string;
  peerAddress?: string;
  /** The smarthost, without credentials. */
  relayTarget: string;
  /** Recipients (bare addresses) the smarthost took. */
  accepted: readonly string[];
  /** Recipients it refused for good, with its answer. */
  refused: readonly { address: string; response?: string }[];
  response?: string;
}

/** An iMIP part that is not valid iTIP: its text (empty when it could not be decoded) and what it says of itself. */
export interface UnparsedItip {
  readonly text: string;
  /** The part's "method" parameter or METHOD property. */
  readonly method: string;
  readonly component?: string;
  readonly uid?: string;
  readonly summary?: string;
}

/** Records the relayed and refused recipients of one relayed mail. */
export async function recordRelayed(
  ctx: { queue: DeliveryQueue; nowMs: () => number },
  r: RelayRecord,
): Promise<void> {
  const now = ctx.nowMs();
  const why =
    r.notUpgraded === undefined
      ? undefined
      : `relayed unchanged, not upgraded to iSchedule: ${r.notUpgraded}`;
  const deliveries: NewDelivery[] = [
    ...r.accepted.map(
      (address): NewDelivery => ({
        recipient: `mailto:${address}`,
        domain: addressDomain(`mailto:${address}`) ?? "",
        route: "relay",
        target: r.relayTarget,
        state: "delivered",
        requestStatus: "1.1;Sent",
        attempt: {
          startedAt: now,
          durationMs: 0,
          route: "relay",
          target: r.relayTarget,
          requestStatus: "1.1;Sent",
          outcome: "delivered",
          error: why,
          response: r.response,
        },
      }),
    ),
    ...r.refused.map(
      (x): NewDelivery => ({
        recipient: `mailto:${x.address}`,
        domain: addressDomain(`mailto:${x.address}`) ?? "",
        route: "relay",
        target: r.relayTarget,
        state: "failed",
        requestStatus: "3.7;Invalid calendar user",
        lastError: `the mail relay refused it: ${x.response ?? "no reason given"}`,
        attempt: {
          startedAt: now,
          durationMs: 0,
          route: "relay",
          target: r.relayTarget,
          outcome: "permanent",
          error: x.response,
          response: x.response,
        },
      }),
    ),
  ];
  if (deliveries.length === 0) return;
  if (r.messageId !== undefined) {
    await ctx.queue.addDeliveries(r.messageId, deliveries);
    return;
  }
  const itip = r.itip;
  const component = itip.component ?? "VCALENDAR";
  const body = Buffer.from(itip.text.replace(/\r?\n/g, "\r\n"));
  await ctx.queue.accept(
    {
      direction: "outbound",
      intake: "smtp",
      peerAddress: r.peerAddress,
      originator: r.originator,
      method: itip.method,
      component,
      uid: itip.uid,
      summary: itip.summary,
      organizer: "organizer" in itip ? itip.organizer?.address : undefined,
      contentType: `text/calendar; charset=utf-8; method=${itip.method}; component=${component}`,
      body,
      bodyHash: createHash("sha256").update(body).digest("base64"),
      headers: r.headers,
      dkimResult: "trusted",
    },
    deliveries,
  );
}
