import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { fingerprintSources, planReload, type ReloadSources } from "../../src/ops/reload-plan.ts";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

const cas: TestCa[] = [];
afterEach(() => {
  for (const ca of cas.splice(0)) ca.remove();
  removeTempDirs();
});

/** A server's files as flags name them, with a certificate from a fresh test CA. */
function setup() {
  const ca = createTestCa();
  cas.push(ca);
  const dir = tempDir();
  const first = ca.issue(["isched.example.com"]);
  const files = {
    cert: join(dir, "tls.pem"),
    key: join(dir, "tls.key"),
    ca: join(dir, "ca.pem"),
    dkim: join(dir, "dkim.key"),
    peer: join(dir, "peer.pub"),
    webhook: join(dir, "webhook-secret"),
    auth: join(dir, "smtp-auth"),
    token: join(dir, "api-token"),
  };
  copyFileSync(first.certFile, files.cert);
  copyFileSync(first.keyFile, files.key);
  copyFileSync(ca.caCertFile, files.ca);
  writeFileSync(files.dkim, generateDkimKey("ed25519").privateKeyPem);
  writeFileSync(files.peer, generateDkimKey("ed25519").publicKeyPem);
  writeFileSync(files.webhook, "first secret\n");
  writeFileSync(files.auth, "cyrus:first-password\n");
  writeFileSync(files.token, "first-token\n");
  const sources: ReloadSources = {
    tls: { certFile: files.cert, keyFile: files.key },
    caFile: files.ca,
    dkimKey: { file: files.dkim, domain: "example.com", selector: "s1" },
    peerKeys: [`peer.example:s2=${files.peer}`],
    webhookSecretFile: files.webhook,
    smtpAuthFile: files.auth,
    apiTokenFile: files.token,
  };
  return { ca, files, sources, loaded: fingerprintSources(sources) };
}

describe("planning a reload", () => {
  test("nothing changed: nothing to apply", () => {
    const { sources, loaded } = setup();
    const plan = planReload(sources, loaded, { nowMs: Date.now() });
    expect(plan).toMatchObject({ ok: true, changes: [] });
    expect(plan.ok && plan.unchanged).toEqual([
      "tls",
      "ca",
      "dkim-key",
      "peer-key peer.example:s2",
      "webhook-secret",
      "smtp-auth",
      "api-token",
    ]);
  });

  test("each changed file, checked as at start-up, and only those", () => {
    const { ca, files, sources, loaded } = setup();
    const next = ca.issue(["isched.example.com"]);
    copyFileSync(next.certFile, files.cert);
    copyFileSync(next.keyFile, files.key);
    writeFileSync(files.webhook, "second secret\n");
    writeFileSync(files.peer, generateDkimKey("ed25519").publicKeyPem);
    const plan = planReload(sources, loaded, { nowMs: Date.now() });
    if (!plan.ok) throw new Error(plan.errors.join("; "));
    expect(plan.changes.map((c) => c.kind)).toEqual(["tls", "peer-key", "webhook-secret"]);
    const tls = plan.changes[0]!;
    expect(tls.kind === "tls" && tls.cert).toBe(next.certPem);
    const secret = plan.changes[2]!;
    expect(secret.kind === "webhook-secret" && secret.secret).toBe("second secret");
    // Once applied, the new fingerprints make the same files "unchanged".
    expect(planReload(sources, plan.fingerprints, { nowMs: Date.now() })).toMatchObject({
      ok: true,
      changes: [],
    });
  });

  test("any wrong file: one line each, and nothing to apply, even for the files that are right", () => {
    const { ca, files, sources, loaded } = setup();
    const other = ca.issue(["other.example.com"]);
    copyFileSync(other.certFile, files.cert); // the key no longer matches
    writeFileSync(files.webhook, "new secret\n"); // right, but not applied
    writeFileSync(files.auth, "no colon here\n");
    writeFileSync(files.dkim, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n");
    const plan = planReload(sources, loaded, { nowMs: Date.now() });
    expect(plan).toEqual({
      ok: false,
      errors: [
        `--tls-key ${files.key}: not the private key of the certificate in --tls-cert ${files.cert}`,
        `--dkim-key ${files.dkim}: not a PEM private key (it holds a PUBLIC KEY)`,
        `--smtp-auth-file ${files.auth} line 1: expected user:secret`,
      ],
    });
  });

  test("a certificate that has expired, or is not valid yet, is refused: the one in use stays", () => {
    const { ca, files, sources, loaded } = setup();
    const next = ca.issue(["isched.example.com"]);
    copyFileSync(next.certFile, files.cert);
    copyFileSync(next.keyFile, files.key);
    const later = planReload(sources, loaded, { nowMs: Date.now() + 10 * 86_400_000 });
    expect(later.ok).toBe(false);
    expect(!later.ok && later.errors[0]).toMatch(/the certificate expired on .*; keeping the one in use$/);
    const earlier = planReload(sources, loaded, { nowMs: Date.now() - 10 * 86_400_000 });
    expect(!earlier.ok && earlier.errors[0]).toMatch(
      /the certificate is valid only from .*; keeping the one in use$/,
    );
  });

  test("a file that went away says which", () => {
    const { files, sources, loaded } = setup();
    const plan = planReload({ ...sources, apiTokenFile: join(files.token, "..", "gone") }, loaded, {
      nowMs: Date.now(),
    });
    expect(plan).toEqual({
      ok: false,
      errors: [`--api-token-file: cannot read ${join(files.token, "..", "gone")} (ENOENT)`],
    });
  });
});
