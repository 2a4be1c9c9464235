/**
 * Who sent this request, and may they (draft §7.4): a valid DKIM signature whose signing domain d= may
 * speak for the Originator's domain (signer-alignment.ts: the same domain, a parent, the same
 * organisation under relaxed alignment, or a signer the peer's policy names), or an unsigned request
 * from an address the operator trusts for that domain. Nothing else gets in: a remote peer can never
 * speak for isched's own domains or any subdomain of them, and a domain the operator denies is
 * refused even with a good signature, whether it is the Originator's domain, a parent of it, or the
 * signing domain d=. (`trust` walks a domain's parents itself: the caller's policy lookup.)
 */
import type { KeyResolver } from "../dkim/key-resolver.ts";
import type { DkimPass, DkimVerdict } from "../dkim/verdict.ts";
import { type SignatureLifetime, verifyRequest } from "../dkim/verify.ts";
import { normalizeDomain, selfAndParents } from "../dns/names.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { anyContains } from "../net/cidr.ts";
import { alignSigner } from "./signer-alignment.ts";
import type { AlignmentMode, TrustPolicy } from "./trust-policy.ts";

export type Authentication =
  | {
      readonly kind: "dkim";
      readonly verdict: DkimPass;
      readonly peerDomain: string;
      /** The alignment rule that accepted d= for the Originator, in one sentence. */
      readonly signerRule: string;
    }
  | { readonly kind: "trusted"; readonly peerDomain: string };

/** A refusal, with what the log should keep about the signature. */
export class AuthenticationError extends IScheduleError {
  constructor(
    element: "verification-failed" | "originator-denied",
    message: string,
    readonly verdict?: DkimVerdict,
    options: { httpStatus?: number; retryAfterSeconds?: number } = {},
  ) {
    super(element, message, { httpStatus: options.httpStatus });
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
  readonly retryAfterSeconds?: number;
}

/** Retry-After of a temporary refusal (a key server that does not answer now, the lookup limits). */
export const TRY_AGAIN_SECONDS = 60;

export interface AuthenticateInput {
  fields: readonly (readonly [string, string])[];
  body: Uint8Array;
  originatorDomain: string;
  remoteAddress: string;
  hosted: (domain: string) => boolean;
  /** The policy for a domain: its own rule or its nearest parent's. */
  trust: (domain: string) => TrustPolicy | Promise<TrustPolicy>;
  /** How d= must relate to the Originator's domain (default relaxed). */
  alignment?: AlignmentMode;
  keys: KeyResolver;
  nowMs: number;
  allowSha1: boolean;
  /** The whole DKIM verification (key retrieval included) ends by then, temporary if unfinished. */
  verifyDeadlineMs: number;
  lifetime: SignatureLifetime;
}

export async function authenticate(i: AuthenticateInput): Promise<Authentication> {
  const policy = await i.trust(i.originatorDomain);
  if (policy.mode === "deny") {
    throw new AuthenticationError(
      "originator-denied",
      `This server does not accept scheduling messages from ${i.originatorDomain}.`,
    );
  }
  const signed = i.fields.some(([n]) => n.toLowerCase() === "dkim-signature");
  if (!signed) {
    if (policy.mode === "unsigned" && anyContains(policy.from, i.remoteAddress)) {
      return { kind: "trusted", peerDomain: i.originatorDomain };
    }
    throw new AuthenticationError(
      "verification-failed",
      "The request has no DKIM-Signature header; this server accepts only signed requests.",
    );
  }
  const verdict = await verifyRequest(
    { fields: i.fields, body: i.body },
    {
      keys: i.keys,
      nowMs: i.nowMs,
      allowSha1: i.allowSha1,
      signal: AbortSignal.timeout(i.verifyDeadlineMs),
      lifetime: i.lifetime,
    },
  );
  if (!verdict.ok) {
    // A key server or DNS that does not answer now is not the sender's fault: ask it to try again.
    const options = verdict.temporary ? { httpStatus: 503, retryAfterSeconds: TRY_AGAIN_SECONDS } : {};
    throw new AuthenticationError("verification-failed", verdict.message, verdict, options);
  }
  const aligned = alignSigner({
    originatorDomain: normalizeDomain(i.originatorDomain),
    signingDomain: normalizeDomain(verdict.domain),
    mode: i.alignment ?? "relaxed",
    extraSigners: policy.signers,
    hosted: i.hosted,
  });
  if (!aligned.ok) throw new AuthenticationError("originator-denied", aligned.reason, verdict);
  if (verdict.domain !== i.originatorDomain && (await i.trust(verdict.domain)).mode === "deny") {
    throw new AuthenticationError(
      "originator-denied",
      `This server does not accept scheduling messages signed by ${verdict.domain}.`,
      verdict,
    );
  }
  const hostedParent = selfAndParents(i.originatorDomain).find(i.hosted);
  if (hostedParent !== undefined) {
    const whose =
      hostedParent === i.originatorDomain
        ? `${hostedParent} is served by this server`
        : `${i.originatorDomain} is under ${hostedParent}, which this server serves`;
    throw new AuthenticationError(
      "originator-denied",
      `${whose}; it does not accept messages on its users' behalf from elsewhere.`,
      verdict,
    );
  }
  return { kind: "dkim", verdict, peerDomain: verdict.domain, signerRule: aligned.rule };
}
