/**
 * kill -9 under mixed load with the queue on PostgreSQL: the crash test of fault-kill9.test.ts for
 * `isched serve --database postgres://…`. isched A (the compiled binary, node "a" on the real
 * PostgreSQL of test/support/postgres.ts, with its default durability) takes signed invitations
 * from a peer for its users, delivered to a webhook, and submissions through its API for carol@b.test,
 * sent over HTTPS to isched B (another binary on SQLite, found by dnsmasq SRV, never killed). A is
 * killed with SIGKILL several times, each at a random moment 0.2 to 1.5 s after it came up, and
 * started again at once under the same --node-id (its leases are its own to take back at start).
 *
 * After each restart every request A had accepted before the kill is in the database. At the end,
 * once both queues have drained: everything accepted reached its recipient's webhook; nothing is
 * doubled, neither in the store (one message per UID, one delivery per UID and recipient, all
 * delivered, none broken) nor at a webhook (one message id per UID and recipient); B got each of A's
 * messages once; a repeat at A's webhook is only for a delivery found in flight at a restart (what
 * the webhook contract allows, docs/webhook.md).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { drained, MixedLoad, REMOTE_USER, tally } from "../support/mixed-load.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { serveRemotePeer } from "../support/remote-peer.ts";
import type { ServedBinary } from "../support/serve-binary.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

const KILLS = 6;

let dir: string;
let pg: RunningPostgres;
/** The test's own connection to A's database, to look at what is stored. */
let db: SQL;
let ca: TestCa;
let dns: RunningDnsmasq;
let hookA: RecordingWebhook;
let hookB: RecordingWebhook;
let b: ServedBinary;
let a: ServeProcess | undefined;
let aArgs: string[];
let token = "";
let load: MixedLoad;
const ports = { a: 0, console: 0, b: 0 };
/** Deliveries A found in flight at its restarts and put back in the queue (from its log). */
let recovered = 0;

async function startA(): Promise<ServeProcess> {
  a = running(await serveProcess(aArgs, { timeoutMs: 30_000 }));
  return a;
}

/** Reads what a run of A recovered at its start; none may have gone to 'broken'. */
function noteRecovery(run: ServeProcess): void {
  const line = /recovered deliveries left in flight by a previous run requeued=(\d+) broken=(\d+)/.exec(
    run.stderr(),
  );
  recovered += Number(line?.[1] ?? 0);
  expect(Number(line?.[2] ?? 0)).toBe(0);
}

