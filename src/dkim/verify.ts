/**
 * Verifying the DKIM-Signature of an iSchedule request (draft §7.4, RFC 6376 §6.1), in this order:
 * exactly one signature; its tags (signature.ts); the Authorization rule; l=; t= and x= against the
 * clock; the body hash; the key (key-resolver.ts) and its record checks; the signature itself. A
 * mismatch with a cached key is retried once with a fresh key (key rotation).
 *
 * A receiver can bound every signature's life (`lifetime`): the draft makes t= and x= optional
 * (§7.1), so a signature without x= would otherwise be good forever, and one with a far x= for
 * years, and a replay cache could never forget it. With `lifetime`, t= is required, a signature
 * without x= ends maxAgeSeconds after t=, and x= counts for at most maxLifetimeSeconds after t=.
 *
 * Clocks differ: t= and x= are the signer's clock, the check is ours. The same allowance holds both
 * ways (CLOCK_SKEW_SECONDS): t= may be that far in our future, x= that far in our past.
 */
import {
  canonicalBody,
  canonicalBodyLength,
  type HeaderFields,
  headerHashInput,
  indexHeaders,
  withoutSignatureData,
} from "./canonicalize.ts";
import { hashChunksBase64, hashOf, verifyHeaderInput } from "./crypto.ts";
import { checkKeyForSignature } from "./key-record.ts";
import type { KeyCandidate, KeyQuery, KeyResolver } from "./key-resolver.ts";
import { type DkimSignature, parseSignature } from "./signature.ts";
import { type DkimFail, type DkimVerdict, fail } from "./verdict.ts";

export interface SignedRequest {
  /** Header fields in wire order (or as an HTTP stack joined them). */
  readonly fields: HeaderFields;
  /** The body after removing any transfer-coding. */
  readonly body: Uint8Array;
}

export interface VerifyOptions {
  keys: KeyResolver;
  /** The clock, in milliseconds. */
  nowMs: number;
  allowSha1?: boolean;
  /** How far t= may be in the future and x= in the past (default CLOCK_SKEW_SECONDS). */
  clockSkewSeconds?: number;
  /** The verification's deadline: key lookups still waiting when it aborts fail as temporary. */
  signal?: AbortSignal;
  /** Bounds on a signature's life; without them t= and x= are checked as written. */
  lifetime?: SignatureLifetime;
}

export interface SignatureLifetime {
  /** Without x=, a signature is good for this long after t=. */
  maxAgeSeconds: number;
  /** x= counts for at most this long after t=. */
  maxLifetimeSeconds: number;
}

/**
 * The clock skew allowed between a signer and isched. draft §7.4: receivers "SHOULD accept values
 * [of t=] that are no more than 5 minutes in the future". x= gets the same allowance in the past:
 * RFC 6376 §3.5 makes refusing a signature past x= a MAY, and a signer whose clock is 5 minutes
 * behind would otherwise have its short-lived signatures (EGroupware's x = t + 300) refused while
 * its t= passes. OpenDKIM, the DKIM library of Cyrus IMAP, allows 300 s both ways; CalendarServer
 * 360 s on t= and none on x=.
 */
export const CLOCK_SKEW_SECONDS = 300;
export const DEFAULT_MAX_SIGNATURE_AGE_SECONDS = 3600;
export const MAX_SIGNATURE_LIFETIME_SECONDS = 24 * 3600;

/**
 * The last second in which a signature is good: x= and the clock skew allowed past it, within the
 * lifetime's bounds when given (which are this receiver's own rule, measured from t=).
 */
export function signatureEndsAt(
  sig: Pick<DkimSignature, "timestamp" | "expiration">,
  lifetime?: SignatureLifetime,
  clockSkewSeconds = CLOCK_SKEW_SECONDS,
): number | undefined {
  const expiry = sig.expiration === undefined ? undefined : sig.expiration + clockSkewSeconds;
  if (!lifetime || sig.timestamp === undefined) return expiry;
  if (expiry === undefined) return sig.timestamp + lifetime.maxAgeSeconds;
  return Math.min(expiry, sig.timestamp + lifetime.maxLifetimeSeconds);
}

