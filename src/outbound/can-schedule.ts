/**
 * Would iSchedule reach this domain with this message? Discovery finds a receiver and one of its
 * targets advertises capabilities that accept the message (version, component and method, media type,
 * size, dates, instances, attachments). The SMTP intake asks this before taking a recipient away from
 * email; a temporary failure counts as "no" there, because email still gets the message through.
 */
import { acceptsMessage, supportsVersion } from "../ischedule/capabilities.ts";
import type { ItipMessage } from "../itip/index.ts";
import type { CapabilitiesCache } from "./capabilities-cache.ts";
import type { DiscoveryService } from "./discovery.ts";
import { messageFacts } from "./message-facts.ts";

export interface CanScheduleOptions {
  discovery: DiscoveryService;
  capabilities: CapabilitiesCache;
}

export function createCanSchedule(o: CanScheduleOptions) {
  return async function canSchedule(
    domain: string,
    facts: { itip: ItipMessage; sizeBytes: number },
  ): Promise<boolean> {
    const found = await o.discovery.discover(domain);
    if (found.kind !== "found") return false;
    for (const target of found.targets) {
      const caps = await o.capabilities.get(target.url);
      if (!caps.ok) continue;
      if (!supportsVersion(caps.capabilities, "1.0")) return false;
      const m = messageFacts({
        itip: facts.itip,
        sizeBytes: facts.sizeBytes,
        maxInstances: caps.capabilities.maxInstances,
      });
      return acceptsMessage(caps.capabilities, m).ok;
    }
    return false;
  };
}
