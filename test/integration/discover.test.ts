/**
 * `isched discover` (the compiled binary) against real DNS (dnsmasq) and a real peer (an isched over
 * HTTPS with a test CA): the SRV targets in the order the sender tries them, the TXT path, the
 * capabilities of the first target that answers, the peer's key for a selector, and the route.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { runIsched } from "../support/binary-run.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { startIsched, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let peer: TestServer;
let peerPort: number;
let closedPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-discover-"));
  ca = createTestCa();
  peerPort = await freePort();
  closedPort = await freePort();
  const cert = ca.issue(["cal.peer.test", "down.peer.test", "cal.backup.test", "down.backup.test"]);
  peer = await startIsched({
    domains: ["peer.test"],
    listen: { host: "127.0.0.1", port: peerPort },
    tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
    paths: ["/ischedule"],
  });
  const key = generateDkimKey("rsa");
  const hosts = ["cal.peer.test", "down.peer.test", "cal.backup.test", "down.backup.test"].map((name) => ({
    name,
    address: "127.0.0.1",
  }));
  dns = await startDnsmasq({
    zones: ["peer.test", "backup.test", "mail-only.test"],
    srv: [
      { name: "_ischedules._tcp.peer.test", target: "cal.peer.test", port: peerPort, priority: 0 },
      { name: "_ischedules._tcp.peer.test", target: "down.peer.test", port: closedPort, priority: 10 },
      { name: "_ischedules._tcp.backup.test", target: "down.backup.test", port: closedPort, priority: 0 },
      { name: "_ischedules._tcp.backup.test", target: "cal.backup.test", port: peerPort, priority: 10 },
    ],
    hosts,
    txt: [
      { name: "_ischedules._tcp.peer.test", strings: ["path=/ischedule"] },
      { name: "_ischedules._tcp.backup.test", strings: ["path=/ischedule"] },
      { name: "s1._domainkey.peer.test", strings: splitTxtValue(key.record) },
    ],
  });
});

afterAll(async () => {
  await peer?.close();
  await dns?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

const discover = (target: string, ...extra: string[]) =>
  runIsched([
    "discover",
    target,
    ...["--domain", "home.test", "--data", join(dir, "data")],
    ...[
      "--dns-server",
      `${dns.server.host}:${dns.server.port}`,
      "--ca-file",
      ca.caCertFile,
      "--allow-private-peers",
    ],
    ...extra,
  ]);

test("an address at a peer: SRV targets in try order, TXT path, capabilities, the key for a selector, iSchedule; with timings", async () => {
  const r = await discover("mailto:bob@peer.test", "--selector", "s1");
  expect(r.stderr).toBe("");
  const out = r.stdout.split("\n");
  expect(out[0]).toMatch(
    new RegExp(
      `^srv +SRV _ischedules\\._tcp\\.peer\\.test: 1\\. cal\\.peer\\.test:${peerPort} \\(priority 0, weight 0\\); 2\\. down\\.peer\\.test:${closedPort} \\(priority 10, weight 0\\); TTL \\d+ s \\(\\d+ ms\\)$`,
    ),
  );
  expect(out[1]).toMatch(/^path +\/ischedule$/);
  expect(out[2]).toMatch(
    new RegExp(
      `^capabilities +https://cal\\.peer\\.test:${peerPort}/ischedule: serial 1, versions 1\\.0, VEVENT\\(.*\\(\\d+ ms\\)$`,
    ),
  );
  expect(out[3]).toMatch(/^key +s1: dns\/txt at s1\._domainkey\.peer\.test: rsa 2048 bits \(\d+ ms\)$/);
  expect(out[4]).toBe(`route         iSchedule to https://cal.peer.test:${peerPort}/ischedule`);
  expect(r.exitCode).toBe(0);
});

test("when the first target is down the next one is asked, as the sender does", async () => {
  const r = await discover("backup.test", "--json");
  const out = JSON.parse(r.stdout) as {
    steps: { step: string; ok: boolean; detail: string; ms?: number }[];
    route: { route: string; detail: string };
  };
  const caps = out.steps.filter((s) => s.step === "capabilities");
  expect(caps.map((s) => s.ok)).toEqual([false, true]);
  expect(caps[0]!.detail).toStartWith(`https://down.backup.test:${closedPort}/ischedule: `);
  expect(caps[1]!.detail).toStartWith(`https://cal.backup.test:${peerPort}/ischedule: serial 1`);
  expect(typeof caps[0]!.ms).toBe("number");
  expect(out.route).toEqual({
    route: "ischedule",
    detail: `iSchedule to https://cal.backup.test:${peerPort}/ischedule`,
  });
});

test("a domain without iSchedule goes by iMIP when there is a relay, and has no route without one", async () => {
  const withRelay = await discover("carol@mail-only.test", "--smtp", "smtp://isched:secret@127.0.0.1:2525");
  expect(withRelay.stdout).toMatch(
    /^srv +\(failed\) no _ischedules\._tcp SRV record for mail-only\.test \(\d+ ms\)\n/,
  );
  expect(withRelay.stdout).toContain(
    "route  iMIP through smtp://isched:***@127.0.0.1:2525 (no _ischedules._tcp SRV record for mail-only.test)\n",
  );
  expect(withRelay.stdout).not.toContain("secret");
  expect(withRelay.exitCode).toBe(0);
  const without = await discover("carol@mail-only.test");
  expect(without.stdout).toContain(
    "route  (failed) none: no _ischedules._tcp SRV record for mail-only.test, and no --smtp for iMIP\n",
  );
  expect(without.exitCode).toBe(1);
});

test("a hosted domain is delivered locally; a static route wins over DNS", async () => {
  const local = await discover("alice@home.test");
  expect(local.stdout).toBe("route  home.test is hosted here: delivered to store\n");
  const routed = await discover(
    "peer.test",
    "--peer",
    `peer.test=https://cal.backup.test:${peerPort}/ischedule`,
  );
  expect(routed.stdout).toMatch(
    new RegExp(`^srv +static route \\(--peer\\): 1\\. cal\\.backup\\.test:${peerPort} `),
  );
  expect(routed.stdout).toContain(
    `route         iSchedule to https://cal.backup.test:${peerPort}/ischedule\n`,
  );
  const bad = await discover("not a domain");
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toBe('isched: "not a domain" is not a domain name or an e-mail address\n');
});
