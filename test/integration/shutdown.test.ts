/**
 * SIGTERM and SIGINT on the compiled binary: isched stops accepting, lets delivery attempts finish
 * or gives them back to the queue, closes its database, and exits 0, all within --shutdown-timeout.
 * The local target is a real webhook (test/support/recording-webhook.ts) that can hold its answers,
 * as a slow calendar server does; invitations come signed from a peer over a real socket. After
 * each exit the database is read as the next start would find it: no delivery left in flight, an
 * empty WAL, integrity_check ok; and a restart delivers what was given back, once.
 */
import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { signedPostBytes } from "../support/signed-post.ts";

const ANN = "mailto:ann@a.test";
const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");

let dir: string;
let hook: RecordingWebhook;
const started: ServeProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-shutdown-"));
  hook = startRecordingWebhook();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "hook"), `${hook.secret}\n`, { mode: 0o600 });
});

afterEach(async () => {
  hook.release();
  for (const s of started.splice(0)) {
    s.process.kill("SIGKILL");
    await s.process.exited;
  }
});

afterAll(async () => {
  await hook?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** isched serving a.test into the webhook, with its data in DIR/name. */
async function start(name: string, extra: string[] = []): Promise<ServeProcess> {
  const s = running(
    await serveProcess([
      "--domain",
      "a.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--data",
      join(dir, name),
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      "--deliver",
      `webhook:${hook.url}`,
      "--webhook-secret-file",
      join(dir, "hook"),
      "--delivery-deadline",
      "300ms",
      "--retry",
      "1s,1s,1s",
      ...extra,
    ]),
  );
  started.push(s);
  return s;
}

/** A signed invitation for ann from the peer; resolves with ann's request-status. */
async function invite(s: ServeProcess, uid: string): Promise<string> {
  const request = signedPostBytes({
    key: peerKey,
    originator: "mailto:bernard@peer.test",
    recipients: [ANN],
    body: invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: [ANN] }),
  });
  const answer = await rawExchange({ port: s.port, request, timeoutMs: 10_000 });
  expect(answer.status).toBe(200);
  return statuses(answer.text)[ANN] ?? "";
}

