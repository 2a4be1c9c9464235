/**
 * kill -9 at random points under mixed load, 20 times in one run. isched A (the compiled binary)
 * takes signed invitations from a peer (this process, retrying a request that got no answer with the
 * same bytes, as senders do) for its users, delivered to a webhook; and at the same time takes
 * submissions through its API for users of b.test, sent over HTTPS to isched B (another binary, found
 * by dnsmasq SRV, never killed), which delivers them to its own webhook. Both webhooks record every
 * delivery. A is killed with SIGKILL 20 times, each time at a random moment 0.2 to 1.5 s after it
 * came up, and started again at once.
 *
 * After each restart every request A had accepted before the kill is still in its database. At the
 * end, once both queues have drained: everything answered accepted (200 with 2.0, 1.1 or 1.2 for a
 * recipient, 202 for a submission) reached its recipient's webhook; no request became two messages
 * at a webhook (one message id per UID and recipient); B got each of A's messages once (A's retry of
 * a request it sent just before a kill carries the same iSchedule-Message-ID, which B answers from
 * the first copy). A repeat of the same message id at A's webhook (sent, answered, and not yet
 * recorded when the kill came) is what the webhook contract allows (docs/webhook.md): it is counted,
 * and there are never more than the deliveries A found in flight at its restarts (its log says how
 * many it put back in the queue).
 *
 * A kill catches the deliveries in flight at that moment; none may end 'broken' (parked as a poison
 * delivery, src/queue/queue.ts). If one does, or the queue does not drain, the test tells its story:
 * the delivery, its attempts, and each lease a kill broke, placed among A's runs (leased how long
 * after the run came up, killed how long after that); the summary line gives start-up and attempt
 * times and how many leases the kills broke.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { DEFAULT_LEASE_MS } from "../../src/queue/queue.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { drained, MixedLoad, REMOTE_USER, tally } from "../support/mixed-load.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { serveRemotePeer } from "../support/remote-peer.ts";
import type { ServedBinary } from "../support/serve-binary.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

const KILLS = 20;
const INBOUND_WORKERS = 4;
const OUTBOUND_WORKERS = 2;
const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
let hookA: RecordingWebhook;
let hookB: RecordingWebhook;
let b: ServedBinary;
let a: ServeProcess | undefined;
let aArgs: string[];
let token: string;
const ports = { a: 0, console: 0, b: 0 };
let load: MixedLoad;

/** Deliveries A found in flight at its restarts and put back in the queue (from its log). */
let recovered = 0;

/** Each run of A: when it was spawned, when it came up (printed its summary), when it was killed. */
interface Run {
  spawnedAt: number;
  upAt: number;
  killedAt?: number;
}
const runs: Run[] = [];
/** The leases each kill broke, by delivery id: the run that held it and when it took it. */
const brokenLeases = new Map<number, { run: number; leasedAt: number }[]>();

async function startA(): Promise<ServeProcess> {
  const spawnedAt = Date.now();
  a = running(await serveProcess(aArgs, { timeoutMs: 20_000 }));
  runs.push({ spawnedAt, upAt: Date.now() });
  return a;
}

function openA(): Database {
  return new Database(join(dir, "a-data", "isched.db"), { readonly: true });
}

/** After a kill: the deliveries the dead run held, and when it leased each (the lease's expiry less its length). */
function noteBrokenLeases(run: number): void {
  const db = openA();
  try {
    const held = db
      .query<{ id: number; expires: number }, []>(
        "SELECT id, lease_expires_at AS expires FROM deliveries WHERE state = 'in-flight'",
      )
      .all();
    for (const d of held)
      brokenLeases.set(d.id, [
        ...(brokenLeases.get(d.id) ?? []),
        { run, leasedAt: d.expires - DEFAULT_LEASE_MS },
      ]);
  } finally {
    db.close();
  }
}

/** Where an instant falls among A's runs: "run 7 +340 ms after it came up" (negative: while starting). */
function whenInRuns(at: number): string {
  let i = runs.length - 1;
  while (i > 0 && runs[i]!.spawnedAt > at) i--;
  const r = runs[i]!;
  const life = r.killedAt !== undefined && at > r.killedAt ? ` (${at - r.killedAt} ms after its kill)` : "";
  return `run ${i + 1} ${at >= r.upAt ? "+" : ""}${at - r.upAt} ms${life}`;
}