/**
 * Verifies a request's signature. With the key in the resolver's warm cache (KeyResolver.cached) and
 * a signature that verifies, the whole check runs synchronously: no await, so no turn of the event
 * loop per request. Everything else (a key to fetch, a mismatch with a cached key) takes lookup().
 */
export function verifyRequest(request: SignedRequest, o: VerifyOptions): Promise<DkimVerdict> {
  try {
    const prepared = prepare(request, o);
    if (!("input" in prepared)) return Promise.resolve(prepared);
    const hit = o.keys.cached?.(prepared.query);
    if (hit?.ok) {
      const outcome = tryCandidates(prepared, hit.candidates);
      if (outcome.ok) return Promise.resolve(outcome);
      return withKeyLookup(prepared, o, outcome);
    }
    return withKeyLookup(prepared, o);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** What the signature check needs once the checks that need no key have passed. */
interface Prepared {
  readonly sig: DkimSignature;
  /** The header hash input. */
  readonly input: string;
  readonly query: Omit<KeyQuery, "refresh">;
  readonly endsAt: number | undefined;
}

/** Every check that needs no key, then the header hash input; a refusal when one fails. */
function prepare(request: SignedRequest, o: VerifyOptions): Prepared | DkimFail {
  const index = indexHeaders(request.fields);
  const values = index.get("dkim-signature");
  if (!values || values.length === 0)
    return fail("no-signature", "The request has no DKIM-Signature header.");
  if (values.length > 1)
    return fail("multiple-signatures", "The request has more than one DKIM-Signature header.");
  const raw = values[0]!;
  const parsed = parseSignature(raw, { allowSha1: o.allowSha1 });
  if (!parsed.ok) return parsed;
  const sig = parsed.signature;
  const ids = { domain: sig.domain, selector: sig.selector };

  if (index.has("authorization") && !sig.signedHeaders.some((n) => n.toLowerCase() === "authorization")) {
    return fail(
      "required-header-not-signed",
      "The request has an Authorization header that h= does not include.",
      ids,
    );
  }

  const preliminary = checkTimesAndBody(sig, request.body, o);
  if (preliminary) return { ...preliminary, ...ids };

  const input = headerHashInput({
    index,
    signedHeaders: sig.signedHeaders,
    canonicalization: sig.headerCanonicalization,
    signatureWithoutData: withoutSignatureData(raw),
  });
  const query = { domain: sig.domain, selector: sig.selector, methods: sig.queryMethods, signal: o.signal };
  return { sig, input, query, endsAt: signatureEndsAt(sig, o.lifetime, o.clockSkewSeconds) };
}

/**
 * The key through lookup(), and a mismatch with a cached key retried once with a fresh key (key
 * rotation). `cachedRefusal`: the outcome with the cached key already tried, so only the retry is left.
 */
async function withKeyLookup(
  p: Prepared,
  o: VerifyOptions,
  cachedRefusal?: DkimVerdict,
): Promise<DkimVerdict> {
  let outcome = cachedRefusal;
  if (outcome === undefined) {
    const lookup = await o.keys.lookup(p.query);
    if (!lookup.ok) return lookup;
    outcome = tryCandidates(p, lookup.candidates);
    if (outcome.ok || !lookup.fromCache) return outcome;
  }
  const fresh = await o.keys.lookup({ ...p.query, refresh: true });
  if (!fresh.ok) return fresh;
  return fresh.fromCache ? outcome : tryCandidates(p, fresh.candidates);
}

function checkTimesAndBody(sig: DkimSignature, body: Uint8Array, o: VerifyOptions): DkimFail | undefined {
  if (sig.bodyLength !== undefined) {
    // RFC 6376 §8.2: a partial-body signature lets anyone append content; only whole-body l= is accepted.
    const length = canonicalBodyLength(body, sig.bodyCanonicalization);
    if (sig.bodyLength !== length) {
      return fail(
        "body-length-limited",
        `l=${sig.bodyLength} does not cover the whole body (${length} bytes).`,
      );
    }
  }
  const nowSeconds = Math.floor(o.nowMs / 1000);
  const skew = o.clockSkewSeconds ?? CLOCK_SKEW_SECONDS;
  if (sig.timestamp !== undefined && sig.timestamp > nowSeconds + skew) {
    return fail(
      "signature-in-future",
      `t=${sig.timestamp} is ${sig.timestamp - nowSeconds} seconds in the future (at most ${skew} allowed).`,
    );
  }
  if (sig.expiration !== undefined && sig.expiration + skew < nowSeconds) {
    return fail(
      "signature-expired",
      `The signature expired at x=${sig.expiration}, ${nowSeconds - sig.expiration} seconds ago (${skew} allowed for clock skew).`,
    );
  }
  const life = o.lifetime;
  if (life && sig.timestamp === undefined) {
    return fail(
      "signature-undated",
      "The signature has no t= tag; this server needs the signing time to bound the signature's life.",
    );
  }
  const endsAt = signatureEndsAt(sig, life, skew);
  if (life && endsAt !== undefined && endsAt < nowSeconds) {
    const age = nowSeconds - sig.timestamp!;
    const why =
      sig.expiration === undefined
        ? `without x= this server accepts signatures up to ${life.maxAgeSeconds} seconds old`
        : `x= counts for at most ${life.maxLifetimeSeconds} seconds after t= here`;
    return fail(
      "signature-expired",
      `The signature is too old: made at t=${sig.timestamp}, ${age} seconds ago, and ${why}.`,
    );
  }
  const bodyHash = hashChunksBase64(canonicalBody(body, sig.bodyCanonicalization), hashOf(sig.algorithm));
  if (bodyHash !== sig.bodyHash) {
    return fail(
      "body-hash-mismatch",
      "The body hash does not match bh=: the body was changed after signing.",
    );
  }
  return undefined;
}

/** c= as verified, without building the same four strings on every request. */
function canonicalizationName(sig: DkimSignature): string {
  const relaxedBody = sig.bodyCanonicalization === "relaxed";
  if (sig.headerCanonicalization === "ischedule-relaxed")
    return relaxedBody ? "ischedule-relaxed/relaxed" : "ischedule-relaxed/simple";
  return relaxedBody ? "relaxed/relaxed" : "relaxed/simple";
}

/** Verifies against each usable candidate; reports the first refusal when none verifies. */
function tryCandidates(p: Prepared, candidates: readonly KeyCandidate[]): DkimVerdict {
  const { sig, input, endsAt } = p;
  let firstRefusal: DkimFail | undefined;
  let sawUsableKey = false;
  for (const c of candidates) {
    const refusal = c.parsed.ok ? checkKeyForSignature(c.parsed.key, sig.algorithm) : c.parsed;
    if (refusal) {
      firstRefusal ??= fail(refusal.reason, `Key record at ${c.where} (${c.source}): ${refusal.message}.`, {
        domain: sig.domain,
        selector: sig.selector,
      });
      continue;
    }
    if (!c.parsed.ok) continue;
    sawUsableKey = true;
    if (verifyHeaderInput(sig.algorithm, c.parsed.key.key, input, sig.signature)) {
      return {
        ok: true,
        domain: sig.domain,
        selector: sig.selector,
        algorithm: sig.algorithm,
        canonicalization: canonicalizationName(sig),
        signedHeaders: sig.signedHeaders,
        keySource: c.source,
        keyBits: c.parsed.key.bits,
        signedAt: sig.timestamp,
        expiresAt: sig.expiration,
        endsAt,
        bodyHash: sig.bodyHash,
      };
    }
  }
  if (sawUsableKey || !firstRefusal) {
    return fail(
      "signature-mismatch",
      "The signature does not match the signed headers with the published key.",
      { domain: sig.domain, selector: sig.selector },
    );
  }
  return firstRefusal;
}
