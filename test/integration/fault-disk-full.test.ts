/**
 * Fault injection: the database's disk fills up under the compiled binary. isched runs with its data
 * folder on a small tmpfs the test mounts (root only: see small-filesystem.ts) and delivers to a
 * webhook in the test process that records every delivery. While the disk is full an inbound request
 * is answered 503 with an iSchedule error element and Retry-After (a temporary failure the sender
 * retries), a refused request keeps its own answer, the submission API answers 503; an attempt that
 * was in flight when the disk filled is recorded once there is room, and is not sent twice; nothing
 * is half-written; and once space returns the same request is accepted and delivered once.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC, RSA_PRIVATE } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";
import { mountSmallFilesystem, type SmallFilesystem } from "../support/small-filesystem.ts";

const key = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
/** A key the receiver does not know for peer.test:s1: its signatures are refused. */
const stranger = loadSigningKey(RSA_PRIVATE, "peer.test", "s1");
const ANN = "mailto:ann@org.test";

let dir: string;
let fs: SmallFilesystem;
let webhook: RecordingWebhook;
let isched: ServeProcess;
let token: string;

function request(uid: string, signWith = key): Buffer {
  const body = invitation({
    uid,
    organizer: "mailto:bernard@peer.test",
    attendees: [ANN],
    // A few kilobytes per message, so that the WAL must grow for each one.
    summary: `Disk ${"x".repeat(4000)}`,
  });
  return signedPostBytes({ key: signWith, originator: "mailto:bernard@peer.test", body });
}

const send = (bytes: Buffer) => rawExchange({ port: isched.port, request: bytes, timeoutMs: 15_000 });

function readDb<T>(read: (db: Database) => T): T {
  const db = new Database(join(fs.path, "data", "isched.db"), { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-diskfull-"));
  // 24 MB: room for the database and its WAL, and little more.
  fs = mountSmallFilesystem(24 * 1024 * 1024);
  webhook = startRecordingWebhook();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "webhook-secret"), `${webhook.secret}\n`, { mode: 0o600 });
  isched = running(
    await serveProcess([
      "--domain",
      "org.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--data",
      join(fs.path, "data"),
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      "--sign-unpublished",
      "--deliver",
      `webhook:${webhook.url}`,
      "--webhook-secret-file",
      join(dir, "webhook-secret"),
      "--delivery-deadline",
      "500ms",
      "--retry",
      Array(20).fill("300ms").join(","),
    ]),
  );
  token = readFileSync(join(fs.path, "data", "api-token"), "utf8").trim();
});

