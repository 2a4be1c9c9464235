/**
 * Settings that work but may not do what the operator thinks, said at start-up and shown on the
 * console's Overview for as long as they hold (console policies can change them while isched runs).
 *
 * Trusting loopback for unsigned requests without TLS: the endpoint then speaks plain HTTP, so it
 * presumably sits behind a TLS proxy, and a proxy on the same host makes every client on the
 * Internet arrive from 127.0.0.1 or ::1, trusted. `--trusted-proxy` (the client's address from the
 * proxy's Forwarded or X-Forwarded-For header) or TLS in isched itself ends the warning.
 */

import type { TrustRule } from "../inbound/trust-policy.ts";
import { anyContains, type Cidr, parseCidrList } from "../net/cidr.ts";
import type { PeerPolicyRow } from "../store/store.ts";

export interface RiskySetting {
  readonly id: string;
  readonly text: string;
}

export interface RiskInputs {
  readonly trust: readonly TrustRule[];
  /** The console's trust policies (the peer_policies table). */
  readonly consolePolicies: readonly PeerPolicyRow[];
  readonly tls: boolean;
  readonly trustedProxies: readonly Cidr[];
  /** The hosted domains. */
  readonly domains?: readonly string[];
}

const LOOPBACK = ["127.0.0.1", "::1"];

export function riskySettings(i: RiskInputs): RiskySetting[] {
  return [...unreachableDomains(i.domains ?? []), ...loopbackTrust(i)];
}

/** Single-label names and the names reserved for one host or one link (RFC 6761 §6.3, RFC 6762). */
export function isPrivateDomainName(domain: string): boolean {
  return !domain.includes(".") || /\.(localhost|local|localdomain)$/.test(domain);
}

function unreachableDomains(domains: readonly string[]): RiskySetting[] {
  const local = domains.filter(isPrivateDomainName);
  if (local.length === 0) return [];
  return [
    {
      id: "local-domain",
      text:
        `isched serves ${local.map((d) => `"${d}"`).join(", ")}, a name no peer can look up ` +
        "(without --domain isched takes this host's domain, and this host's name has none): peers " +
        "cannot find your endpoint or verify your signatures. Give --domain with your organisation's domain.",
    },
  ];
}

function loopbackTrust(i: RiskInputs): RiskySetting[] {
  if (i.tls || i.trustedProxies.length > 0) return [];
  const rules = [
    ...i.trust.flatMap((r) =>
      r.policy.mode === "unsigned"
        ? [
            {
              where: `--trust ${r.domain}=unsigned:${r.policy.from.map((c) => c.text).join(",")}`,
              from: r.policy.from,
            },
          ]
        : [],
    ),
    ...i.consolePolicies.flatMap((p) =>
      p.trust === "unsigned" && p.allowFrom
        ? [
            {
              where: `the console's policy for ${p.domain} (unsigned from ${p.allowFrom})`,
              from: ranges(p.allowFrom),
            },
          ]
        : [],
    ),
  ];
  const loopback = rules.filter((r) => LOOPBACK.some((a) => anyContains(r.from, a)));
  if (loopback.length === 0) return [];
  return [
    {
      id: "loopback-trust",
      text:
        `${loopback.map((r) => r.where).join(" and ")} trusts unsigned requests from loopback, and the ` +
        "endpoint has no TLS: behind a TLS proxy on this host every client arrives from loopback and is " +
        "trusted. Give --trusted-proxy with the proxy's address (the client's address then comes from " +
        "its Forwarded or X-Forwarded-For header), or --tls-cert and --tls-key.",
    },
  ];
}

function ranges(text: string): Cidr[] {
  try {
    return parseCidrList(text);
  } catch {
    return [];
  }
}
