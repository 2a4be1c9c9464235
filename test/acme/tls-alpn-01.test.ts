/**
 * Certificates by TLS-ALPN-01 on the endpoint's own port: pebble validates by connecting to the hot
 * TLS listener's port with ALPN `acme-tls/1` (the front hands those connections to the challenge
 * responder) while ordinary clients keep getting answers on the same port. The new certificate is
 * swapped in, checked by a client that trusts only pebble's root, then renewed, and a client loop
 * running all along sees no failed request.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { createAcmeClient } from "../../src/acme/client.ts";
import { type HotTlsListener, startHotTlsListener } from "../../src/acme/hot-tls-listener.ts";
import { createCertificateManager } from "../../src/acme/manager.ts";
import { renewalDueAt } from "../../src/acme/schedule.ts";
import { openAcmeStore, type StoredCertificate } from "../../src/acme/store.ts";
import { type AlpnResponder, startAlpnResponder, tlsAlpnSolver } from "../../src/acme/tls-alpn.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { type RunningPebble, startPebble } from "../support/pebble.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { startRequestLoop } from "../support/request-loop.ts";

const NAME = "isched.example.test";
let dns: RunningDnsmasq;
let pebble: RunningPebble;
let responder: AlpnResponder;
let listener: HotTlsListener;
let bootstrap: TestCa;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-acme-"));
  dns = await startDnsmasq({ zones: ["example.test"], hosts: [{ name: NAME, address: "127.0.0.1" }] });
  bootstrap = createTestCa();
  const first = bootstrap.issue([NAME]);
  responder = await startAlpnResponder();
  listener = startHotTlsListener({
    host: "127.0.0.1",
    port: await freePort(),
    tls: { cert: first.certPem, key: first.keyPem },
    alpn: responder,
    fetch: () => new Response("ok"),
  });
  pebble = await startPebble({
    httpPort: await freePort(), // nothing listens there: only TLS-ALPN-01 can succeed
    tlsPort: listener.port,
    dns: dns.server,
    authzReusePercent: 0,
  });
});

afterAll(async () => {
  await listener?.stop();
  await responder?.stop();
  await pebble?.stop();
  await dns?.stop();
  bootstrap?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function peer(root: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port: listener.port, servername: NAME, ca: root }, () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on("error", reject);
  });
}

describe("certificates by TLS-ALPN-01 from pebble", () => {
  test("obtains and renews on the endpoint's port while a client loop sees no failed request", async () => {
    const root = await pebble.issuingRootPem();
    let clock = Date.now();
    const store = openAcmeStore(dir);
    const swaps: Promise<void>[] = [];
    const manager = createCertificateManager({
      store,
      client: createAcmeClient({
        directoryUrl: pebble.directoryUrl,
        accountKeyPem: store.accountKey(),
        caPem: pebble.acmeCaPem,
        pollMinMs: 100,
      }),
      names: [NAME],
      solver: tlsAlpnSolver(responder),
      onCertificate: (c: StoredCertificate) => {
        swaps.push(listener.setCertificate({ cert: c.chainPem, key: c.keyPem }));
      },
      log: silentLogger,
      nowMs: () => clock,
      random: () => 0.5,
    });

    const clients = startRequestLoop({
      url: `https://127.0.0.1:${listener.port}/`,
      ca: [bootstrap.caCertPem, root],
      serverName: NAME,
      expect: "ok",
      loops: 1,
    });
    try {
      await manager.check();
      expect(manager.status().lastError).toBeUndefined();
      await Promise.all(swaps);
      const first = manager.current!;
      expect((await peer(root)).serialNumber).toBe(serialOf(first));

      clock = renewalDueAt(first) + 1; // told that the certificate is near its end
      await manager.check();
      expect(manager.status().lastError).toBeUndefined();
      await Promise.all(swaps);
      const renewed = manager.current!;
      expect(serialOf(renewed)).not.toBe(serialOf(first));
      expect((await peer(root)).serialNumber).toBe(serialOf(renewed));
      await Bun.sleep(100);
    } finally {
      const { ok, failures } = await clients.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(10);
    }
    expect(swaps).toHaveLength(2);
    expect(responder.has(NAME)).toBe(false);
  });
});

function serialOf(c: StoredCertificate): string {
  return new X509Certificate(c.chainPem).serialNumber;
}
