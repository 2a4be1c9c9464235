/**
 * The certificate manager's decisions that need no CA: expiry warnings, a damaged or foreign saved
 * certificate. (Obtaining and renewing against a real CA: http-01.test.ts and tls-alpn-01.test.ts.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAcmeClient } from "../../src/acme/client.ts";
import { createHttpChallenges } from "../../src/acme/http-challenges.ts";
import { httpSolver } from "../../src/acme/http-solver.ts";
import { type AcmeLogLevel, createCertificateManager } from "../../src/acme/manager.ts";
import { openAcmeStore } from "../../src/acme/store.ts";
import { createTestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

const ca = createTestCa();
const dirs: string[] = [];
afterAll(() => {
  ca.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setUp(o: { names: string[]; saved?: string[]; damaged?: boolean; nowMs: () => number }) {
  const dir = mkdtempSync(join(tmpdir(), "isched-acme-"));
  dirs.push(dir);
  const store = openAcmeStore(dir);
  if (o.saved) {
    const c = ca.issue(o.saved); // valid for 3 days
    store.saveCertificate({ chainPem: c.certPem, keyPem: c.keyPem });
  }
  if (o.damaged) writeFileSync(join(dir, "acme", "certificate.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n");
  const lines: { level: AcmeLogLevel; message: string }[] = [];
  const m = createCertificateManager({
    store,
    // Nothing listens there: any attempt fails at once.
    client: createAcmeClient({
      directoryUrl: `https://127.0.0.1:${await freePort()}/dir`,
      accountKeyPem: store.accountKey(),
    }),
    names: o.names,
    solver: httpSolver(createHttpChallenges()),
    onCertificate: () => undefined,
    log: { log: (level, message) => lines.push({ level, message }) },
    nowMs: o.nowMs,
    random: () => 0.5,
  });
  return { m, lines };
}

describe("the certificate manager", () => {
  test("warns once an hour about a certificate within 7 days of its end", async () => {
    let clock = Date.now();
    const { m, lines } = await setUp({
      names: ["a.example.test"],
      saved: ["a.example.test"],
      nowMs: () => clock,
    });
    expect(m.status().state).toBe("valid");
    const warnings = () => lines.filter((l) => l.message === "the certificate expires within 7 days").length;
    await m.check();
    expect(warnings()).toBe(1);
    expect(m.status().failures).toBe(0); // renewal (2 days after issue) is not due yet
    clock += 30 * 60_000;
    await m.check();
    expect(warnings()).toBe(1);
    clock += 31 * 60_000;
    await m.check();
    expect(warnings()).toBe(2);
  });

  test("a saved certificate for other names is not served, and a new one is asked for at once", async () => {
    const { m, lines } = await setUp({
      names: ["b.example.test"],
      saved: ["a.example.test"],
      nowMs: Date.now,
    });
    expect(m.current).toBeUndefined();
    expect(m.status().nextAttemptMs).toBeLessThanOrEqual(Date.now());
    expect(lines[0]?.message).toContain("does not cover the names");
  });

  test("a damaged certificate file is reported and replaced, not served", async () => {
    const { m, lines } = await setUp({ names: ["a.example.test"], damaged: true, nowMs: Date.now });
    expect(m.current).toBeUndefined();
    expect(m.status().lastError?.step).toBe("store");
    expect(m.status().lastError?.message).toContain("certificate.pem is damaged");
    expect(lines[0]).toMatchObject({
      level: "error",
      message: "cannot use the saved certificate; obtaining a new one",
    });
  });
});
