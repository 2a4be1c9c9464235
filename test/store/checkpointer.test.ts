import type { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import {
  afterTruncate,
  CAUGHT_UP_FRAMES,
  catchUp,
  DEFAULT_CHECKPOINT_POLICY,
  initialCheckpointState,
  MAX_CATCH_UP_PASSES,
  type PassiveResult,
  planCheckpoint,
} from "../../src/store/sqlite/checkpoint-plan.ts";
import { startCheckpointer } from "../../src/store/sqlite/checkpointer.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { GroupCommit } from "../../src/store/sqlite/group-commit.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";
import { walCommits } from "./_wal.ts";

afterEach(removeTempDirs);

const LIMIT = DEFAULT_CHECKPOINT_POLICY.walLimitBytes;

const autocheckpoint = (db: Database) =>
  db.query<{ wal_autocheckpoint: number }, []>("PRAGMA wal_autocheckpoint").get()?.wal_autocheckpoint;

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(20);
  }
}

describe("planCheckpoint()", () => {
  const s0 = { ...initialCheckpointState(0), dataVersion: 1 };

  test("a round with commits gets a PASSIVE checkpoint, a round without none", () => {
    const a = planCheckpoint(s0, { dataVersion: 2, walBytes: 4096, nowMs: 100 });
    expect(a.mode).toBe("passive");
    expect(planCheckpoint(a.state, { dataVersion: 2, walBytes: 4096, nowMs: 200 }).mode).toBe("none");
  });

  test("a WAL written to the limit gets a RESTART checkpoint even while writers keep committing", () => {
    expect(planCheckpoint(s0, { dataVersion: 2, walBytes: LIMIT, nowMs: 100 }).mode).toBe("restart");
    // The file stays at its size after a RESTART; what counts is what was written since.
    expect(
      planCheckpoint(s0, { dataVersion: 2, walBytes: LIMIT, walUsedBytes: 4096 * 10, nowMs: 100 }).mode,
    ).toBe("passive");
    expect(
      planCheckpoint(s0, { dataVersion: 2, walBytes: LIMIT, walUsedBytes: LIMIT, nowMs: 100 }).mode,
    ).toBe("restart");
  });

  test("a WAL restarted at the limit and then quiet is still truncated", () => {
    const quiet = DEFAULT_CHECKPOINT_POLICY.quietMs;
    const a = planCheckpoint(s0, { dataVersion: 2, walBytes: LIMIT, nowMs: 0 });
    const restarted = afterTruncate(a.state, true, 0, "restart");
    const b = planCheckpoint(restarted, { dataVersion: 2, walBytes: LIMIT, walUsedBytes: 0, nowMs: quiet });
    expect(b.mode).toBe("truncate");
  });

  test("a quiet WAL is truncated once", () => {
    const quiet = DEFAULT_CHECKPOINT_POLICY.quietMs;
    const a = planCheckpoint(s0, { dataVersion: 2, walBytes: 4096, nowMs: 0 });
    const b = planCheckpoint(a.state, { dataVersion: 2, walBytes: 4096, nowMs: quiet });
    expect(b.mode).toBe("truncate");
    const c = afterTruncate(b.state, true, quiet);
    expect(planCheckpoint(c, { dataVersion: 2, walBytes: 0, nowMs: quiet + 100 }).mode).toBe("none");
  });

  test("after a RESTART that could not complete, the next waits longer each time", () => {
    let s = afterTruncate(s0, false, 1000);
    expect(planCheckpoint(s, { dataVersion: 1, walBytes: LIMIT, nowMs: 1400 }).mode).toBe("none");
    expect(planCheckpoint(s, { dataVersion: 1, walBytes: LIMIT, nowMs: 1500 }).mode).toBe("restart");
    s = afterTruncate(s, false, 1500);
    expect(s.retryAtMs).toBe(2500);
    s = afterTruncate(s, false, 2500);
    expect(s.retryAtMs).toBe(4500);
    expect(afterTruncate(s, true, 4500).failures).toBe(0);
  });
});

describe("catchUp()", () => {
  /** Passes that copy `copied[i]` frames each, the writer adding 10 frames between two. */
  const passes = (copied: number[]) => {
    let log = 1000;
    let checkpointed = 0;
    let i = 0;
    return (): PassiveResult | undefined => {
      if (i >= copied.length) return undefined;
      checkpointed += copied[i++]!;
      log += 10;
      return { log, checkpointed };
    };
  };

  test("passes until one copied fewer than CAUGHT_UP_FRAMES frames", () => {
    const r = catchUp(passes([2800, 300, CAUGHT_UP_FRAMES - 1, 999]));
    expect(r.passes).toBe(3);
    expect(r.last!.checkpointed).toBe(2800 + 300 + CAUGHT_UP_FRAMES - 1);
  });

  test("never more than MAX_CATCH_UP_PASSES, however much each copies", () => {
    expect(catchUp(passes(Array(20).fill(5000))).passes).toBe(MAX_CATCH_UP_PASSES);
  });

  test("stops when a pass does not answer", () => {
    expect(catchUp(passes([2800])).passes).toBe(2);
    expect(catchUp(passes([])).last).toBeUndefined();
  });

  test("reads SQLite's own answer: on a WAL nobody writes to, the second pass copies nothing", () => {
    const db = openDatabase(tempDatabasePath());
    try {
      db.run("CREATE TABLE t (x TEXT)");
      for (let i = 0; i < 50; i++) db.run("INSERT INTO t VALUES (?)", ["x".repeat(3000)]);
      const r = catchUp(
        () => db.query<PassiveResult, []>("PRAGMA wal_checkpoint(PASSIVE)").get() ?? undefined,
      );
      expect(r.passes).toBe(2);
      expect(r.last!.log).toBeGreaterThan(50);
      expect(r.last!.checkpointed).toBe(r.last!.log);
    } finally {
      db.close();
    }
  });
});

