/**
 * Who may speak for a peer domain (draft §7.4 leaves it to the receiver's policy): per domain, DKIM
 * required (the default), refused, or unsigned requests from the operator's own servers' addresses;
 * and which signing domains besides the aligned ones (signer-alignment.ts) are accepted for its
 * users. The rules come from `--trust` (src/config/rules.ts) and the console's peer policies
 * (src/console/peer-trust.ts); authenticate.ts applies them.
 */
import type { Cidr } from "../net/cidr.ts";

/** How a signing domain must relate to the Originator's domain (signer-alignment.ts). */
export type AlignmentMode = "strict" | "relaxed";

/**
 * Signing domains accepted for a peer's users besides those alignment accepts (`signers=`): a hosting
 * provider that signs for its customers' domains, a CalendarServer with one DKIM domain for several
 * mail domains.
 */
export interface SignerList {
  /** Lower-case domain names, matched exactly. */
  readonly domains: readonly string[];
  /** Which rule names them, for the message log: `--trust example.net`, `the console's policy for example.net`. */
  readonly namedBy: string;
}

export type TrustPolicy =
  | { readonly mode: "dkim"; readonly signers?: SignerList }
  | { readonly mode: "deny" }
  /** Unsigned requests accepted from these addresses; signed ones still verified. */
  | { readonly mode: "unsigned"; readonly from: readonly Cidr[]; readonly signers?: SignerList };

export interface TrustRule {
  /** A domain, or "*" for every domain without a rule. */
  readonly domain: string;
  readonly policy: TrustPolicy;
}
