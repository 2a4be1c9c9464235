/**
 * Real crashes: a child process accepts and leases deliveries in a tight loop and is killed with
 * SIGKILL at an arbitrary point (most of its time is spent inside transactions). The database it
 * leaves must hold every message it reported as accepted, each with all its deliveries, no message
 * with only some of them, and no attempt without its delivery update; start-up recovery must put
 * every in-flight delivery back in the queue. Eight rounds on the same file, each also taking over
 * the stale data lock the killed child left behind.
 * SQLite only: a database file's transactions and data lock (PostgreSQL's: fault-kill9-postgres.test.ts).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { removeTempDirs, tempDatabasePath } from "../store/_temp-dir.ts";

afterEach(removeTempDirs);

const CHILD = join(import.meta.dir, "crash-child.ts");
const LEASE_CHILD = join(import.meta.dir, "lease-child.ts");
const BATCH_CHILD = join(import.meta.dir, "crash-batch-child.ts");

/**
 * Runs the child until it has reported `killAfter` accepted messages, then kills it with SIGKILL.
 * The accepted messages' uuids with their numbers of deliveries; `replays` gets the replay keys the
 * child reported refused.
 */
async function runAndKill(
  path: string,
  round: number,
  killAfter: number,
  o: { child?: string; replays?: Set<string> } = {},
): Promise<Map<string, number>> {
  const child = Bun.spawn([process.execPath, o.child ?? CHILD, path, String(round)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const accepted = new Map<string, number>();
  const decoder = new TextDecoder();
  let buffer = "";
  let killed = false;
  for await (const chunk of child.stdout) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const m = /^accepted (\S+) (\d+)$/.exec(buffer.slice(0, nl));
      if (m) accepted.set(m[1]!, Number(m[2]));
      const replay = /^replay (\S+)$/.exec(buffer.slice(0, nl));
      if (replay) o.replays?.add(replay[1]!);
      buffer = buffer.slice(nl + 1);
    }
    if (!killed && accepted.size >= killAfter) {
      // A random few milliseconds more, so the kill does not always land at the same step of the loop.
      killed = true;
      setTimeout(() => child.kill("SIGKILL"), Math.random() * 4);
    }
  }
  await child.exited;
  if (!killed) throw new Error(`the child stopped by itself: ${await new Response(child.stderr).text()}`);
  expect(child.signalCode).toBe("SIGKILL");
  return accepted;
}

