/**
 * Crash safety of the outbound queue with real processes: isched A (the compiled binary) drains 1,000
 * queued deliveries to isched B over HTTPS; A is killed with SIGKILL while deliveries are in flight,
 * then started again. Every message reaches B, and B holds each exactly once (the stable
 * iSchedule-Message-ID lets it drop a duplicate sent just before the kill).
 * SQLite only: A's queue is filled in its data folder's file (PostgreSQL: fault-kill9-postgres.test.ts).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { ischedBinary } from "../support/binary.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, startIsched, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

const N = 1000;
const keyA = generateDkimKey("rsa");
let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let b: TestServer;
let a: Subprocess | undefined;

function startA(): Subprocess {
  return Bun.spawn(
    [
      ischedBinary(),
      "serve",
      "--domain",
      "a.test",
      "--listen",
      `127.0.0.1:0`,
      "--console",
      `127.0.0.1:0`,
      "--data",
      join(dir, "a-data"),
      "--dkim-key",
      join(dir, "a.key"),
      "--dkim-selector",
      "sel",
      "--dns-server",
      `${dns.server.host}:${dns.server.port}`,
      "--ca-file",
      ca.caCertFile,
      "--allow-private-peers",
      "--retry",
      "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s",
      "--log-level",
      "warn",
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
}

const countAtB = () =>
  b.db
    .query<{ n: number; unique_ids: number }, []>(
      "SELECT count(*) AS n, count(DISTINCT remote_message_id) AS unique_ids FROM messages WHERE uid LIKE 'crash-%'",
    )
    .get()!;

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-crash-"));
  ca = createTestCa();
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem);
  const portB = await freePort();
  dns = await startDnsmasq({
    zones: ["a.test", "b.test"],
    srv: [{ name: "_ischedules._tcp.b.test", target: "isched.b.test", port: portB }],
    hosts: [{ name: "isched.b.test", address: "127.0.0.1" }],
    txt: [{ name: "sel._domainkey.a.test", strings: splitTxtValue(keyA.record) }],
  });
  const cert = ca.issue(["isched.b.test"]);
  b = await startIsched({
    domains: ["b.test"],
    listen: { host: "127.0.0.1", port: portB },
    tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
    dnsServer: dns.server,
    limits: {
      maxRecipients: 100,
      maxContentLength: 1 << 20,
      minDateTime: "19000101T000000Z",
      maxDateTime: "21001231T235959Z",
      maxInstances: 10_000,
    },
  });
  // 1,000 outbound messages already accepted by A (as its submission API would store them).
  mkdirSync(join(dir, "a-data"), { mode: 0o700 });
  const adb = openDatabase(join(dir, "a-data", "isched.db"));
  const queue = new DeliveryQueue(createSqliteStore(adb));
  for (let i = 0; i < N; i++) {
    const body = invitation({
      uid: `crash-${i}`,
      organizer: "mailto:alice@a.test",
      attendees: [`mailto:user${i}@b.test`],
    });
    await queue.accept(
      {
        direction: "outbound",
        intake: "api",
        originator: "mailto:alice@a.test",
        method: "REQUEST",
        component: "VEVENT",
        uid: `crash-${i}`,
        contentType: "text/calendar; method=REQUEST; component=VEVENT",
        body,
      },
      [{ recipient: `mailto:user${i}@b.test`, domain: "b.test", route: "ischedule" }],
    );
  }
  adb.close();
});

afterAll(async () => {
  a?.kill("SIGKILL");
  await b?.close();
  await dns?.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

test("after kill -9 mid-drain and a restart, B holds each of 1,000 messages exactly once", async () => {
  a = startA();
  await waitFor(() => countAtB().n >= 150, 60_000);
  a.kill("SIGKILL");
  await a.exited;
  const atKill = countAtB().n;
  expect(atKill).toBeLessThan(N);
  a = startA();
  // Done when A says every delivery is delivered: one sent just before the kill reached B but was
  // not recorded, so A sends it again after recovery and B answers it as a replay.
  const statesOfA = () => {
    const adb = openDatabase(join(dir, "a-data", "isched.db"), { readOnly: true });
    try {
      return adb
        .query<{ state: string; n: number }, []>("SELECT state, count(*) AS n FROM deliveries GROUP BY state")
        .all();
    } finally {
      adb.close();
    }
  };
  await waitFor(() => statesOfA().every((s) => s.state === "delivered"), 120_000);
  expect(statesOfA()).toEqual([{ state: "delivered", n: N }]);
  expect(countAtB()).toEqual({ n: N, unique_ids: N });
  a.kill("SIGTERM");
  await a.exited;
}, 240_000);
