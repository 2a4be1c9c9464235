/**
 * SIGHUP to `isched serve` (dist/isched): the endpoint's certificate is replaced from the
 * --tls-cert/--tls-key files while clients keep sending, without a failed request; a key that is
 * not the certificate's is refused in one log line, the certificate in use kept and the process
 * alive; the console's certificate follows; a new --api-token-file, --smtp-auth-file and
 * --webhook-secret-file are taken (the old token and account stop working, deliveries are signed
 * with the new secret).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dialog } from "../smtp-intake/_harness.ts";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { createTestCa, peerSerial } from "../support/pki.ts";
import { startRecordingWebhook } from "../support/recording-webhook.ts";
import { startRequestLoop } from "../support/request-loop.ts";
import { serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { type ServeProcess, serveProcess } from "../support/serve-process.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  removeTempDirs();
});

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

async function waitFor(read: () => string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(read());
    if (m) return m[0];
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${read()}`);
    await Bun.sleep(20);
  }
}

/** `isched serve` with its data in DIR/data, on free ports, with `args`. */
async function started(dir: string, args: string[], consoleAt = "127.0.0.1:0"): Promise<ServeProcess> {
  const s = await serveProcess([
    "--data",
    join(dir, "data"),
    "--listen",
    "127.0.0.1:0",
    "--console",
    consoleAt,
    ...args,
  ]);
  if (!("process" in s)) throw new Error(`serve exited ${s.exitCode}:\n${s.stdout}\n${s.stderr}`);
  cleanups.push(() => s.stop());
  return s;
}

