/**
 * How `isched serve` reaches other organisations: its DNS client, the HTTP client options for peers
 * (address policy, private CAs), discovery, the capabilities cache and the key resolver of inbound
 * signatures, each wrapped so that what they learn about a peer is kept for the console's peer pages
 * (src/console/peer-facts.ts).
 */
import type { ServeConfig } from "../config/serve-config.ts";
import { PeerFacts } from "../console/peer-facts.ts";
import type { KeyResolver } from "../dkim/key-resolver.ts";
import { DEFAULT_LOOKUP_LIMITS } from "../dkim/lookup-gate.ts";
import { createNetworkKeyResolver } from "../dkim/network-key-resolver.ts";
import { cachingAddresses } from "../dns/address-cache.ts";
import { createResolver, type DnsResolver } from "../dns/client.ts";
import type { Logger } from "../log/logger.ts";
import { type PeerRequest, type PeerResponse, peerFetch } from "../net/peer-fetch.ts";
import { type CapabilitiesCache, createCapabilitiesCache } from "../outbound/capabilities-cache.ts";
import { createDiscovery, type DiscoveryService } from "../outbound/discovery.ts";
import type { Store } from "../store/store.ts";

export interface Peers {
  readonly dns: DnsResolver;
  /** peerFetch with isched's address policy and CAs. */
  readonly fetch: (req: PeerRequest) => Promise<PeerResponse>;
  readonly discovery: DiscoveryService;
  readonly capabilities: CapabilitiesCache;
  /** The keys of inbound signatures (private-exchange, DNS, well-known), within the lookup limits. */
  readonly keys: KeyResolver;
  readonly facts: PeerFacts;
}

export function connectPeers(o: {
  config: ServeConfig;
  store: Store;
  log: Logger;
  nowMs: () => number;
}): Peers {
  const { config, nowMs } = o;
  for (const p of config.peers ?? []) {
    if (p.legacyHttp)
      o.log.log("warn", "plain-HTTP iSchedule allowed for a legacy peer", {
        domain: p.domain,
        how: p.url ?? "_ischedule._tcp and redirects to http://",
      });
  }
  const dns = createResolver({ servers: config.dnsServer ? [config.dnsServer] : undefined });
  const fetchOptions = {
    resolver: cachingAddresses(dns, { nowMs }),
    allowPrivate: config.allowPrivatePeers,
    ca: config.ca,
  };
  const fetch = (req: PeerRequest) => peerFetch(req, fetchOptions);
  const facts = new PeerFacts(o.store, nowMs);
  return {
    dns,
    fetch,
    facts,
    discovery: facts.watchDiscovery(
      createDiscovery({ resolver: dns, staticRoutes: config.peers ?? [], walkParents: config.walkParents }),
    ),
    capabilities: facts.watchCapabilities(createCapabilitiesCache({ fetch, nowMs })),
    keys: facts.watchKeys(
      createNetworkKeyResolver({
        peerKeys: config.peerKeys,
        dns,
        allowPrivatePeers: config.allowPrivatePeers,
        ca: config.ca,
        nowMs,
        limits: {
          maxWaiting: config.maxKeyFetches ?? DEFAULT_LOOKUP_LIMITS.maxWaiting,
          maxWaitingPerDomain: config.maxKeyFetchesPerDomain ?? DEFAULT_LOOKUP_LIMITS.maxWaitingPerDomain,
        },
      }),
    ),
  };
}
