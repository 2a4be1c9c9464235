/**
 * Our keys as the running server should use them after a rotation in the console: the published
 * record and the signing key from dkim_keys, instead of the copy own-keys.ts made at start-up. The
 * rows are held in memory and read again by refresh(), which the key rotation calls after every
 * change it makes (src/server/app.ts wires it): signing and /.well-known/domainkey ask on every
 * request, and a round trip to the database each time would be one per signed message on a network
 * database (docs/store-interface.md, "peer policies and keys read per request"). Parsed signing
 * keys are cached per row. The operator's --dkim-key keeps precedence for signing, as at start-up.
 */
import { loadSigningKey, type SigningKey } from "../dkim/sign.ts";
import type { DkimKeyRow, Store } from "../store/store.ts";
import type { OwnKeys } from "./own-keys.ts";

export interface LiveKeys {
  signingKey(domain: string): SigningKey | undefined;
  record(domain: string, selector: string): string | undefined;
  /** Reads the keys again: after a rotation, so that the next request uses what it left. */
  refresh(): Promise<void>;
}

export async function createLiveKeys(o: {
  store: Store;
  startup: OwnKeys;
  operatorKey: boolean;
}): Promise<LiveKeys> {
  const parsed = new Map<number, SigningKey>();
  let rows: readonly DkimKeyRow[] = await o.store.keys();
  const ofDomain = (domain: string) => {
    const d = domain.toLowerCase();
    return rows.filter((k) => k.domain === d);
  };
  return {
    signingKey(domain) {
      if (o.operatorKey) return o.startup.signingKey(domain);
      const active = ofDomain(domain).find((k) => k.state === "active");
      if (!active) return o.startup.signingKey(domain);
      let key = parsed.get(active.id);
      if (!key) {
        key = loadSigningKey(active.privateKeyPem, active.domain, active.selector);
        parsed.set(active.id, key);
      }
      return key;
    },
    record(domain, selector) {
      const row = ofDomain(domain).find((k) => k.selector === selector);
      if (row) return row.state === "retired" ? undefined : row.record;
      return o.startup.record(domain, selector);
    },
    async refresh() {
      rows = await o.store.keys();
    },
  };
}
