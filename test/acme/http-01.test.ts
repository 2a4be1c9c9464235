/**
 * Certificates by HTTP-01 from a real ACME CA: Debian's pebble on loopback validates every challenge
 * by connecting to isched's port-80 listener (src/acme/http-listener.ts) at the address a loopback
 * dnsmasq gives for the name. Then the certificate is served and checked by a TLS client that trusts
 * only pebble's issuing root, as a peer would check ours.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { createAcmeClient } from "../../src/acme/client.ts";
import { createHttpChallenges } from "../../src/acme/http-challenges.ts";
import { type AcmeHttpListener, startAcmeHttpListener } from "../../src/acme/http-listener.ts";
import { httpSolver } from "../../src/acme/http-solver.ts";
import { type CertificateStatus, createCertificateManager } from "../../src/acme/manager.ts";
import { renewalDueAt } from "../../src/acme/schedule.ts";
import { openAcmeStore, type StoredCertificate } from "../../src/acme/store.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { type RunningPebble, startPebble } from "../support/pebble.ts";
import { freePort } from "../support/ports.ts";

const NAME = "isched.example.test";
const OTHER = "console.example.test";
let dns: RunningDnsmasq;
let pebble: RunningPebble;
let listener: AcmeHttpListener;
const challenges = createHttpChallenges();
const dirs: string[] = [];

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ["example.test"],
    hosts: [
      { name: NAME, address: "127.0.0.1" },
      { name: OTHER, address: "127.0.0.1" },
    ],
  });
  const httpPort = await freePort();
  listener = startAcmeHttpListener({
    host: "127.0.0.1",
    port: httpPort,
    challenges,
    names: [NAME],
    httpsPort: 443,
  });
  // Every new order validates again, so a renewal is a full round trip through the listener.
  pebble = await startPebble({
    httpPort,
    dns: dns.server,
    authzReusePercent: 0,
    blockedDomains: ["blocked.test"],
  });
});

afterAll(async () => {
  await listener?.stop();
  await pebble?.stop();
  await dns?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "isched-acme-"));
  dirs.push(d);
  return d;
}

function manager(o: { dir: string; names?: string[]; directoryUrl?: string; nowMs?: () => number }) {
  const store = openAcmeStore(o.dir);
  const installed: StoredCertificate[] = [];
  const statuses: CertificateStatus[] = [];
  const m = createCertificateManager({
    store,
    client: createAcmeClient({
      directoryUrl: o.directoryUrl ?? pebble.directoryUrl,
      accountKeyPem: store.accountKey(),
      email: "hostmaster@example.test",
      caPem: pebble.acmeCaPem,
      pollMinMs: 100,
    }),
    names: o.names ?? [NAME],
    solver: httpSolver(challenges),
    onCertificate: (c) => installed.push(c),
    onStatus: (s) => statuses.push(s),
    log: silentLogger,
    nowMs: o.nowMs,
    random: () => 0.5,
  });
  return { m, installed, statuses, store };
}

/** The certificate a TLS client sees for NAME, verified against pebble's issuing root only. */
async function served(c: StoredCertificate, root: string): Promise<tls.PeerCertificate> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: c.chainPem, key: c.keyPem },
    fetch: () => new Response("ok"),
  });
  try {
    return await new Promise((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port: server.port!, servername: NAME, ca: root }, () => {
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on("error", reject);
    });
  } finally {
    await server.stop(true);
  }
}

