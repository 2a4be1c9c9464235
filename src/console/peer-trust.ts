/**
 * The trust policy the server applies to a peer domain: the nearest rule along the domain and its
 * parents (sub.evil.example is held to evil.example's rule unless it has one of its own), at each
 * level a policy set in the console (peer_policies) before the `--trust` flags; then `*` (console,
 * then flags); then DKIM required. The running server reads it per request (createPeerTrust), so a
 * console change applies to the next request.
 */
import { readSignerList } from "../config/rules.ts";
import { selfAndParents } from "../dns/names.ts";
import type { TrustPolicy, TrustRule } from "../inbound/trust-policy.ts";
import { type Cidr, parseCidrList } from "../net/cidr.ts";
import type { PeerPolicyRow, Store } from "../store/store.ts";

export type PolicySource = "console" | "console *" | "--trust" | "--trust *" | "default";

export interface EffectivePolicy {
  policy: TrustPolicy;
  source: PolicySource;
  /** The domain whose rule applies when it is a parent of the one asked about. */
  inheritedFrom?: string;
  /** The console's row, when there is one for this very domain. */
  row?: PeerPolicyRow;
}

function fromRow(row: PeerPolicyRow): TrustPolicy {
  if (row.trust === "deny") return { mode: "deny" };
  // Rows are checked when written; a bad one (edited by hand) trusts no address and names no signer
  // rather than failing.
  const list = row.signers ? readSignerList(row.domain, row.signers) : undefined;
  const signers =
    list && "domains" in list
      ? { signers: { domains: list.domains, namedBy: `the console's policy for ${row.domain}` } }
      : {};
  if (row.trust === "dkim") return { mode: "dkim", ...signers };
  let from: Cidr[] = [];
  try {
    from = parseCidrList(row.allowFrom ?? "");
  } catch {}
  return { mode: "unsigned", from, ...signers };
}

export async function effectivePolicy(
  store: Store,
  rules: readonly TrustRule[],
  domain: string,
): Promise<EffectivePolicy> {
  for (const d of selfAndParents(domain)) {
    const inheritedFrom = d === domain ? undefined : d;
    const own = await store.peerPolicy(d);
    if (own)
      return { policy: fromRow(own), source: "console", inheritedFrom, row: inheritedFrom ? undefined : own };
    const rule = rules.find((r) => r.domain === d);
    if (rule) return { policy: rule.policy, source: "--trust", inheritedFrom };
  }
  const star = await store.peerPolicy("*");
  if (star) return { policy: fromRow(star), source: "console *" };
  const starRule = rules.find((r) => r.domain === "*");
  if (starRule) return { policy: starRule.policy, source: "--trust *" };
  return { policy: { mode: "dkim" }, source: "default" };
}

/** For the iSchedule receiver (src/server/endpoint.ts): one indexed read per request, so a change applies to the next one. */
export function createPeerTrust(
  store: Store,
  rules: readonly TrustRule[],
): (domain: string) => Promise<TrustPolicy> {
  return async (domain) => (await effectivePolicy(store, rules, domain)).policy;
}

/** A policy as the page shows it and the API returns it. */
export function describePolicy(p: TrustPolicy): {
  mode: TrustPolicy["mode"];
  allowFrom: string | null;
  signers: string[];
} {
  if (p.mode === "deny") return { mode: p.mode, allowFrom: null, signers: [] };
  const signers = [...(p.signers?.domains ?? [])];
  if (p.mode !== "unsigned") return { mode: p.mode, allowFrom: null, signers };
  return { mode: p.mode, allowFrom: p.from.map((c) => c.text.trim()).join(", "), signers };
}
