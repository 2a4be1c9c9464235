/**
 * The key resolver isched uses in practice: operator keys (private-exchange), DNS TXT through
 * isched's own DNS client, and http/well-known through peerFetch. One place wires them together for
 * the server and the command line.
 */

import { createResolver, type DnsResolver } from "../dns/client.ts";
import type { HostPort } from "../net/host-port.ts";
import { dnsTxtSource } from "./dns-txt-source.ts";
import { createKeyResolver, type KeyResolver } from "./key-resolver.ts";
import type { KeySource } from "./key-source.ts";
import type { LookupLimits } from "./lookup-gate.ts";
import { type PrivateKeyEntry, privateExchangeSource } from "./private-exchange-source.ts";
import { wellKnownSource } from "./well-known-source.ts";

export interface NetworkKeyResolverOptions {
  peerKeys?: readonly PrivateKeyEntry[];
  /** Use only the operator's keys (e.g. `dkim verify --pub-key`). */
  onlyPeerKeys?: boolean;
  dns?: DnsResolver;
  dnsServer?: HostPort;
  allowPrivatePeers?: boolean;
  /** Extra CA certificates (PEM) for http/well-known key servers. */
  ca?: string;
  nowMs?: () => number;
  /** Lookups waiting on the network at once (the receiver's limits against forged signatures). */
  limits?: LookupLimits;
}

export function createNetworkKeyResolver(o: NetworkKeyResolverOptions): KeyResolver {
  const sources: KeySource[] = [];
  if (o.peerKeys && o.peerKeys.length > 0) sources.push(privateExchangeSource(o.peerKeys));
  if (!o.onlyPeerKeys) {
    const dns = o.dns ?? createResolver({ servers: o.dnsServer ? [o.dnsServer] : undefined });
    sources.push(dnsTxtSource(dns));
    sources.push(
      wellKnownSource({ resolver: dns, fetch: { allowPrivate: o.allowPrivatePeers ?? false, ca: o.ca } }),
    );
  }
  return createKeyResolver({ sources, nowMs: o.nowMs, limits: o.limits });
}