const pct = (xs: number[], p: number) =>
  xs.length === 0 ? 0 : [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const spread = (xs: number[]) =>
  `p50 ${pct(xs, 0.5)} p90 ${pct(xs, 0.9)} max ${pct(xs, 1)} ms (${xs.length})`;

/**
 * The timing a broken lease depends on: how long A took to come up, how long attempts took by route,
 * and how many leases the kills broke and how often one delivery's twice or more.
 */
function timings(): string {
  const db = openA();
  try {
    const durations = (route: string) =>
      db
        .query<{ ms: number }, [string]>("SELECT duration_ms AS ms FROM attempts WHERE route = ?")
        .all(route)
        .map((r) => r.ms);
    const leases = [...brokenLeases.values()];
    const held = leases.flat().map(({ run, leasedAt }) => runs[run]!.killedAt! - leasedAt);
    return (
      `start-up ${spread(runs.map((r) => r.upAt - r.spawnedAt))}; ` +
      `attempts: webhook ${spread(durations("local"))}, ischedule ${spread(durations("ischedule"))}; ` +
      `leases broken ${held.length} (held ${spread(held)}), deliveries with 2+ ${leases.filter((l) => l.length >= 2).length}, 3+ ${leases.filter((l) => l.length >= 3).length}`
    );
  } finally {
    db.close();
  }
}

/**
 * The story of the deliveries of A that ended neither delivered nor queued (a broken one): what it
 * was, its attempts, and each lease a kill broke, placed among the runs.
 */
function storyOfStuck(): string[] {
  const db = openA();
  try {
    const stuck = db
      .query<
        {
          id: number;
          route: string;
          recipient: string;
          uid: string | null;
          state: string;
          attempts: number;
          breaks: number;
          created: number;
          error: string | null;
        },
        []
      >(
        `SELECT d.id, d.route, d.recipient, m.uid, d.state, d.attempts, d.lease_breaks AS breaks,
           d.created_at AS created, d.last_error AS error
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.state NOT IN ('delivered', 'queued', 'in-flight')`,
      )
      .all();
    return stuck.map((d) => {
      const attempts = db
        .query<{ started: number; ms: number; outcome: string }, [number]>(
          "SELECT started_at AS started, duration_ms AS ms, outcome FROM attempts WHERE delivery_id = ? ORDER BY id",
        )
        .all(d.id)
        .map((t) => `attempt at ${whenInRuns(t.started)} took ${t.ms} ms: ${t.outcome}`);
      const leases = (brokenLeases.get(d.id) ?? []).map(({ run, leasedAt }) => {
        const r = runs[run]!;
        return `leased by run ${run + 1} (up ${r.upAt - r.spawnedAt} ms after its spawn) ${leasedAt - r.upAt} ms after it came up, killed ${r.killedAt! - leasedAt} ms later`;
      });
      return [
        `delivery ${d.id} (${d.route} to ${d.recipient}, uid ${d.uid}): ${d.state}, ${d.attempts} attempts recorded, ${d.breaks} lease breaks; accepted at ${whenInRuns(d.created)}; ${d.error}`,
        ...attempts,
        ...leases,
      ].join("\n  ");
    });
  } finally {
    db.close();
  }
}

/** Reads what a run of A recovered at its start (its log has long been read by the time it is killed). */
function noteRecovery(run: ServeProcess): void {
  const line = /recovered deliveries left in flight by a previous run requeued=(\d+) broken=(\d+)/.exec(
    run.stderr(),
  );
  recovered += Number(line?.[1] ?? 0);
  // A delivery in flight at 3 deaths of A in a row would wait for an operator (parked as poison).
  if (Number(line?.[2] ?? 0) > 0) {
    console.log(timings());
    expect(storyOfStuck()).toEqual([]);
  }
  expect(Number(line?.[2] ?? 0)).toBe(0);
}

function uidsInA(): Set<string> {
  const db = new Database(join(dir, "a-data", "isched.db"), { readonly: true });
  try {
    return new Set(
      db
        .query<{ uid: string }, []>("SELECT uid FROM messages WHERE uid IS NOT NULL AND refusal IS NULL")
        .all()
        .map((r) => r.uid),
    );
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-kill9-"));
  ca = createTestCa();
  hookA = startRecordingWebhook();
  hookB = startRecordingWebhook();
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
  load = new MixedLoad({ endpointPort: ports.a, consolePort: ports.console, token: () => token, peerKey });
}, 60_000);

afterAll(async () => {
  a?.process.kill("SIGKILL");
  await load?.stop();
  await a?.process.exited;
  await b?.stop();
  await hookA?.stop();
  await hookB?.stop();
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

test(`${KILLS} kill -9 under mixed inbound and outbound load: nothing accepted is lost, nothing delivered twice, the queues drain`, async () => {
  const started = Date.now();
  load.start({ inbound: INBOUND_WORKERS, outbound: OUTBOUND_WORKERS });
  const killedAfterMs: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    const delayMs = 200 + Math.floor(Math.random() * 1300);
    await Bun.sleep(delayMs);
    killedAfterMs.push(delayMs);
    noteRecovery(a!);
    runs[runs.length - 1]!.killedAt = Date.now();
    a!.process.kill("SIGKILL");
    await a!.process.exited;
    noteBrokenLeases(runs.length - 1);
    const before = load.acceptedUids();
    await startA();
    // Every request accepted before the kill is still there.
    const held = uidsInA();
    const lost = before.filter((uid) => !held.has(uid));
    expect({ kill: k + 1, lost }).toEqual({ kill: k + 1, lost: [] });
  }
  await load.stop();
  const loadEndedAt = Date.now();
  noteRecovery(a!);

  const api = (s: { consoleUrl: string }, t: string) => (path: string) =>
    fetch(`${s.consoleUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${t}` } });
  const apiA = api({ consoleUrl: `http://127.0.0.1:${ports.console}` }, token);
  const apiB = api(b, b.token);
  const end = Date.now() + 60_000;
  while (!((await drained(apiA)) && (await drained(apiB)))) {
    if (Date.now() > end)
      throw new Error(
        `the queues did not drain within 60 s of the last restart\n${storyOfStuck().join("\n")}`,
      );
    await Bun.sleep(200);
  }
  const drainMs = Date.now() - loadEndedAt;

  // Every delivery of A and B ended delivered: none failed, none broken.
  const states = async (apiOf: (p: string) => Promise<Response>) =>
    ((await (await apiOf("/overview")).json()) as { queue: Record<string, number> }).queue;
  const statesA = await states(apiA);
  const statesB = await states(apiB);

  const { at: atA, repeats: repeatsA } = tally(hookA);
  const { at: atB, repeats: repeatsB } = tally(hookB);

  const acceptedIn = [...load.accepted].filter((k) => k.startsWith("in-"));
  const acceptedOut = [...load.accepted].filter((k) => k.startsWith("out-"));
  console.log(
    `${KILLS} kills (after ${killedAfterMs.join(", ")} ms) in ${Math.round((loadEndedAt - started) / 1000)} s; ` +
      `inbound accepted ${acceptedIn.length} (${load.inboundResends} requests sent again after no answer), ` +
      `outbound accepted ${acceptedOut.length} (${load.unanswered.length} submissions unanswered); ` +
      `drained ${drainMs} ms after the load; repeats of one message id at A's webhook ${repeatsA} ` +
      `(${recovered} deliveries found in flight at the restarts), at B's ${repeatsB}; ` +
      `A ${JSON.stringify(statesA)}, B ${JSON.stringify(statesB)}; ${timings()}`,
  );

  expect(load.unexpected).toEqual([]);
  expect(acceptedIn.length).toBeGreaterThan(50);
  expect(acceptedOut.length).toBeGreaterThan(20);
  // Nothing accepted is lost.
  expect(acceptedIn.filter((k) => !atA.has(k))).toEqual([]);
  expect(acceptedOut.filter((k) => !atB.has(k))).toEqual([]);
  // Nothing became two messages: one message id per UID and recipient, at both webhooks.
  expect([...atA].filter(([, ids]) => ids.size > 1)).toEqual([]);
  expect([...atB].filter(([, ids]) => ids.size > 1)).toEqual([]);
  // B got each of A's messages once; A's webhook saw a message id again only for a delivery that was
  // in flight at a kill.
  expect(repeatsB).toBe(0);
  expect(repeatsA).toBeLessThanOrEqual(recovered);
  // A submission that got no answer was delivered at most once (it may not have been stored).
  for (const uid of load.unanswered) expect((atB.get(`${uid} ${REMOTE_USER}`)?.size ?? 0) <= 1).toBe(true);
  expect(storyOfStuck()).toEqual([]);
  expect(Object.keys(statesA).filter((s) => s !== "delivered" && (statesA[s] ?? 0) > 0)).toEqual([]);
  expect(Object.keys(statesB).filter((s) => s !== "delivered" && (statesB[s] ?? 0) > 0)).toEqual([]);
}, 240_000);