afterAll(async () => {
  webhook?.release();
  await isched?.stop();
  await webhook?.stop();
  fs?.unmount();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a full disk: inbound gets 503 with an error element, nothing is half-written or sent twice, and all is normal once space returns", async () => {
  // Accepted and delivered before the disk fills.
  const before = await send(request("disk-before"));
  expect(before.status).toBe(200);
  expect(statuses(before.text)[ANN]).toStartWith("2.0");

  // An attempt in flight when the disk fills: the webhook holds its answer.
  webhook.hold();
  const inFlight = await send(request("disk-in-flight"));
  expect(inFlight.status).toBe(200);
  expect(statuses(inFlight.text)[ANN]).toStartWith("1.1");

  const filled = fs.fill();
  expect(fs.freeBytes()).toBeLessThan(64 * 1024);
  console.log(`filled the disk with ${(filled / 1024 / 1024).toFixed(1)} MB`);

  // The WAL may still have room for a commit or two: send until the storage says no.
  const acceptedWhileFull: string[] = [];
  let refusedBytes: Buffer | undefined;
  let refused: Awaited<ReturnType<typeof send>> | undefined;
  for (let i = 0; i < 20 && refused === undefined; i++) {
    const bytes = request(`disk-full-${i}`);
    const answer = await send(bytes);
    expect([200, 503]).toContain(answer.status);
    if (answer.status === 200) acceptedWhileFull.push(`disk-full-${i}`);
    else [refused, refusedBytes] = [answer, bytes];
  }
  if (refused === undefined || refusedBytes === undefined) throw new Error("the disk never refused a write");
  expect(refused.elapsedMs).toBeLessThan(2000);
  expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
  expect(errorElement(refused.text)).toBeDefined();
  expect(refused.text).toContain("cannot store messages at the moment");
  const refusedUid = `disk-full-${acceptedWhileFull.length}`;

  // A request isched refuses keeps its own answer (the refusal log cannot be written).
  const forged = await send(request("disk-forged", stranger));
  expect(forged.status).toBe(403);
  expect(errorElement(forged.text)).toBe("verification-failed");

  // The submission API: 503 with the reason, not "internal error".
  const submitted = await fetch(`${isched.consoleUrl}/api/v1/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "text/calendar" },
    body: invitation({ uid: "disk-submitted", organizer: "mailto:alice@org.test", attendees: [ANN] }),
  });
  expect(submitted.status).toBe(503);
  expect(((await submitted.json()) as { error: string }).error).toContain("disk is full");

  // The held attempt now succeeds at the webhook, but its outcome cannot be written yet; the
  // delivery loop meanwhile meets the full disk on every turn.
  webhook.release();
  await webhook.waitFor((d) => d.some((x) => x.uid === "disk-in-flight"), 10_000);
  await Bun.sleep(2000);
  expect(isched.process.exitCode).toBeNull();
  // The log says why, once per kind of failure, not once a second.
  const log = isched.stderr();
  expect(log).toContain(
    'inbound request not stored: the database cannot be written from=127.0.0.1 error="database or disk is full"',
  );
  for (const line of [
    "delivery queue: cannot lease",
    "delivery queue: cannot record",
    "the refusal log cannot be written",
  ])
    expect(log.split(line).length - 1).toBeLessThanOrEqual(1);

  fs.makeRoom();
  // The sender retries the refused request, same bytes: accepted (delivered, or held for delivery).
  const again = await send(refusedBytes);
  expect(again.status).toBe(200);
  expect(statuses(again.text)[ANN]).toMatch(/^(2\.0|1\.1);/);

  const expected = ["disk-before", "disk-in-flight", ...acceptedWhileFull, refusedUid];
  const drained = () =>
    readDb(
      (db) =>
        db
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM deliveries WHERE state IN ('queued', 'in-flight')",
          )
          .get()!.n === 0,
    );
  await waitFor(drained, 15_000, "the queue to drain");
  await webhook.waitFor((d) => expected.every((uid) => d.some((x) => x.uid === uid)), 10_000);

  // Each accepted message reached the webhook once: one message id per UID, one POST per message id.
  for (const uid of expected) {
    const posts = webhook.deliveries.filter((d) => d.uid === uid);
    expect({ uid, posts: posts.length }).toEqual({ uid, posts: 1 });
  }
  expect(webhook.deliveries.some((d) => d.uid === "disk-forged" || d.uid === "disk-submitted")).toBe(false);

  // Nothing half-written: the database is sound, every message has its deliveries, the refused
  // request left no trace, and what was accepted is delivered.
  readDb((db) => {
    expect(db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()!.integrity_check).toBe(
      "ok",
    );
    const rows = db
      .query<{ uid: string; state: string; n: number }, []>(
        `SELECT m.uid, d.state, count(*) AS n FROM messages m JOIN deliveries d ON d.message_id = m.id
         WHERE m.uid LIKE 'disk-%' GROUP BY m.uid, d.state ORDER BY m.uid`,
      )
      .all();
    expect(rows).toEqual(expected.map((uid) => ({ uid, state: "delivered", n: 1 })).sort(byUid));
    const orphans = db
      .query<{ n: number }, []>(
        `SELECT count(*) AS n FROM messages m WHERE m.refusal IS NULL
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)`,
      )
      .get()!.n;
    expect(orphans).toBe(0);
  });
}, 90_000);

const byUid = (a: { uid: string }, b: { uid: string }) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0);
