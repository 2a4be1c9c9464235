/**
 * What a reload (SIGHUP, `systemctl reload isched`) would change: every file the running server
 * read at start and can take again without a restart is read and checked again, as start-up checks
 * it, and compared with what is in use. All or nothing: when any file is wrong (unreadable, not the
 * key of the certificate, an expired certificate, a malformed account line), the plan is a list of
 * one-line errors and nothing is to be applied; the server keeps what it has.
 *
 * What a reload takes again:
 * - `--tls-cert`/`--tls-key`: the endpoint's certificate (swapped without dropping a connection,
 *   src/acme/hot-tls-listener.ts) and the SMTP intake's STARTTLS certificate. A certificate that
 *   has expired or is not yet valid is refused: renewing by hand must not take the endpoint down.
 * - `--ca-file`: the CAs trusted for peers, key servers and targets.
 * - `--dkim-key`: the operator's own signing key, same selector (a new selector is a new flag value:
 *   a restart). Peers verify with the key in DNS, so the new key waits, as a new key does, until
 *   key-publication.ts sees its record (unless --sign-unpublished).
 * - `--peer-key` files: peers' public keys received out of band, rotated by the peer.
 * - `--webhook-secret-file`, `--smtp-auth-file`, `--api-token-file`: secrets that are rotated.
 *
 * Not reloaded: the command line and ISCHED_* variables themselves (addresses, domains, policies:
 * a restart), the database, and isched's own keys in it (the console manages those).
 *
 * Files are compared by SHA-256 of their content; the plan carries the new fingerprints, which the
 * caller keeps once it has applied the changes.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";
import { readCertificates, readPrivateKey, readSecretFile, readTlsPair } from "../config/files.ts";
import { parsePeerKey } from "../config/rules.ts";
import type { PrivateKeyEntry } from "../dkim/private-exchange-source.ts";
import { loadSigningKey } from "../dkim/sign.ts";
import { loadAuthFile, type SmtpAccounts } from "../smtp-intake/auth-file.ts";

/** The files the running server read, as its flags name them. */
export interface ReloadSources {
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly caFile?: string;
  readonly dkimKey?: { readonly file: string; readonly domain: string; readonly selector: string };
  /** `--peer-key` values as given (`DOMAIN:SELECTOR=FILE`). */
  readonly peerKeys?: readonly string[];
  readonly webhookSecretFile?: string;
  readonly smtpAuthFile?: string;
  readonly apiTokenFile?: string;
}

export type ReloadChange =
  | { readonly kind: "tls"; readonly cert: string; readonly key: string; readonly notAfterMs: number }
  | { readonly kind: "ca"; readonly pem: string }
  | { readonly kind: "dkim-key"; readonly pem: string; readonly domain: string; readonly selector: string }
  | { readonly kind: "peer-key"; readonly entry: PrivateKeyEntry }
  | { readonly kind: "webhook-secret"; readonly secret: string }
  | { readonly kind: "smtp-auth"; readonly accounts: SmtpAccounts }
  | { readonly kind: "api-token"; readonly token: string };

/** SHA-256 of each file's content, by item (`tls`, `ca`, `peer-key example.com:s1`, ...). */
export type Fingerprints = Readonly<Record<string, string>>;

export type ReloadPlan =
  | {
      readonly ok: true;
      readonly changes: readonly ReloadChange[];
      /** Items whose files did not change. */
      readonly unchanged: readonly string[];
      /** What to remember once the changes are applied. */
      readonly fingerprints: Fingerprints;
    }
  | { readonly ok: false; readonly errors: readonly string[] };

const sha256 = (...texts: string[]): string => {
  const h = createHash("sha256");
  for (const t of texts) h.update(t).update("\u0000");
  return h.digest("hex");
};

/** The fingerprints of what start-up loaded (the caller computes them once, at start). */
export function fingerprintSources(s: ReloadSources): Fingerprints {
  const plan = planReload(s, {}, { nowMs: Date.now(), checkValidity: false });
  if (!plan.ok) throw new ConfigError(plan.errors[0]!);
  return plan.fingerprints;
}

