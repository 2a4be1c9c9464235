/**
 * Our keys as the running server should use them after a rotation in the console: the published
 * record and the signing key read from dkim_keys when asked (one indexed read; parsed signing keys
 * cached per row), instead of the copy own-keys.ts made at start-up. The operator's --dkim-key keeps
 * precedence for signing, as at start-up.
 *
 * Wiring, in app.ts: `const live = createLiveKeys({ db, startup: keys, operatorKey: !!config.dkimKeyFile })`,
 * then `keyRecord: live.record` for the endpoint and `live.signingKey` wherever requests are signed.
 */
import type { Database } from "bun:sqlite";
import { loadSigningKey, type SigningKey } from "../dkim/sign.ts";
import { keysOfDomain } from "../store/dkim-keys.ts";
import type { OwnKeys } from "./own-keys.ts";

export interface LiveKeys {
  signingKey(domain: string): SigningKey | undefined;
  record(domain: string, selector: string): string | undefined;
}

export function createLiveKeys(o: { db: Database; startup: OwnKeys; operatorKey: boolean }): LiveKeys {
  const parsed = new Map<number, SigningKey>();
  return {
    signingKey(domain) {
      if (o.operatorKey) return o.startup.signingKey(domain);
      const active = keysOfDomain(o.db, domain.toLowerCase()).find((k) => k.state === "active");
      if (!active) return o.startup.signingKey(domain);
      let key = parsed.get(active.id);
      if (!key) {
        key = loadSigningKey(active.privateKeyPem, active.domain, active.selector);
        parsed.set(active.id, key);
      }
      return key;
    },
    record(domain, selector) {
      const row = keysOfDomain(o.db, domain.toLowerCase()).find((k) => k.selector === selector);
      if (row) return row.state === "retired" ? undefined : row.record;
      return o.startup.record(domain, selector);
    },
  };
}