/** SIGTERM (or `signal`); resolves with the exit code and how long the exit took. */
async function terminate(s: ServeProcess, signal: NodeJS.Signals = "SIGTERM") {
  const t0 = performance.now();
  s.process.kill(signal);
  const code = await s.process.exited;
  return { code, ms: performance.now() - t0 };
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

interface DeliveryFacts {
  state: string;
  leaseOwner: string | null;
  attempts: number;
  delivered: number;
}

/** ann's delivery of `uid` as the database holds it (read after isched exited, or beside it). */
function deliveryOf(name: string, uid: string): DeliveryFacts {
  const db = new Database(join(dir, name, "isched.db"), { readonly: true });
  try {
    return db
      .query<DeliveryFacts, [string]>(
        `SELECT d.state, d.lease_owner AS leaseOwner,
           (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id) AS attempts,
           (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id AND a.outcome = 'delivered') AS delivered
         FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.uid = ?`,
      )
      .get(uid)!;
  } finally {
    db.close();
  }
}

/** What the next start finds: the WAL empty or gone, and SQLite's own check passing. */
function databaseIsClean(name: string): { wal: number; integrity: string } {
  const path = join(dir, name, "isched.db");
  const wal = existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0;
  const db = new Database(path, { readonly: true });
  try {
    const integrity = db
      .query<{ integrity_check: string }, []>("PRAGMA integrity_check")
      .get()!.integrity_check;
    return { wal, integrity };
  } finally {
    db.close();
  }
}

describe("SIGTERM and SIGINT: a shutdown within --shutdown-timeout", () => {
  test("idle: SIGTERM exits 0 at once, the WAL checkpointed away and the database intact", async () => {
    const s = await start("idle");
    expect(await invite(s, "idle-1")).toMatch(/^2\.0;/);
    const { code, ms } = await terminate(s);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
    expect(s.stderr()).toMatch(/shutting down signal=SIGTERM within=20s/);
    expect(s.stderr()).toMatch(/ stopped ms=\d+/);
    expect(databaseIsClean("idle")).toEqual({ wal: 0, integrity: "ok" });
    expect(deliveryOf("idle", "idle-1")).toMatchObject({
      state: "delivered",
      leaseOwner: null,
      delivered: 1,
    });
  }, 30_000);

  test("another program holding the database open (isched queue, sqlite3) does not leave a WAL behind", async () => {
    const s = await start("reader");
    const reader = new Database(join(dir, "reader", "isched.db"), { readonly: true });
    try {
      expect(reader.query<{ n: number }, []>("SELECT count(*) AS n FROM messages").get()!.n).toBe(0);
      // Just committed: the WAL holds it, and SQLite would leave the WAL to the last connection.
      expect(await invite(s, "reader-1")).toMatch(/^2\.0;/);
      const { code } = await terminate(s);
      expect(code).toBe(0);
      expect(statSync(join(dir, "reader", "isched.db-wal")).size).toBe(0);
      expect(reader.query<{ n: number }, []>("SELECT count(*) AS n FROM messages").get()!.n).toBe(1);
    } finally {
      reader.close();
    }
    expect(databaseIsClean("reader")).toEqual({ wal: 0, integrity: "ok" });
  }, 30_000);

  test("SIGINT (Ctrl-C) shuts down the same way", async () => {
    const s = await start("sigint");
    const { code, ms } = await terminate(s, "SIGINT");
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
    expect(s.stderr()).toMatch(/shutting down signal=SIGINT/);
    expect(databaseIsClean("sigint")).toEqual({ wal: 0, integrity: "ok" });
  }, 30_000);

  test("an attempt that finishes within the bound is waited for and recorded; a restart does not send it again", async () => {
    const s = await start("finishes");
    hook.hold();
    // The peer gets 1.1 (held) after the delivery deadline; the attempt is still at the webhook.
    expect(await invite(s, "finishes-1")).toMatch(/^1\.1;/);
    await until(() => hook.waiting() === 1, "the attempt at the webhook");
    const exit = terminate(s);
    await Bun.sleep(1000);
    // Still draining: the attempt is waited for, the listeners are closed already.
    expect(s.process.exitCode).toBeNull();
    await expect(fetch(`${s.url}/.well-known/ischedule`)).rejects.toThrow();
    hook.release();
    const { code, ms } = await exit;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(deliveryOf("finishes", "finishes-1")).toEqual({
      state: "delivered",
      leaseOwner: null,
      attempts: 1,
      delivered: 1,
    });
    expect(databaseIsClean("finishes")).toEqual({ wal: 0, integrity: "ok" });

    const before = hook.deliveries.filter((d) => d.uid === "finishes-1").length;
    expect(before).toBe(1);
    const again = await start("finishes");
    await Bun.sleep(2500);
    expect(hook.deliveries.filter((d) => d.uid === "finishes-1").length).toBe(1);
    expect(again.stderr()).not.toMatch(/recovered deliveries left in flight/);
  }, 60_000);

  test("an attempt slower than the bound: exit 0 within it, the delivery back in the queue (not in flight), delivered once after a restart", async () => {
    const s = await start("slow", ["--shutdown-timeout", "3s"]);
    hook.hold();
    expect(await invite(s, "slow-1")).toMatch(/^1\.1;/);
    await until(() => hook.waiting() === 1, "the attempt at the webhook");
    expect(deliveryOf("slow", "slow-1")).toMatchObject({ state: "in-flight" });
    const { code, ms } = await terminate(s);
    expect(code).toBe(0);
    // 3 s, and the time a loaded machine takes to end a process.
    expect(ms).toBeLessThan(4500);
    expect(ms).toBeGreaterThan(1500);
    expect(s.stderr()).toMatch(/shutting down signal=SIGTERM within=3s/);
    // Given back: queued, no lease, no attempt counted against the target.
    expect(deliveryOf("slow", "slow-1")).toEqual({
      state: "queued",
      leaseOwner: null,
      attempts: 0,
      delivered: 0,
    });
    expect(databaseIsClean("slow")).toEqual({ wal: 0, integrity: "ok" });

    // The webhook never answered the aborted request; what it does with it is its own affair.
    hook.release();
    await until(() => hook.waiting() === 0, "the webhook to let the aborted request go");
    await Bun.sleep(100);
    const arrivedBefore = hook.deliveries.length;
    const again = await start("slow");
    await until(() => deliveryOf("slow", "slow-1").state === "delivered", "the delivery after the restart");
    await Bun.sleep(1500);
    expect(hook.deliveries.slice(arrivedBefore).filter((d) => d.uid === "slow-1").length).toBe(1);
    expect(deliveryOf("slow", "slow-1")).toEqual({
      state: "delivered",
      leaseOwner: null,
      attempts: 1,
      delivered: 1,
    });
    expect(again.stderr()).not.toMatch(/recovered deliveries left in flight/);
  }, 60_000);

  test("--shutdown-timeout is checked at start-up: one line naming the flag, exit 2", async () => {
    for (const [value, why] of [
      ["0s", "0s is outside 1s..10m"],
      ["soon", '"soon" is not a duration'],
    ]) {
      const exited = await serveProcess(["--data", join(dir, "bad"), "--shutdown-timeout", value!]);
      expect("exitCode" in exited && exited.exitCode).toBe(2);
      if ("exitCode" in exited) {
        expect(exited.stderr).toContain("--shutdown-timeout");
        expect(exited.stderr).toContain(why!);
        expect(exited.stderr.trim().split("\n")).toHaveLength(1);
      }
    }
  }, 30_000);
});
