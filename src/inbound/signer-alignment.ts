/**
 * May this signing domain d= speak for the Originator's domain? The draft asks that the signer be
 * responsible for the Originator (§7.4) without saying how the two names must relate; DMARC's
 * identifier alignment (RFC 7489 §3.1) is the established answer, and the one real peers need:
 * CalendarServer signs with its configured DKIM domain, by default its host name
 * (`d=cal.example.net` for users `@example.net`), one domain for every domain it serves.
 *
 * The rules, in order; the first that holds names itself in the message log:
 * 1. d= is the Originator's domain;
 * 2. d= is a parent of it that is not a public suffix (`d=example.net` for `user@sales.example.net`);
 * 3. relaxed alignment only: d= and the Originator's domain have the same organisational domain
 *    (RFC 7489 §3.2, from the Public Suffix List);
 * 4. d= is one of the extra signers the Originator's trust policy names (`signers=`), in either mode.
 * Rules 3 and 4 never hold for a d= that isched hosts, or that lies under a domain it hosts: only
 * isched signs for its own domains. (An Originator in a hosted domain is refused whoever signs:
 * authenticate.ts.)
 */
import { selfAndParents } from "../dns/names.ts";
import { isPublicSuffix, organizationalDomain } from "../dns/organizational-domain.ts";
import type { AlignmentMode, SignerList } from "./trust-policy.ts";

export interface SignerAlignmentInput {
  /** Both lower-case, without a trailing dot. */
  readonly originatorDomain: string;
  readonly signingDomain: string;
  /** strict: rules 1, 2 and 4; relaxed (the default): all four. */
  readonly mode: AlignmentMode;
  /** The extra signers named by the Originator's trust policy, if any. */
  readonly extraSigners?: SignerList;
  readonly hosted: (domain: string) => boolean;
}

export type SignerAlignment =
  /** `rule`: one sentence naming the rule that accepted the signer (shown in the message log). */
  | { readonly ok: true; readonly rule: string }
  /** `reason`: one sentence for the peer. */
  | { readonly ok: false; readonly reason: string };

export function alignSigner(i: SignerAlignmentInput): SignerAlignment {
  const { originatorDomain: from, signingDomain: d } = i;
  if (d === from) return { ok: true, rule: `d=${d} is the Originator's domain.` };
  const parent = selfAndParents(from).includes(d);
  if (parent && isPublicSuffix(d)) {
    return {
      ok: false,
      reason: `The request is signed by ${d}, a public suffix, which cannot speak for the Originator's domain ${from}.`,
    };
  }
  if (parent) return { ok: true, rule: `d=${d} is a parent of the Originator's domain ${from}.` };
  const ours = selfAndParents(d).some(i.hosted);
  if (!ours && i.mode === "relaxed") {
    const organization = organizationalDomain(d);
    if (organization !== undefined && organization === organizationalDomain(from))
      return {
        ok: true,
        rule: `d=${d} and the Originator's domain ${from} are both in the organisational domain ${organization} (relaxed alignment, RFC 7489 §3.1).`,
      };
  }
  if (!ours && i.extraSigners?.domains.includes(d))
    return { ok: true, rule: `d=${d} is an extra signer named by ${i.extraSigners.namedBy}.` };
  const needed =
    i.mode === "strict"
      ? "neither the Originator's domain nor a parent of it (this server requires strict alignment)"
      : "neither in the Originator's organisation nor a signer this server accepts for it";
  return {
    ok: false,
    reason: `The request is signed by ${d}, which is ${needed}: the Originator's domain is ${from}.`,
  };
}