describe("SIGHUP to isched serve", () => {
  test("swaps the endpoint's and the console's certificate while clients keep sending; a wrong key changes nothing", async () => {
    const ca = createTestCa();
    cleanups.push(() => ca.remove());
    const dir = tempDir();
    // b lasts longer than a: the expiry metric tells them apart.
    const [a, b] = [
      ca.issue(["localhost", "127.0.0.1"]),
      ca.issue(["localhost", "127.0.0.1"], { validDays: 5 }),
    ];
    const certFile = join(dir, "tls.pem");
    const keyFile = join(dir, "tls.key");
    copyFileSync(a.certFile, certFile);
    copyFileSync(a.keyFile, keyFile);
    // On a non-loopback address the console serves the endpoint's certificate.
    const s = await started(dir, ["--tls-cert", certFile, "--tls-key", keyFile], "0.0.0.0:0");
    expect(s.url).toStartWith("https://");
    const consolePort = Number(new URL(s.consoleUrl).port);
    expect(s.consoleUrl).toStartWith("https://");
    expect(await peerSerial(consolePort, ca.caCertPem)).toBe(serialOf(a.certPem));
    expect(await peerSerial(s.port, ca.caCertPem)).toBe(serialOf(a.certPem));
    const url = `${s.url}/.well-known/ischedule?action=capabilities`;
    const expected = await (await fetch(url, { tls: { ca: ca.caCertPem } })).text();
    expect(expected).toContain("<query-result");

    const clients = startRequestLoop({ url, ca: ca.caCertPem, expect: expected });
    try {
      await Bun.sleep(300);
      copyFileSync(b.certFile, certFile);
      copyFileSync(b.keyFile, keyFile);
      s.process.kill("SIGHUP");
      await waitFor(s.stderr, /reload: now in use.*item=tls/);
      expect(await peerSerial(s.port, ca.caCertPem)).toBe(serialOf(b.certPem));
      expect(await peerSerial(consolePort, ca.caCertPem)).toBe(serialOf(b.certPem));
      // The expiry metric follows the certificate in use (the console is off loopback: the token).
      const token = readFileSync(join(dir, "data", "api-token"), "utf8").trim();
      const scraped = await (
        await fetch(`https://127.0.0.1:${consolePort}/metrics`, {
          headers: { authorization: `Bearer ${token}` },
          tls: { ca: ca.caCertPem },
        })
      ).text();
      expect(scraped).toContain(
        `isched_certificate_expiry_timestamp_seconds{listener="--listen"} ${Date.parse(new X509Certificate(b.certPem).validTo) / 1000}`,
      );
      await Bun.sleep(300);

      // A key that is not the certificate's: refused in one line, the certificate in use stays.
      copyFileSync(a.keyFile, keyFile);
      s.process.kill("SIGHUP");
      const refused = await waitFor(s.stderr, /.*reload refused.*/);
      expect(refused).toContain(
        `reload refused, nothing changed: --tls-key ${keyFile}: not the private key of the certificate in --tls-cert ${certFile}`,
      );
      expect(await peerSerial(s.port, ca.caCertPem)).toBe(serialOf(b.certPem));
      await Bun.sleep(300);
    } finally {
      const { ok, failures } = await clients.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(20);
    }
    expect(s.process.exitCode).toBeNull();
    expect(s.process.signalCode).toBeNull();
  }, 60_000);

  test("takes a new --api-token-file: the new token works, the old one no longer", async () => {
    const dir = tempDir();
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "first-token-0123456789abcdef\n", { mode: 0o600 });
    const s = await started(dir, ["--api-token-file", tokenFile]);
    const status = async (token: string) =>
      (await fetch(`${s.consoleUrl}/api/v1/keys`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await status("first-token-0123456789abcdef")).toBe(200);
    writeFileSync(tokenFile, "second-token-0123456789abcdef\n");
    s.process.kill("SIGHUP");
    await waitFor(s.stderr, /reload: now in use.*item=api-token/);
    expect(await status("second-token-0123456789abcdef")).toBe(200);
    expect(await status("first-token-0123456789abcdef")).toBe(401);
    expect(s.stderr()).not.toContain("second-token");
  }, 60_000);

  test("takes a new --smtp-auth-file: the new account logs in, the removed one no longer", async () => {
    const dir = tempDir();
    const authFile = join(dir, "accounts");
    writeFileSync(authFile, "alice:first-password\n", { mode: 0o600 });
    const s = await started(dir, ["--smtp-listen", "127.0.0.1:0", "--smtp-auth-file", authFile]);
    const listening = await waitFor(s.stderr, /smtp intake listening address=127\.0\.0\.1:\d+/);
    const port = Number(listening.split(":").at(-1));
    const auth = async (user: string, password: string) =>
      (
        await dialog(port, [
          "EHLO client.example",
          `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString("base64")}`,
        ])
      )[2]!.slice(0, 3);
    expect(await auth("alice", "first-password")).toBe("235");
    writeFileSync(authFile, "bob:second-password\n");
    s.process.kill("SIGHUP");
    await waitFor(s.stderr, /reload: now in use.*item=smtp-auth/);
    expect(await auth("bob", "second-password")).toBe("235");
    expect(await auth("alice", "first-password")).toBe("535");
    expect(s.stderr()).not.toContain("second-password");
  }, 60_000);

  test("takes a new --webhook-secret-file: deliveries are signed with the new secret", async () => {
    const dir = tempDir();
    const secretFile = join(dir, "webhook-secret");
    writeFileSync(secretFile, "first-webhook-secret-0123456789abcdef\n", { mode: 0o600 });
    const webhook = startRecordingWebhook("second-webhook-secret-0123456789abcdef");
    cleanups.push(() => webhook.stop());
    const s = await serveBinary([
      "--domain",
      "example.test",
      "--deliver",
      `webhook:${webhook.url}`,
      "--webhook-secret-file",
      secretFile,
    ]);
    cleanups.push(() => s.stop());
    await submitInvitation(s, { domain: "example.test", attendee: "mailto:bob@example.test" });
    expect(webhook.badSignatures()).toBeGreaterThan(0);
    expect(webhook.deliveries).toHaveLength(0);

    writeFileSync(secretFile, "second-webhook-secret-0123456789abcdef\n");
    process.kill(s.pid, "SIGHUP");
    await waitFor(s.stderr, /reload: now in use.*item=webhook-secret/);
    await submitInvitation(s, { domain: "example.test", attendee: "mailto:bob@example.test" });
    await webhook.waitFor((d) => d.length >= 1, 15_000);
    expect(s.stderr()).not.toContain("second-webhook-secret");
  }, 60_000);
});
