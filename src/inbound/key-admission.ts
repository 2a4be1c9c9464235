/**
 * Key admission, before a request's body is read: a signature whose key is not in the cache needs a
 * place among the key lookups that may wait on the network (dkim/lookup-gate.ts). When none is left
 * the request is answered 503 at once and logged as refused, before its body is buffered, so forged
 * signatures that point at silent key servers cannot make isched hold more bodies than the limits
 * allow. Anything unreadable here is left to verification, which refuses it without the network.
 */
import type { KeyResolver } from "../dkim/key-resolver.ts";
import { parseSignature } from "../dkim/signature.ts";
import { type EndpointAnswer, refusal } from "./answers.ts";
import { AuthenticationError, TRY_AGAIN_SECONDS } from "./authenticate.ts";
import type { ReceiverContext } from "./receive.ts";
import { logRefusal, type RefusedRequest } from "./refusals.ts";

export type KeyLookupReservation =
  | { readonly ok: true; readonly keys: KeyResolver; release(): void }
  | { readonly ok: false; readonly answer: EndpointAnswer };

/** A place for the request's key lookup (and the resolver to use in it), or its 503 answer. */
export function reserveKeyLookup(
  req: Omit<RefusedRequest, "body" | "bodySha256">,
  ctx: Pick<ReceiverContext, "keys" | "allowSha1" | "refusals">,
): KeyLookupReservation {
  const values = req.fields.filter(([n]) => n.toLowerCase() === "dkim-signature");
  const parsed =
    values.length === 1 ? parseSignature(values[0]![1], { allowSha1: ctx.allowSha1 }) : undefined;
  if (!parsed?.ok) return { ok: true, keys: ctx.keys, release() {} };
  const sig = parsed.signature;
  const reservation = ctx.keys.reserve({
    domain: sig.domain,
    selector: sig.selector,
    methods: sig.queryMethods,
  });
  if (reservation.ok) return reservation;
  const refused = new AuthenticationError("verification-failed", reservation.message, undefined, {
    httpStatus: 503,
  });
  const answer = refusal(refused, TRY_AGAIN_SECONDS);
  logRefusal(ctx, req, answer, {
    reason: reservation.message,
    direction: "inbound",
    peerDomain: sig.domain,
    dkimResult: "fail",
    dkimDomain: sig.domain,
    dkimSelector: sig.selector,
    dkimReason: `key-unavailable: ${reservation.message}`,
  });
  return { ok: false, answer };
}
