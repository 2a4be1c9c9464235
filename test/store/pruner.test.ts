import { describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { DEFAULT_RETENTION } from "../../src/store/retention-policy.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import {
  DEFAULT_BATCH_SIZING,
  MAX_PACE_ROWS_PER_SECOND,
  nextBatchRows,
  type PruneReport,
  runPace,
  runSteps,
  startPruner,
} from "../../src/store/sqlite/pruner.ts";
import type { PruneStep, StepBatch } from "../../src/store/sqlite/retention.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { attempt, invitation, queueOptions, recipients, T0, TestClock } from "../queue/_fixtures.ts";

const DAY = 86_400_000;

/** A step with `total` rows that records its batches' limits in `log`. */
function fakeStep(total: number, log: string[], name: PruneStep["name"] = "messages"): PruneStep {
  let left = total;
  return {
    name,
    batch(limit): StepBatch {
      const rows = Math.min(limit, left);
      left -= rows;
      log.push(`${name}:${limit}`);
      return { rows, bytes: rows * 10, done: left === 0 };
    },
  };
}

describe("batch sizes", () => {
  test("follow the time the last batch took, towards the target", () => {
    const s = { targetMs: 5, minRows: 8, maxRows: 2000, startRows: 32 };
    expect(nextBatchRows(100, 10, s)).toBe(50);
    expect(nextBatchRows(100, 2.5, s)).toBe(150);
    expect(nextBatchRows(100, 0.1, s)).toBe(150);
    expect(nextBatchRows(100, 0, s)).toBe(150);
    expect(nextBatchRows(10, 500, s)).toBe(8);
    expect(nextBatchRows(1900, 1, s)).toBe(2000);
  });

  test("the shipped sizing aims at batches of a few milliseconds", () => {
    expect(DEFAULT_BATCH_SIZING.targetMs).toBeLessThanOrEqual(5);
    expect(DEFAULT_BATCH_SIZING.maxRows).toBeLessThanOrEqual(2000);
  });
});

describe("a pruning run", () => {
  test("runs the steps in order, batch by batch, and reports each", async () => {
    const log: string[] = [];
    let t = 0;
    const report = await runSteps([fakeStep(100, log, "refusals"), fakeStep(0, log, "bodies")], {
      startedAtMs: T0,
      sizing: { targetMs: 5, minRows: 8, maxRows: 2000, startRows: 32 },
      // Each batch "takes" 5 ms: the size stays.
      elapsed: () => (t += 5),
      sleep: async () => {},
    });
    expect(log).toEqual(["refusals:32", "refusals:32", "refusals:32", "refusals:32", "bodies:32"]);
    expect(report.steps.map((s) => [s.name, s.rows, s.bytes, s.batches])).toEqual([
      ["refusals", 100, 1000, 4],
      ["bodies", 0, 0, 1],
    ]);
    expect(report.steps[0]!.maxBatchMs).toBe(5);
    expect(report.stopped).toBe(false);
  });

  test("yields between two batches: work that arrived during a batch runs before the next one", async () => {
    const log: string[] = [];
    const step: PruneStep = {
      name: "bodies",
      batch(limit) {
        log.push("batch");
        // A request arrives while the batch runs.
        if (log.length < 6) setTimeout(() => log.push("request"), 0);
        return { rows: limit, bytes: 0, done: log.filter((x) => x === "batch").length === 3 };
      },
    };
    await runSteps([step], { startedAtMs: T0, pauseMs: 1 });
    expect(log).toEqual(["batch", "request", "batch", "request", "batch"]);
  });

  test("stops between batches when told, and says so", async () => {
    const log: string[] = [];
    let stop = false;
    const report = await runSteps([fakeStep(1000, log)], {
      startedAtMs: T0,
      sleep: async () => {
        if (log.length === 2) stop = true;
      },
      shouldStop: () => stop,
    });
    expect(log.length).toBe(2);
    expect(report.stopped).toBe(true);
  });

  test("a failing step ends the run with a one-line problem", async () => {
    const failing: PruneStep = {
      name: "messages",
      batch() {
        throw new Error("database is locked");
      },
    };
    const log: string[] = [];
    const report = await runSteps([failing, fakeStep(5, log)], { startedAtMs: T0, sleep: async () => {} });
    expect(report.problem).toBe("pruning messages failed: database is locked");
    expect(log).toEqual([]);
  });
});

describe("the pruner", () => {
  test("runs on its schedule, reports each run, and stops", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    await queue.accept(
      invitation({ receivedAt: T0 }),
      recipients(1, { state: "delivered", attempt: attempt() }),
    );
    c.advance(401 * DAY);
    const reports: PruneReport[] = [];
    const pruner = startPruner({
      db,
      policy: DEFAULT_RETENTION,
      nowMs: c.nowMs,
      firstRunAfterMs: 5,
      intervalMs: 60_000,
      pauseMs: 0,
      onRun: (r) => reports.push(r),
    });
    for (let i = 0; i < 200 && reports.length === 0; i++) await Bun.sleep(5);
    expect(reports.length).toBe(1);
    expect(reports[0]!.steps.find((s) => s.name === "messages")!.rows).toBe(1);
    expect(db.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 0 });
    const again = await pruner.runNow();
    expect(again.steps.every((s) => s.rows === 0)).toBe(true);
    await pruner.stop();
    db.close();
  });

  test("reports a run that fails, and its recovery", async () => {
    const db = openDatabase(":memory:");
    const problems: (string | undefined)[] = [];
    const pruner = startPruner({
      db,
      policy: DEFAULT_RETENTION,
      firstRunAfterMs: 60_000,
      pauseMs: 0,
      onProblem: (p) => problems.push(p),
    });
    db.run("ALTER TABLE replay_keys RENAME TO replay_keys_away");
    const failed = await pruner.runNow();
    expect(failed.problem).toStartWith("pruning replay-keys failed: ");
    db.run("ALTER TABLE replay_keys_away RENAME TO replay_keys");
    const ok = await pruner.runNow();
    expect(ok.problem).toBeUndefined();
    expect(problems.length).toBe(2);
    expect(problems[0]).toContain("replay_keys");
    expect(problems[1]).toBeUndefined();
    await pruner.stop();
    db.close();
  });
});

