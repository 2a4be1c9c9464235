/**
 * isched's own keys for `isched serve` (src/keys): loaded (or made, and logged, on first start), read
 * again from the database when the console rotates them, and watched until peers can find them in
 * DNS, when the deliveries that waited for them go.
 */
import type { Database } from "bun:sqlite";
import { operatorKeyOf } from "../config/from-flags.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import type { DnsResolver } from "../dns/client.ts";
import { createKeyPublication, type KeyPublication } from "../keys/key-publication.ts";
import { createLiveKeys, type LiveKeys } from "../keys/live-keys.ts";
import { loadOwnKeys, type OwnKeys } from "../keys/own-keys.ts";
import type { Logger } from "../log/logger.ts";

export interface ServerKeys {
  /** As loaded at start (with the keys made now, to print). */
  readonly startup: OwnKeys;
  /** As the console leaves them. */
  readonly live: LiveKeys;
  readonly publication: KeyPublication;
}

export function serverKeys(o: {
  config: ServeConfig;
  db: Database;
  dns: DnsResolver;
  log: Logger;
  /** Our key just became visible in DNS: waiting deliveries may go. */
  onVisible: () => void;
  nowMs: () => number;
}): ServerKeys {
  const { config, db, log, nowMs } = o;
  const startup = loadOwnKeys({
    db,
    domains: config.domains,
    operatorKey: operatorKeyOf(config),
    nowMs: nowMs(),
  });
  for (const k of startup.generated)
    log.log("info", "generated a DKIM key; publish its record", {
      domain: k.domain,
      name: `${k.selector}._domainkey.${k.domain}`,
    });
  const live = createLiveKeys({ db, startup, operatorKey: config.dkimKeyFile !== undefined });
  const publication = createKeyPublication({
    db,
    domains: config.domains,
    dns: o.dns,
    signingKey: live.signingKey,
    record: live.record,
    signUnpublished: config.signUnpublished === true,
    log,
    onVisible: o.onVisible,
    nowMs,
  });
  return { startup, live, publication };
}
