/**
 * isched's own keys for `isched serve` (src/keys): loaded (or made, and logged, on first start), read
 * again from the database when the console rotates them, and watched until peers can find them in
 * DNS, when the deliveries that waited for them go.
 */
import { operatorKeyOf } from "../config/from-flags.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import type { DnsResolver } from "../dns/client.ts";
import { createKeyPublication, type KeyPublication } from "../keys/key-publication.ts";
import { createLiveKeys, type LiveKeys } from "../keys/live-keys.ts";
import { loadOwnKeys, type OwnKeys } from "../keys/own-keys.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";

export interface ServerKeys {
  /** As loaded at start (with the keys made now, to print). */
  readonly startup: OwnKeys;
  /** As the console leaves them. */
  readonly live: LiveKeys;
  readonly publication: KeyPublication;
  /** After a rotation in the console: signing, key records and publication read the keys again. */
  changed(): Promise<void>;
}

export async function serverKeys(o: {
  config: ServeConfig;
  store: Store;
  dns: DnsResolver;
  log: Logger;
  /** Our key just became visible in DNS: waiting deliveries may go. */
  onVisible: () => void;
  nowMs: () => number;
}): Promise<ServerKeys> {
  const { config, store, log, nowMs } = o;
  const startup = await loadOwnKeys({
    store,
    domains: config.domains,
    operatorKey: operatorKeyOf(config),
    nowMs: nowMs(),
  });
  for (const k of startup.generated)
    log.log("info", "generated a DKIM key; publish its record", {
      domain: k.domain,
      name: `${k.selector}._domainkey.${k.domain}`,
    });
  const live = await createLiveKeys({ store, startup, operatorKey: config.dkimKeyFile !== undefined });
  const publication = await createKeyPublication({
    store,
    domains: config.domains,
    dns: o.dns,
    signingKey: live.signingKey,
    record: live.record,
    signUnpublished: config.signUnpublished === true,
    log,
    onVisible: o.onVisible,
    nowMs,
  });
  return {
    startup,
    live,
    publication,
    async changed() {
      await live.refresh();
      await publication.refresh();
    },
  };
}