describe("certificates by HTTP-01 from pebble", () => {
  test("obtains a certificate that a client trusting only the CA's root accepts for the name", async () => {
    const dir = dataDir();
    const { m, installed, statuses } = manager({ dir });
    expect(m.current).toBeUndefined();
    await m.check();
    expect(installed).toHaveLength(1);
    expect(m.status()).toMatchObject({ state: "valid", failures: 0, names: [NAME] });
    expect(m.status().lastError).toBeUndefined();
    expect(statuses.map((s) => s.state)).toEqual(["obtaining", "valid"]);
    const peer = await served(installed[0]!, await pebble.issuingRootPem());
    expect(peer.subjectaltname).toBe(`DNS:${NAME}`);
    // The account key and the certificate are secrets in the data folder.
    expect(statSync(join(dir, "acme", "account-key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "acme", "certificate.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "acme")).mode & 0o777).toBe(0o700);
    expect(challenges.size).toBe(0);
  });

  test("start() obtains on its own, then waits for the renewal time", async () => {
    const { m, installed, statuses } = manager({ dir: dataDir() });
    m.start();
    for (let i = 0; i < 100 && installed.length === 0; i++) await Bun.sleep(50);
    m.stop();
    expect(installed).toHaveLength(1);
    expect(statuses.at(-1)).toMatchObject({ state: "valid", nextAttemptMs: renewalDueAt(installed[0]!) });
  });

  test("a restart serves the saved certificate without asking the CA", async () => {
    const dir = dataDir();
    const first = manager({ dir });
    await first.m.check();
    const again = manager({ dir, directoryUrl: `https://127.0.0.1:${await freePort()}/dir` });
    expect(again.m.current?.chainPem).toBe(first.installed[0]!.chainPem);
    expect(again.m.status().state).toBe("valid");
    expect(again.m.status().nextAttemptMs).toBe(renewalDueAt(again.m.current!));
  });

  test("renews when a third of the lifetime is left, through a new validation", async () => {
    let clock = Date.now();
    const dir = dataDir();
    const { m, installed } = manager({ dir, nowMs: () => clock });
    await m.check();
    const first = installed[0]!;
    const dueAt = renewalDueAt(first);
    clock = dueAt - 60_000;
    await m.check();
    expect(installed).toHaveLength(1); // not yet
    clock = dueAt + 1;
    await m.check();
    expect(installed).toHaveLength(2);
    expect(installed[1]!.chainPem).not.toBe(first.chainPem);
    expect(installed[1]!.keyPem).not.toBe(first.keyPem);
    expect(m.current).toBe(installed[1]);
    expect(m.status().nextAttemptMs).toBe(renewalDueAt(installed[1]!));
    // The renewed one is what a restart finds.
    expect(openAcmeStore(dir).loadCertificate()?.chainPem).toBe(installed[1]!.chainPem);
  });

  test("an unreachable ACME server is a clear error and a retry a minute later", async () => {
    const clock = Date.now();
    const port = await freePort();
    const { m, installed } = manager({
      dir: dataDir(),
      directoryUrl: `https://127.0.0.1:${port}/dir`,
      nowMs: () => clock,
    });
    await m.check();
    expect(installed).toHaveLength(0);
    const s = m.status();
    expect(s.state).toBe("failing");
    expect(s.failures).toBe(1);
    expect(s.lastError?.step).toBe("account");
    expect(s.lastError?.message).toStartWith(
      `Cannot reach the ACME server https://127.0.0.1:${port}/dir to create or find the ACME account: connect ECONNREFUSED`,
    );
    expect(s.lastError?.message).toContain("ECONNREFUSED");
    expect(s.nextAttemptMs).toBe(clock + 60_000); // random() = 0.5: no jitter
  });

  test("a refused order says what the CA said, and the retries back off", async () => {
    let clock = Date.now();
    const { m } = manager({ dir: dataDir(), names: ["www.blocked.test"], nowMs: () => clock });
    await m.check();
    expect(m.status().lastError?.message).toMatch(
      /^Cannot order a certificate for www\.blocked\.test: .*blocked/,
    );
    expect(m.status().nextAttemptMs).toBe(clock + 60_000);
    clock += 60_000;
    await m.check();
    expect(m.status().failures).toBe(2);
    expect(m.status().nextAttemptMs).toBe(clock + 120_000);
  });

  test("a failed validation names the name, the challenge and the CA's reason", async () => {
    const { m, installed } = manager({ dir: dataDir(), names: ["nowhere.example.test"] });
    await m.check();
    expect(installed).toHaveLength(0);
    expect(m.status().lastError?.step).toBe("validation");
    expect(m.status().lastError?.message).toMatch(
      /^Cannot validate nowhere\.example\.test by http-01: .*nowhere\.example\.test/,
    );
    expect(challenges.size).toBe(0);
  });
});