describe("the pruner beside the group commit", () => {
  test("its batches share the accepts' transaction, so they wait while writes are held", async () => {
    const db = openDatabase(":memory:");
    const store = createSqliteStore(db);
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(store, queueOptions(c));
    await queue.accept(
      invitation({ receivedAt: T0 }),
      recipients(1, { state: "delivered", attempt: attempt() }),
    );
    c.advance(401 * DAY);
    const pruner = startPruner({
      db,
      policy: DEFAULT_RETENTION,
      writes: (work) => store.writeInBatch(work),
      nowMs: c.nowMs,
      firstRunAfterMs: 60_000,
      pauseMs: 0,
    });
    // As the checkpointer does while it starts the WAL over.
    store.holdWrites();
    let report: PruneReport | undefined;
    const run = pruner.runNow().then((r) => (report = r));
    await Bun.sleep(50);
    expect(report).toBeUndefined();
    expect(db.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 1 });
    store.releaseWrites();
    await run;
    expect(report!.problem).toBeUndefined();
    expect(report!.steps.find((s) => s.name === "messages")!.rows).toBe(1);
    expect(db.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 0 });
    await pruner.stop();
    db.close();
  });

  test("a batch that fails in the shared transaction fails the run, not the accepts beside it", async () => {
    const db = openDatabase(":memory:");
    const store = createSqliteStore(db);
    const pruner = startPruner({
      db,
      policy: DEFAULT_RETENTION,
      writes: (work) => store.writeInBatch(work),
      firstRunAfterMs: 60_000,
      pauseMs: 0,
    });
    db.run("ALTER TABLE replay_keys RENAME TO replay_keys_away");
    const queue = new DeliveryQueue(store, queueOptions(new TestClock(T0)));
    store.holdWrites();
    const run = pruner.runNow();
    const accepted = queue.accept(invitation({ receivedAt: T0 }), recipients(1));
    store.releaseWrites();
    const [report] = await Promise.all([run, accepted]);
    expect(report.problem).toStartWith("pruning replay-keys failed: ");
    expect(db.query("SELECT count(*) AS n FROM messages").get()).toEqual({ n: 1 });
    await pruner.stop();
    db.close();
  });
});

describe("the pace", () => {
  test("keeps to the floor on a first run, whatever its backlog", () => {
    expect(runPace({ floorRowsPerSecond: 500 })).toBe(500);
  });

  test("follows rows that arrive faster than the floor, at twice their rate, up to the most", () => {
    // 83,400 rows due over the minute since the last run started: 1,390 a second.
    expect(runPace({ floorRowsPerSecond: 500, last: { rows: 83_400, sinceMs: 60_000 } })).toBe(2780);
    // Fewer than the floor's half: the floor.
    expect(runPace({ floorRowsPerSecond: 500, last: { rows: 600, sinceMs: 3_600_000 } })).toBe(500);
    expect(runPace({ floorRowsPerSecond: 500, last: { rows: 10_000_000, sinceMs: 60_000 } })).toBe(
      MAX_PACE_ROWS_PER_SECOND,
    );
  });

  test("a pruner whose rows arrive faster than 500 a second speeds up from its third run", async () => {
    const paces: (number | undefined)[] = [];
    let t = T0;
    // Each run finds 1,000 rows due; runs start a second apart on this clock.
    const pruner = startPruner({
      steps: () => [fakeStep(1000, [])],
      runLock: async () => ({ release: async () => {} }),
      nowMs: () => (t += 1000),
      firstRunAfterMs: 60_000,
      sleep: async () => {},
      onRun: (r) => paces.push(r.rowsPerSecond),
    });
    for (let i = 0; i < 4; i++) await pruner.runNow();
    await pruner.stop();
    expect(paces).toEqual([500, 500, 2000, 2000]);
  });
});

describe("a slow batch", () => {
  test("is told with its step, rows and time; a quick one is not", async () => {
    const slow: { step: string; rows: number; ms: number }[] = [];
    let t = 0;
    const times = [1, 250, 2];
    const step: PruneStep = {
      name: "bodies",
      batch(limit) {
        // Each batch "takes" the next of `times`.
        t += times.shift()!;
        return { rows: limit, bytes: 0, done: times.length === 0 };
      },
    };
    await runSteps([step], {
      startedAtMs: T0,
      sizing: { targetMs: 2, minRows: 16, maxRows: 16, startRows: 16 },
      elapsed: () => t,
      sleep: async () => {},
      onSlowBatch: (b) => slow.push({ step: b.step, rows: b.rows, ms: b.ms }),
    });
    expect(slow).toEqual([{ step: "bodies", rows: 16, ms: 250 }]);
  });
});
