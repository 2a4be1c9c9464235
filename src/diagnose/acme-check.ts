/**
 * `isched doctor` with --acme-email: the certificate isched keeps in DATA/acme (does it cover the
 * names, how long is it good for, when is it renewed) and whether the ACME server's directory
 * answers (RFC 8555 §7.1.1). Reads only: it neither makes the folder nor orders anything.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { nearExpiry, renewalDueAt } from "../acme/schedule.ts";
import { readCertificateFile, type StoredCertificate } from "../acme/store.ts";
import { type Check, finding, timed } from "./check.ts";

const DIRECTORY_TIMEOUT_MS = 10_000;

export function acmeCertificateCheck(o: { dataDir: string; names: readonly string[]; nowMs: number }): Check {
  const file = join(o.dataDir, "acme", "certificate.pem");
  const subject = `ACME certificate ${file}`;
  if (!existsSync(file))
    return finding("acme-certificate", "warn", subject, "none yet", {
      fix: "isched serve obtains one at start; the ACME server must be reachable and the names must point at this host",
    });
  let c: StoredCertificate;
  try {
    c = readCertificateFile(file);
  } catch (e) {
    return finding("acme-certificate", "fail", subject, (e as Error).message, {
      fix: "remove the file: isched serve obtains a new certificate at start",
    });
  }
  const missing = o.names.filter((n) => !c.names.includes(n));
  const until = new Date(c.notAfterMs).toISOString();
  if (missing.length > 0)
    return finding("acme-certificate", "warn", subject, `does not cover ${missing.join(", ")}`, {
      fix: "isched serve orders a certificate for every --hostname at start",
    });
  if (c.notAfterMs <= o.nowMs)
    return finding("acme-certificate", "fail", subject, `expired at ${until}`, {
      fix: "see the log for why renewal fails (isched serve retries with backoff)",
    });
  if (nearExpiry(c.notAfterMs, o.nowMs))
    return finding("acme-certificate", "warn", subject, `expires at ${until}, within 7 days`, {
      fix: "see the log for why renewal fails (isched serve retries with backoff)",
    });
  return finding(
    "acme-certificate",
    "pass",
    subject,
    `for ${c.names.join(", ")} until ${until}; renewed from ${new Date(renewalDueAt(c)).toISOString()}`,
  );
}

export async function acmeDirectoryCheck(o: { directoryUrl: string; caPem?: string }): Promise<Check> {
  const subject = `ACME directory ${o.directoryUrl}`;
  const { value, ms } = await timed(async () => {
    try {
      const r = await fetch(o.directoryUrl, {
        signal: AbortSignal.timeout(DIRECTORY_TIMEOUT_MS),
        ...(o.caPem !== undefined && { tls: { ca: o.caPem } }),
      });
      const body = (await r.json().catch(() => undefined)) as { newOrder?: unknown } | undefined;
      return r.ok && typeof body?.newOrder === "string"
        ? undefined
        : `answered HTTP ${r.status} without a directory`;
    } catch (e) {
      return `cannot reach it: ${(e as Error).message}`;
    }
  });
  return value === undefined
    ? finding("acme-directory", "pass", subject, "answers", { ms })
    : finding("acme-directory", "warn", subject, value, {
        fix: "check --acme-directory, outbound HTTPS from this host, and --acme-ca-file for a private CA",
        ms,
      });
}