describe("startCheckpointer()", () => {
  test("the worker takes over checkpoints: the WAL is emptied once writes stop", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const problems: (string | undefined)[] = [];
    const checkpointer = startCheckpointer({ db, path, onProblem: (p) => problems.push(p), tickMs: 20 });
    await waitFor(() => autocheckpoint(db) === 0, 5000);
    db.run("CREATE TABLE filler (x BLOB)");
    for (let i = 0; i < 200; i++) db.run("INSERT INTO filler VALUES (randomblob(4000))");
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(800_000);
    await waitFor(() => statSync(`${path}-wal`).size === 0, 10_000);
    await checkpointer.stop();
    db.close();
    expect(problems).toEqual([]);
  }, 20_000);

  test("at the WAL limit, writes are held while the WAL starts over, then commit: the WAL holds only what came after", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    db.run("CREATE TABLE filler (x BLOB)");
    const writes = new GroupCommit(db);
    const events: string[] = [];
    let heldWrite: Promise<unknown> | undefined;
    const checkpointer = startCheckpointer({
      db,
      path,
      onProblem: () => {},
      tickMs: 10,
      policy: { ...DEFAULT_CHECKPOINT_POLICY, walLimitBytes: 256 * 1024 },
      writes: {
        hold: () => {
          events.push("hold");
          writes.hold();
          // A request's write arriving while held.
          heldWrite ??= writes
            .run(() => db.run("INSERT INTO filler VALUES (randomblob(3000))"))
            .then(() => events.push("held write committed"));
        },
        release: () => {
          events.push("release");
          writes.release();
        },
      },
    });
    await waitFor(() => autocheckpoint(db) === 0, 5000);
    // Writes keep coming, a few per turn of the event loop, as requests do.
    const end = Date.now() + 15_000;
    while (!events.includes("release") && Date.now() < end) {
      await Promise.all(
        Array.from({ length: 4 }, () =>
          writes.run(() => db.run("INSERT INTO filler VALUES (randomblob(3000))")),
        ),
      );
    }
    await heldWrite;
    expect(events.slice(0, 3)).toEqual(["hold", "release", "held write committed"]);
    // The writes made while held committed once released, in the WAL started over: far fewer
    // commits than the hundred-odd it took to reach the limit.
    await writes.run(() => db.run("INSERT INTO filler VALUES (1)"));
    expect(walCommits(path)).toBeLessThan(10);
    await checkpointer.stop();
    db.close();
  }, 30_000);

  test("a hold the worker never ends lasts maxHoldMs, then the held writes commit", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    db.run("CREATE TABLE t (x)");
    const writes = new GroupCommit(db);
    let heldAt = 0;
    let write: Promise<unknown> | undefined;
    const checkpointer = startCheckpointer({
      db,
      path,
      onProblem: () => {},
      maxHoldMs: 300,
      workerUrl: new URL("./_hold-forever-worker.ts", import.meta.url).href,
      writes: {
        hold: () => {
          writes.hold();
          heldAt = Date.now();
          write = writes.run(() => db.run("INSERT INTO t VALUES (1)"));
        },
        release: () => writes.release(),
      },
    });
    await waitFor(() => write !== undefined, 5000);
    await write;
    const waitedMs = Date.now() - heldAt;
    expect(waitedMs).toBeGreaterThanOrEqual(290);
    expect(waitedMs).toBeLessThan(3000);
    expect(db.query<{ n: number }, []>("SELECT count(*) AS n FROM t").get()!.n).toBe(1);
    await checkpointer.stop();
    db.close();
  }, 20_000);

  test("a worker that cannot start is reported, and the connection checkpoints on commit again", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    const problems: (string | undefined)[] = [];
    const checkpointer = startCheckpointer({
      db,
      path,
      onProblem: (p) => problems.push(p),
      workerUrl: new URL("./no-such-worker.ts", import.meta.url).href,
    });
    await waitFor(() => problems.length > 0, 10_000);
    expect(problems[0]).toMatch(/^the WAL checkpointer thread did not start \(.+\); the database connection/);
    expect(autocheckpoint(db)).toBe(1000);
    await checkpointer.stop();
    db.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
  }, 20_000);
});