/** Reads a stream line by line; undefined at its end. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string | undefined> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return async () => {
    for (;;) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

describe("a crash (kill -9) of a process using the queue", () => {
  test("loses no accepted message, leaves no partial one, and recovery requeues every in-flight delivery", async () => {
    const path = tempDatabasePath();
    let messagesBefore = 0;
    const killAfter = [20, 60, 35, 120, 50, 90, 25, 150];
    for (const [i, threshold] of killAfter.entries()) {
      const round = i + 1;
      const reported = await runAndKill(path, round, threshold);
      const db = openDatabase(path);
      expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });

      // Every message has exactly the deliveries it was accepted with.
      const messages = db
        .query<{ uuid: string; summary: string; n: number }, []>(
          `SELECT m.uuid, m.summary, count(d.id) AS n FROM messages m
           LEFT JOIN deliveries d ON d.message_id = m.id GROUP BY m.id`,
        )
        .all();
      for (const m of messages) expect(`deliveries=${m.n}`).toBe(m.summary);
      const stored = new Map(messages.map((m) => [m.uuid, m.n]));
      for (const [uuid, n] of reported) expect(stored.get(uuid)).toBe(n);
      // At most the one message that committed just before the kill went unreported.
      const unreported = messages.length - messagesBefore - reported.size;
      expect(unreported === 0 || unreported === 1).toBe(true);
      messagesBefore = messages.length;

      // complete() wrote the attempt and the delivery together, or neither.
      const totals = db
        .query<{ attempts: number; counted: number; delivered: number }, []>(
          `SELECT (SELECT count(*) FROM attempts) AS attempts, (SELECT sum(attempts) FROM deliveries) AS counted,
             (SELECT count(*) FROM deliveries WHERE state = 'delivered') AS delivered`,
        )
        .get()!;
      expect(totals.attempts).toBe(totals.counted);
      expect(totals.attempts).toBe(totals.delivered);

      const queue = new DeliveryQueue(createSqliteStore(db));
      const before = await queue.countByState();
      expect(before["in-flight"]).toBeGreaterThan(0);
      const report = await queue.recoverExpiredLeases({ allInFlight: true });
      expect(report.requeued.length + report.broken.length).toBe(before["in-flight"]);
      const after = await queue.countByState();
      expect(after).toEqual({
        ...before,
        queued: before.queued + report.requeued.length,
        "in-flight": 0,
        broken: before.broken + report.broken.length,
      });
      db.close();
    }
  }, 60_000);
});

describe("a crash (kill -9) of a process whose accepts share transactions (group commit)", () => {
  test("loses no answered message, stores each whole, and keeps every refused replay's key with one stored message", async () => {
    const path = tempDatabasePath();
    const killAfter = [40, 150, 90, 300, 60];
    for (const [i, threshold] of killAfter.entries()) {
      const replays = new Set<string>();
      const reported = await runAndKill(path, i + 1, threshold, { child: BATCH_CHILD, replays });
      const db = openDatabase(path);
      expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      const messages = db
        .query<{ uuid: string; summary: string; n: number }, []>(
          `SELECT m.uuid, m.summary, count(d.id) AS n FROM messages m
           LEFT JOIN deliveries d ON d.message_id = m.id GROUP BY m.id`,
        )
        .all();
      for (const m of messages) expect(`deliveries=${m.n}`).toBe(m.summary);
      const stored = new Map(messages.map((m) => [m.uuid, m.n]));
      for (const [uuid, n] of reported) expect(stored.get(uuid)).toBe(n);
      // The replays the child was told of: their key is held by a message that was stored.
      expect(replays.size).toBeGreaterThan(0);
      const holder = db.query<{ n: number }, [string]>(
        "SELECT count(*) AS n FROM replay_keys k JOIN messages m ON m.id = k.message_id WHERE k.key = ?",
      );
      for (const key of replays) expect({ key, n: holder.get(key)!.n }).toEqual({ key, n: 1 });
      db.close();
    }
  }, 60_000);
});

describe("two processes leasing from the same file at the same time", () => {
  test("deliver every delivery exactly once between them", async () => {
    const path = tempDatabasePath();
    const go = `${path}.go`;
    const db = openDatabase(path);
    const queue = new DeliveryQueue(createSqliteStore(db));
    const all: number[] = [];
    for (let m = 0; m < 50; m++) {
      all.push(
        ...(
          await queue.accept(
            {
              direction: "outbound",
              intake: "api",
              originator: "mailto:a@example.com",
              method: "REQUEST",
              component: "VEVENT",
              contentType: "text/calendar",
              body: "x",
            },
            Array.from({ length: 30 }, (_, r) => ({
              recipient: `mailto:r${r}@p.example`,
              domain: "p.example",
              route: "ischedule" as const,
            })),
          )
        ).deliveryIds,
      );
    }
    db.close();

    const children = ["a", "b"].map((owner) =>
      Bun.spawn([process.execPath, LEASE_CHILD, path, owner, go], { stdout: "pipe", stderr: "pipe" }),
    );
    const lines = children.map((child) => lineReader(child.stdout));
    // Both children connect first, then start together.
    for (const next of lines) expect(await next()).toBe("ready");
    await Bun.write(go, "");
    const [a, b] = await Promise.all(
      children.map(async (child, i) => {
        const line = await lines[i]!();
        if ((await child.exited) !== 0)
          throw new Error(`a leasing child failed: ${await new Response(child.stderr).text()}`);
        return JSON.parse(line!) as number[];
      }),
    );

    expect(a!.length).toBeGreaterThan(0);
    expect(b!.length).toBeGreaterThan(0);
    expect(a!.length + b!.length).toBe(1500);
    expect([...a!, ...b!].sort((x, y) => x - y)).toEqual(all);

    const check = openDatabase(path);
    const counts = await new DeliveryQueue(createSqliteStore(check)).countByState();
    expect(counts).toMatchObject({ delivered: 1500, queued: 0, "in-flight": 0 });
    expect(check.query("SELECT count(*) AS n FROM attempts").get()).toEqual({ n: 1500 });
    check.close();
  }, 60_000);
});
