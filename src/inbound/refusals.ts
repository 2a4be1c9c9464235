/**
 * Logging a refused request: what the log keeps of it is its metadata (header fields up to a cap,
 * the body's size and SHA-256, the reason, the answer, the peer's address), never its body, and it
 * never gets a delivery (store/refusals.ts), so no action of an operator can ever deliver it.
 */
import type { Direction, DkimResult } from "../store/store.ts";
import type { EndpointAnswer } from "./answers.ts";
import type { CheckedHeaders } from "./header-checks.ts";
import type { RefusalLog } from "./refusal-log.ts";

export interface RefusedRequest {
  headers: CheckedHeaders;
  fields: readonly (readonly [string, string])[];
  remoteAddress: string;
  /** The body, when it was read: only its size is kept. */
  body?: Uint8Array;
  /** The body's SHA-256 (base64), when it was read. */
  bodySha256?: string;
  /** The declared Content-Length, when the body was not read. */
  declaredBytes?: number;
}

export interface RefusalFacts {
  /** The sentence the peer got. */
  reason: string;
  direction: Direction;
  peerDomain: string;
  dkimResult: DkimResult;
  dkimDomain?: string;
  dkimSelector?: string;
  dkimReason?: string;
}

/** Header values kept in the log; a credential never is. */
function redacted(fields: RefusedRequest["fields"]): [string, string][] {
  return fields.map(([n, v]) => [
    n,
    /^(authorization|cookie|proxy-authorization)$/i.test(n) ? "[redacted]" : v,
  ]);
}

/** What the log keeps of any request, accepted or refused (the body aside). */
export function requestFacts(req: Pick<RefusedRequest, "headers" | "fields" | "remoteAddress">) {
  const h = req.headers;
  return {
    intake: "ischedule" as const,
    peerAddress: req.remoteAddress,
    remoteMessageId: h.messageId,
    originator: h.originator,
    contentType: h.contentTypeRaw,
    headers: redacted(req.fields),
    method: (h.contentType.method ?? "?").toUpperCase(),
    component: (h.contentType.component ?? "?").toUpperCase(),
  };
}

/** Logs a refusal and sets the answer's messageUuid to its log entry. */
export function logRefusal(
  ctx: { refusals: RefusalLog },
  req: RefusedRequest,
  answer: EndpointAnswer,
  facts: RefusalFacts,
): void {
  const { reason, ...rest } = facts;
  answer.messageUuid = ctx.refusals.record({
    ...requestFacts(req),
    ...rest,
    bodySize: req.body?.byteLength ?? req.declaredBytes,
    bodyHash: req.bodySha256,
    refusal: reason,
    responseStatus: answer.status,
    responseBody: answer.xml,
  });
}
