/**
 * The outcome of a DKIM verification: valid, or one reason code plus a sentence that is safe to show
 * a remote peer (it goes into the endpoint's <verification-failed/> description).
 */
import type { Algorithm, QueryMethod } from "./names.ts";

export type DkimFailureReason =
  // The signature header itself
  | "no-signature"
  | "multiple-signatures"
  | "malformed-signature"
  | "missing-tag"
  | "unsupported-version"
  | "unsupported-algorithm"
  | "sha1-not-allowed"
  | "unsupported-canonicalization"
  | "unsupported-query-method"
  | "required-header-not-signed"
  | "forbidden-header-signed"
  | "header-signed-twice"
  | "body-length-limited"
  | "signature-in-future"
  | "signature-expired"
  | "signature-undated"
  | "body-hash-mismatch"
  // The key
  | "key-unavailable"
  | "key-not-found"
  | "key-revoked"
  | "key-malformed"
  | "key-type-mismatch"
  | "key-hash-not-allowed"
  | "key-service-not-allowed"
  | "key-too-short"
  // The signature value
  | "signature-mismatch";

export interface DkimPass {
  readonly ok: true;
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: Algorithm;
  readonly canonicalization: string;
  readonly signedHeaders: readonly string[];
  /** Where the key came from. */
  readonly keySource: QueryMethod;
  readonly keyBits: number;
  readonly signedAt?: number;
  readonly expiresAt?: number;
  /**
   * The last second in which the signature is good (x= and the clock skew allowed past it, bounded
   * by the verifier's lifetime): the replay window.
   */
  readonly endsAt?: number;
  /** The body hash (bh=), useful for replay detection. */
  readonly bodyHash: string;
}

export interface DkimFail {
  readonly ok: false;
  readonly reason: DkimFailureReason;
  /** One sentence saying what failed and why. */
  readonly message: string;
  /** True when trying again later may succeed (key server unreachable, DNS timeout). */
  readonly temporary: boolean;
  readonly domain?: string;
  readonly selector?: string;
}

export type DkimVerdict = DkimPass | DkimFail;

export function fail(
  reason: DkimFailureReason,
  message: string,
  extra: { temporary?: boolean; domain?: string; selector?: string } = {},
): DkimFail {
  return {
    ok: false,
    reason,
    message,
    temporary: extra.temporary ?? false,
    domain: extra.domain,
    selector: extra.selector,
  };
}
