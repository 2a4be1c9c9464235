/**
 * The delivery targets of `isched serve`: one local target per distinct --deliver rule (shared by the
 * hosted domains that name it), iMIP when --smtp is set, and the remote iSchedule target; and the
 * lookup the dispatcher uses to find a delivery's target from its route and domain.
 */

import { ConfigError } from "../config/errors.ts";
import { describeTarget, type LocalTargetSpec, type ServeConfig, targetFor } from "../config/serve-config.ts";
import type { DeliveryTarget } from "../delivery/target.ts";
import { createSmtpSender, parseSmtpUrl, redactSmtpUrl, type SmtpSender } from "../imip/index.ts";
import { remoteIScheduleTarget } from "../outbound/remote-target.ts";
import type { DeliveryRow } from "../store/store.ts";
import { imipTarget } from "../targets/imip-target.ts";
import { iScheduleForwardTarget } from "../targets/ischedule-forward-target.ts";
import { storeTarget } from "../targets/store-target.ts";
import { webhookTarget } from "../targets/webhook-target.ts";
import type { ServerKeys } from "./keys.ts";
import type { Peers } from "./peers.ts";

export interface Targets {
  /** Each hosted domain's local target. */
  readonly local: ReadonlyMap<string, DeliveryTarget>;
  readonly imip?: DeliveryTarget;
  readonly remote: DeliveryTarget;
  /** The sender of iMIP mail, to close on shutdown. */
  readonly smtpSender?: SmtpSender;
  targetFor(delivery: Pick<DeliveryRow, "route" | "domain">): DeliveryTarget | undefined;
  /** The webhook targets sign with this secret from now on (a reload of --webhook-secret-file). */
  setWebhookSecret(secret: string): void;
}

export function deliveryTargets(o: {
  config: ServeConfig;
  peers: Peers;
  /** Our keys: they sign, and outbound iSchedule waits until peers can find them. */
  keys: ServerKeys;
  nowMs: () => number;
}): Targets {
  const { config, nowMs } = o;
  let webhookSecret = config.webhookSecret ?? "";
  const remote = remoteIScheduleTarget({
    discovery: o.peers.discovery,
    capabilities: o.peers.capabilities,
    fetch: o.peers.fetch,
    signingKey: o.keys.live.signingKey,
    peerRoutes: config.peers ?? [],
    keyWait: o.keys.publication.waitReason,
    nowMs,
  });
  const smtpSender = config.smtpUrl
    ? createSmtpSender({ url: parseSmtpUrl(config.smtpUrl), ca: config.ca })
    : undefined;
  const imip =
    smtpSender &&
    imipTarget({
      sender: smtpSender,
      from: config.imipFrom ?? `isched@${config.domains[0]}`,
      relayLabel: redactSmtpUrl(config.smtpUrl!),
      nowMs,
    });
  const byLabel = new Map<string, DeliveryTarget>();
  const build = (spec: LocalTargetSpec): DeliveryTarget => {
    const label = describeTarget(spec);
    const existing = byLabel.get(label);
    if (existing) return existing;
    let target: DeliveryTarget;
    switch (spec.kind) {
      case "store":
        target = storeTarget();
        break;
      case "ischedule":
        target = iScheduleForwardTarget({
          url: spec.url,
          username: spec.username,
          password: spec.password,
          ca: config.ca,
          nowMs,
        });
        break;
      case "webhook":
        // from-flags.ts refuses both of these at start-up; a configuration built otherwise is checked here.
        if (!config.webhookSecret) throw new ConfigError("--deliver webhook: needs --webhook-secret-file");
        target = webhookTarget({ url: spec.url, secret: () => webhookSecret, ca: config.ca, nowMs });
        break;
      case "imip":
        if (!imip) throw new ConfigError("--deliver imip needs --smtp");
        target = imip;
        break;
    }
    byLabel.set(label, target);
    return target;
  };
  const local = new Map(config.domains.map((d) => [d, build(targetFor(config.deliver, d))]));
  return {
    local,
    imip,
    remote,
    smtpSender,
    setWebhookSecret(secret) {
      webhookSecret = secret;
    },
    targetFor(d) {
      if (d.route === "local") return local.get(d.domain);
      if (d.route === "imip") return imip;
      if (d.route === "ischedule") return remote;
      return undefined;
    },
  };
}
