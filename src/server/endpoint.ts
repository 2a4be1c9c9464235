/**
 * The iSchedule endpoint of `isched serve` (src/inbound): the capabilities it advertises (with their
 * serial kept in the database), the receiver with its trust policies (the console's first, then
 * --trust), signature limits, replay and copy tracking and refusal log, handing accepted messages to
 * the intake.
 */
import { DEFAULT_VERIFY_DEADLINE_MS, type ServeConfig } from "../config/serve-config.ts";
import { createPeerTrust } from "../console/peer-trust.ts";
import type { DeliveryTarget } from "../delivery/target.ts";
import { DEFAULT_MAX_SIGNATURE_AGE_SECONDS, MAX_SIGNATURE_LIFETIME_SECONDS } from "../dkim/verify.ts";
import { advertisedCapabilities, type PublishedCapabilities } from "../inbound/capabilities.ts";
import { createEndpoint, type Endpoint } from "../inbound/endpoint.ts";
import { RefusalLog } from "../inbound/refusal-log.ts";
import { InFlightRequests } from "../inbound/replays.ts";
import type { IntakeService } from "../intake/accept.ts";
import type { ComponentCapability } from "../ischedule/capabilities.ts";
import type { Logger } from "../log/logger.ts";
import type { IschedMetrics } from "../metrics/isched-metrics.ts";
import type { Store } from "../store/store.ts";
import type { Peers } from "./peers.ts";

export async function scheduleEndpoint(o: {
  config: ServeConfig;
  store: Store;
  intake: IntakeService;
  peers: Peers;
  /** The local targets: the capabilities advertise what they take. */
  localTargets: readonly DeliveryTarget[];
  /** Our key records, served at /.well-known/domainkey (src/keys/live-keys.ts). */
  keyRecord: (domain: string, selector: string) => string | undefined;
  /** What isched can send to other domains (the remote target's), for a trusted server's messages. */
  outboundComponents: readonly ComponentCapability[];
  log: Logger;
  metrics: IschedMetrics;
  nowMs: () => number;
}): Promise<{ endpoint: Endpoint; refusals: RefusalLog; capabilities: () => PublishedCapabilities }> {
  const { config } = o;
  const published = await advertisedCapabilities(
    {
      targets: o.localTargets.map((t) => t.handles),
      limits: config.limits,
      administrator: config.administrator,
      inlineAttachments: false,
    },
    (fingerprint) => o.store.capabilitiesSerial(fingerprint),
  );
  const capabilities = () => published;
  const refusals = new RefusalLog(o.store, {
    nowMs: o.nowMs,
    onWriteError: (error, waiting) =>
      o.log.log("error", "the refusal log cannot be written; its rows wait", { error, waiting }),
  });
  const endpoint = createEndpoint({
    receiver: {
      intake: o.intake,
      keys: o.peers.keys,
      capabilities,
      trust: createPeerTrust(o.store, config.trust),
      alignment: config.alignment,
      deadlineMs: config.deliveryDeadlineMs,
      allowSha1: config.allowSha1,
      verifyDeadlineMs: config.verifyDeadlineMs ?? DEFAULT_VERIFY_DEADLINE_MS,
      signatureLifetime: {
        maxAgeSeconds: (config.maxSignatureAgeMs ?? DEFAULT_MAX_SIGNATURE_AGE_SECONDS * 1000) / 1000,
        maxLifetimeSeconds: MAX_SIGNATURE_LIFETIME_SECONDS,
      },
      inFlight: new InFlightRequests(),
      refusals,
      nowMs: o.nowMs,
      outboundComponents: o.outboundComponents,
      metrics: o.metrics,
    },
    capabilities,
    keyRecord: o.keyRecord,
    log: o.log,
    bodyTimeoutMs: config.bodyTimeoutMs,
    metrics: o.metrics,
  });
  return { endpoint, refusals, capabilities };
}
