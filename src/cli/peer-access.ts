/**
 * How the command line talks to peers the way `isched serve` does: the DNS client (--dns-server or
 * /etc/resolv.conf) and peerFetch's options (--allow-private-peers, --ca-file).
 * `isched doctor` and `isched discover` use it, so what they find is what the server would find.
 */

import type { ServeConfig } from "../config/serve-config.ts";
import { cachingAddresses } from "../dns/address-cache.ts";
import { createResolver, type DnsResolver } from "../dns/client.ts";
import type { PeerFetchOptions } from "../net/peer-fetch.ts";

export function peerAccess(config: ServeConfig): { dns: DnsResolver; fetchOptions: PeerFetchOptions } {
  const dns = createResolver({ servers: config.dnsServer ? [config.dnsServer] : undefined });
  return {
    dns,
    fetchOptions: {
      resolver: cachingAddresses(dns),
      allowPrivate: config.allowPrivatePeers,
      ca: config.ca,
    },
  };
}
