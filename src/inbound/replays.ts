/**
 * What makes two inbound requests the same one, and the first answer of a request still being
 * processed. The draft says nothing of replays beyond t= and x= (§7.1, §7.4); a replayed request gets
 * the answer its first copy got, and is delivered once.
 *
 * The key of a signed request is its signing domain d=, its iSchedule-Message-ID and its body hash
 * bh=, when h= covers the message id; otherwise d= and bh= alone, since anyone could change an
 * unsigned message id to make a replay look new. It holds for the signature's life (verify.ts
 * bounds it), after which the signature itself is refused. A trusted unsigned request (from the
 * operator's own servers) is keyed by its Originator's domain, message id and body, for a day.
 */

import type { DkimPass } from "../dkim/verdict.ts";
import { CLOCK_SKEW_SECONDS } from "../dkim/verify.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { ReplayClaim } from "../store/store.ts";
import type { Authentication } from "./authenticate.ts";
import { answerOfMessage } from "./resends.ts";

/** How long a trusted request's replay key is kept, and its copies are recognised (resends.ts). */
export const TRUSTED_WINDOW_MS = 86_400_000;
/**
 * A key outlives the last second its signature is good in (which includes the clock skew allowed on
 * x=, verify.ts) by the clock skew allowed on t= (draft §7.4).
 */
const SKEW_MS = CLOCK_SKEW_SECONDS * 1000;

export function replayKeyOf(o: {
  auth: Authentication;
  /** iSchedule-Message-ID as received, if any. */
  messageId: string | undefined;
  /** The body's SHA-256 (base64), for trusted requests. */
  bodySha256: string;
  nowMs: number;
}): ReplayClaim | undefined {
  if (o.auth.kind === "dkim") return signedKey(o.auth.verdict, o.messageId, o.nowMs);
  if (!o.messageId) return undefined;
  return {
    key: ["trusted", o.auth.peerDomain, o.messageId, o.bodySha256].join("\n"),
    expiresAt: o.nowMs + TRUSTED_WINDOW_MS,
  };
}

function signedKey(v: DkimPass, messageId: string | undefined, nowMs: number): ReplayClaim {
  const idSigned =
    messageId !== undefined && v.signedHeaders.some((n) => n.toLowerCase() === "ischedule-message-id");
  const key = ["dkim", v.domain, idSigned ? messageId : "", v.bodyHash].join("\n");
  // A signature without a bounded life (a verifier without lifetime bounds) is remembered for a day.
  const endsAtMs = v.endsAt === undefined ? nowMs + TRUSTED_WINDOW_MS : (v.endsAt + 1) * 1000;
  return { key, expiresAt: Math.max(endsAtMs, nowMs) + SKEW_MS };
}

/**
 * The requests being processed, by replay key: a copy that arrives before its first has been
 * answered waits for that answer instead of being processed again.
 */
export class InFlightRequests<A> {
  readonly #answers = new Map<string, Promise<A>>();

  /** The pending answer for `key`, if a request with that key is being processed. */
  pending(key: string): Promise<A> | undefined {
    return this.#answers.get(key);
  }

  /** Runs `work` as the request for `key`; copies that come meanwhile get its answer. */
  run(key: string, work: () => Promise<A>): Promise<A> {
    const answer = work().finally(() => this.#answers.delete(key));
    this.#answers.set(key, answer);
    return answer;
  }
}

/**
 * The answer of the message that holds `key`: the one recorded when it was answered, or, when the
 * process stopped before that (the message was stored, the answer was lost), one read from its
 * deliveries as they stand.
 */
export async function storedAnswer(
  queue: Pick<DeliveryQueue, "replayHolder" | "messageRow" | "deliveriesOf">,
  key: string,
): Promise<{ status: number; xml: string; messageUuid: string } | undefined> {
  const id = await queue.replayHolder(key);
  return id === undefined ? undefined : answerOfMessage(queue, id);
}