async function uidsInA(): Promise<Set<string>> {
  const rows: { uid: string }[] =
    await db`SELECT uid FROM messages WHERE uid IS NOT NULL AND refusal IS NULL`;
  return new Set(rows.map((r) => r.uid));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-kill9-pg-"));
  ca = createTestCa();
  hookA = startRecordingWebhook();
  hookB = startRecordingWebhook();
  pg = await startPostgres();
  db = new SQL({ url: pg.url, max: 1 });
  const keyA = generateDkimKey("rsa");
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "hook-a"), `${hookA.secret}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "hook-b"), `${hookB.secret}\n`, { mode: 0o600 });
  [ports.a, ports.console, ports.b] = [await freePort(), await freePort(), await freePort()];
  dns = await startDnsmasq({
    zones: ["a.test", "b.test"],
    srv: [{ name: "_ischedules._tcp.b.test", target: "isched.b.test", port: ports.b }],
    hosts: [{ name: "isched.b.test", address: "127.0.0.1" }],
    txt: [{ name: "k1._domainkey.a.test", strings: splitTxtValue(keyA.record) }],
  });
  b = await serveRemotePeer({
    ca,
    dns,
    webhookUrl: hookB.url,
    webhookSecretFile: join(dir, "hook-b"),
    port: ports.b,
  });
  aArgs = [
    "--domain",
    "a.test",
    "--listen",
    `127.0.0.1:${ports.a}`,
    "--console",
    `127.0.0.1:${ports.console}`,
    "--data",
    join(dir, "a-data"),
    "--database",
    pg.url,
    "--node-id",
    "a",
    "--dkim-key",
    join(dir, "a.key"),
    "--dkim-selector",
    "k1",
    "--dns-server",
    `${dns.server.host}:${dns.server.port}`,
    "--ca-file",
    ca.caCertFile,
    "--allow-private-peers",
    "--peer-key",
    `peer.test:s1=${join(dir, "peer.pub.pem")}`,
    "--deliver",
    `webhook:${hookA.url}`,
    "--webhook-secret-file",
    join(dir, "hook-a"),
    "--retry",
    "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
    "--delivery-deadline",
    "1s",
    "--log-level",
    "warn",
  ];
  await startA();
  token = readFileSync(join(dir, "a-data", "api-token"), "utf8").trim();
  load = new MixedLoad({
    endpointPort: ports.a,
    consolePort: ports.console,
    token: () => token,
    peerKey: loadSigningKey(ED_PRIVATE, "peer.test", "s1"),
  });
}, 90_000);

afterAll(async () => {
  await load?.stop();
  a?.process.kill("SIGKILL");
  await a?.process.exited;
  await b?.stop();
  await db?.close();
  await pg?.stop();
  await hookA?.stop();
  await hookB?.stop();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

test(`${KILLS} kill -9 of a node on PostgreSQL under mixed load: nothing accepted is lost, nothing doubled in the store or at a webhook, the queues drain`, async () => {
  load.start({ inbound: 4, outbound: 2 });
  for (let k = 0; k < KILLS; k++) {
    await Bun.sleep(200 + Math.floor(Math.random() * 1300));
    noteRecovery(a!);
    a!.process.kill("SIGKILL");
    await a!.process.exited;
    const before = load.acceptedUids();
    await startA();
    // Every request accepted before the kill is still there.
    const held = await uidsInA();
    expect({ kill: k + 1, lost: before.filter((uid) => !held.has(uid)) }).toEqual({ kill: k + 1, lost: [] });
  }
  await load.stop();
  noteRecovery(a!);

  const api = (base: string, t: string) => (path: string) =>
    fetch(`${base}/api/v1${path}`, { headers: { authorization: `Bearer ${t}` } });
  const apiA = api(`http://127.0.0.1:${ports.console}`, token);
  const apiB = api(b.consoleUrl, b.token);
  const end = Date.now() + 60_000;
  while (!((await drained(apiA)) && (await drained(apiB)))) {
    if (Date.now() > end) throw new Error("the queues did not drain within 60 s of the last restart");
    await Bun.sleep(200);
  }

  const atA = tally(hookA);
  const atB = tally(hookB);
  const acceptedIn = [...load.accepted].filter((k) => k.startsWith("in-"));
  const acceptedOut = [...load.accepted].filter((k) => k.startsWith("out-"));
  console.log(
    `${KILLS} kills on PostgreSQL: inbound accepted ${acceptedIn.length} (${load.inboundResends} sent again), ` +
      `outbound accepted ${acceptedOut.length} (${load.unanswered.length} unanswered); repeats at A's webhook ` +
      `${atA.repeats} (${recovered} deliveries found in flight at the restarts), at B's ${atB.repeats}`,
  );

  expect(load.unexpected).toEqual([]);
  expect(acceptedIn.length).toBeGreaterThan(20);
  expect(acceptedOut.length).toBeGreaterThan(10);
  // Nothing accepted is lost.
  expect(acceptedIn.filter((k) => !atA.at.has(k))).toEqual([]);
  expect(acceptedOut.filter((k) => !atB.at.has(k))).toEqual([]);
  // Nothing doubled in the store: one message per UID, one delivery per UID and recipient, all delivered.
  const doubled = await db`SELECT uid, count(*)::int AS n FROM messages WHERE refusal IS NULL
    GROUP BY uid HAVING count(*) > 1`;
  expect(doubled).toEqual([]);
  const twice = await db`SELECT m.uid, d.recipient, count(*)::int AS n FROM deliveries d
    JOIN messages m ON m.id = d.message_id GROUP BY m.uid, d.recipient HAVING count(*) > 1`;
  expect(twice).toEqual([]);
  const states: { state: string; n: number }[] =
    await db`SELECT state, count(*)::int AS n FROM deliveries GROUP BY state ORDER BY state`;
  expect(states.map((s) => s.state)).toEqual(["delivered"]);
  // Nothing doubled at a webhook: one message id per UID and recipient; B got each message once,
  // and A's webhook saw one again only for a delivery in flight at a kill.
  expect([...atA.at].filter(([, ids]) => ids.size > 1)).toEqual([]);
  expect([...atB.at].filter(([, ids]) => ids.size > 1)).toEqual([]);
  expect(atB.repeats).toBe(0);
  expect(atA.repeats).toBeLessThanOrEqual(recovered);
  // A submission that got no answer was delivered at most once (it may not have been stored).
  for (const uid of load.unanswered)
    expect(atB.at.get(`${uid} ${REMOTE_USER}`)?.size ?? 0).toBeLessThanOrEqual(1);
}, 240_000);