export function planReload(
  s: ReloadSources,
  loaded: Fingerprints,
  o: { nowMs: number; checkValidity?: boolean },
): ReloadPlan {
  const errors: string[] = [];
  const changes: ReloadChange[] = [];
  const unchanged: string[] = [];
  const fingerprints: Record<string, string> = {};
  /** Reads an item's files, checks them, and records a change when they differ from `loaded`. */
  const item = (name: string, files: readonly string[], flag: string, build: () => ReloadChange) => {
    let texts: string[];
    try {
      texts = files.map((f) => readFileSync(f, "utf8"));
    } catch (e) {
      errors.push(
        `${flag}: cannot read ${(e as NodeJS.ErrnoException).path ?? files[0]} (${(e as NodeJS.ErrnoException).code ?? "error"})`,
      );
      return;
    }
    const fp = sha256(...texts);
    fingerprints[name] = fp;
    if (loaded[name] === fp) {
      unchanged.push(name);
      return;
    }
    try {
      changes.push(build());
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  };

  if (s.tls) {
    const { certFile, keyFile } = s.tls;
    item("tls", [certFile, keyFile], "--tls-cert/--tls-key", () => {
      const pair = readTlsPair(certFile, keyFile);
      const leaf = readCertificates("--tls-cert", certFile).first;
      const from = Date.parse(leaf.validFrom);
      const to = Date.parse(leaf.validTo);
      if (o.checkValidity !== false && o.nowMs >= to)
        throw new ConfigError(
          `--tls-cert ${certFile}: the certificate expired on ${new Date(to).toISOString()}; keeping the one in use`,
        );
      if (o.checkValidity !== false && o.nowMs < from)
        throw new ConfigError(
          `--tls-cert ${certFile}: the certificate is valid only from ${new Date(from).toISOString()}; keeping the one in use`,
        );
      return { kind: "tls", cert: pair.cert, key: pair.key, notAfterMs: to };
    });
  }
  if (s.caFile) {
    const file = s.caFile;
    item("ca", [file], "--ca-file", () => ({ kind: "ca", pem: readCertificates("--ca-file", file).pem }));
  }
  if (s.dkimKey) {
    const { file, domain, selector } = s.dkimKey;
    item("dkim-key", [file], "--dkim-key", () => {
      const { pem } = readPrivateKey("--dkim-key", file);
      try {
        loadSigningKey(pem, domain, selector);
      } catch (e) {
        throw new ConfigError(`--dkim-key ${file}: ${(e as Error).message}`);
      }
      return { kind: "dkim-key", pem, domain, selector };
    });
  }
  for (const raw of s.peerKeys ?? []) {
    const m = /^([^:=]+):([^=]+)=(.+)$/.exec(raw);
    if (!m) {
      errors.push(`--peer-key: "${raw}" is not DOMAIN:SELECTOR=FILE`);
      continue;
    }
    item(`peer-key ${m[1]}:${m[2]}`, [m[3]!], `--peer-key ${m[1]}:${m[2]}`, () => ({
      kind: "peer-key",
      entry: parsePeerKey(raw),
    }));
  }
  if (s.webhookSecretFile) {
    const file = s.webhookSecretFile;
    item("webhook-secret", [file], "--webhook-secret-file", () => ({
      kind: "webhook-secret",
      secret: readSecretFile("--webhook-secret-file", file),
    }));
  }
  if (s.smtpAuthFile) {
    const file = s.smtpAuthFile;
    item("smtp-auth", [file], "--smtp-auth-file", () => ({
      kind: "smtp-auth",
      accounts: loadAuthFile(file),
    }));
  }
  if (s.apiTokenFile) {
    const file = s.apiTokenFile;
    item("api-token", [file], "--api-token-file", () => ({
      kind: "api-token",
      token: readSecretFile("--api-token-file", file),
    }));
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, changes, unchanged, fingerprints };
}
