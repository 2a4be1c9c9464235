/**
 * SIGHUP in `isched serve`: the files the server read at start that it can take again (the list and
 * the checks are src/ops/reload-plan.ts), and where each change goes: the endpoint's and the
 * console's certificate (swapped behind the TLS front without dropping a connection,
 * src/http/serve-app.ts) and the SMTP intake's STARTTLS certificate; the webhook targets' secret;
 * the SMTP intake's accounts; the API token. All or nothing: a file that is wrong is one log line
 * and the server keeps everything it has (src/ops/reloader.ts).
 *
 * Not taken without a restart (the reload says so in one line when their files change): --ca-file,
 * --dkim-key and --peer-key, whose values are held by the peers' connections and key caches.
 */
import type { ServeConfig } from "../config/serve-config.ts";
import type { Logger } from "../log/logger.ts";
import { fingerprintSources, type ReloadSources } from "../ops/reload-plan.ts";
import { createReloader, type Reloader } from "../ops/reloader.ts";
import type { Notifier } from "../ops/sd-notify.ts";
import type { SmtpIntake } from "../smtp-intake/index.ts";

type TlsPair = { cert: string; key: string };

export interface ReloadableParts {
  readonly endpoint: { readonly setCertificate?: (tls: TlsPair) => Promise<void> };
  readonly console: {
    readonly setCertificate?: (tls: TlsPair) => Promise<void>;
    readonly api: { setToken(token: string): void };
  };
  readonly smtp?: Pick<SmtpIntake, "setCertificate" | "setAccounts">;
  readonly targets: { setWebhookSecret(secret: string): void };
  /** Told the certificate in use once it is swapped in (the expiry metric). */
  readonly inUse?: (tls: TlsPair) => void;
  /** Told the API token in use (who may read /metrics). */
  readonly tokenInUse?: (token: string) => void;
}

/** The files `config` names that a reload reads again. */
export function reloadSources(config: ServeConfig): ReloadSources {
  const files = config.reloadFiles;
  const tls = config.tls;
  return {
    // An ACME certificate has no --tls-cert/--tls-key: the certificate manager replaces it.
    tls: tls?.keyFile ? { certFile: tls.certFile, keyFile: tls.keyFile } : undefined,
    caFile: files?.caFile,
    dkimKey:
      config.dkimKeyFile && config.dkimSelector
        ? { file: config.dkimKeyFile, domain: config.domains[0]!, selector: config.dkimSelector }
        : undefined,
    peerKeys: files?.peerKeys,
    webhookSecretFile: files?.webhookSecretFile,
    smtpAuthFile: config.smtpIntake?.authFile,
    apiTokenFile: files?.apiTokenFile,
  };
}

export function serverReloader(o: {
  config: ServeConfig;
  parts: ReloadableParts;
  log: Logger;
  notifier?: Pick<Notifier, "reloading" | "ready">;
}): Reloader {
  const { parts, log } = o;
  const sources = reloadSources(o.config);
  /** Starts the swap; waits only for the new certificate to be in use, not for old connections to end. */
  const swap = async (set: ((tls: TlsPair) => Promise<void>) | undefined, tls: TlsPair, what: string) => {
    if (!set) return;
    const drained = set(tls);
    // A backend that cannot start rejects at once; the old one's draining may take an idle timeout.
    await Promise.race([drained, Bun.sleep(0)]);
    drained.catch((e: Error) =>
      log.log("warn", "reload: the previous certificate's listener did not stop cleanly", {
        listener: what,
        error: e?.message ?? String(e),
      }),
    );
  };
  return createReloader({
    sources,
    loaded: fingerprintSources(sources),
    log,
    notifier: o.notifier,
    appliers: {
      tls: async (c) => {
        const pair = { cert: c.cert, key: c.key };
        await swap(parts.endpoint.setCertificate, pair, "endpoint");
        await swap(parts.console.setCertificate, pair, "console");
        parts.smtp?.setCertificate(pair);
        parts.inUse?.(pair);
      },
      "webhook-secret": (c) => parts.targets.setWebhookSecret(c.secret),
      "smtp-auth": (c) => parts.smtp?.setAccounts(c.accounts),
      "api-token": (c) => {
        parts.console.api.setToken(c.token);
        parts.tokenInUse?.(c.token);
      },
    },
  });
}
