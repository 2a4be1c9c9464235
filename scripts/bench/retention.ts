/**
 * Retention at volume: a database of N messages received over 500 days (test/store/_volume.ts),
 * made as isched made them before incremental auto-vacuum, then:
 *
 * 1. converting it: VACUUM in place (time, and the WAL it grows) against VACUUM INTO a copy and a
 *    rename (store/compaction.ts);
 * 2. pruning it with the default policy, without pauses (the work itself) and the file after;
 * 3. the accept transaction's wait while the pruner works as it ships (pauses, 500 rows a second)
 *    in alternating windows with and without it, with the checkpointer thread running.
 *
 *   npx bun scripts/bench/retention.ts [--messages 100000] [--seconds 20]
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { DEFAULT_RETENTION } from "../../src/store/retention-policy.ts";
import { startCheckpointer } from "../../src/store/sqlite/checkpointer.ts";
import { convertToIncrementalVacuum } from "../../src/store/sqlite/compaction.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { migrate } from "../../src/store/sqlite/migrations.ts";
import { retentionSteps, runSteps } from "../../src/store/sqlite/pruner.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { fillVolume } from "../../test/store/_volume.ts";

const { values } = parseArgs({ options: { messages: { type: "string" }, seconds: { type: "string" } } });
const N = Number(values.messages ?? 100_000);
const SECONDS = Number(values.seconds ?? 20);
const NOW = Date.UTC(2026, 5, 1);
const dir = mkdtempSync(join(tmpdir(), "isched-bench-retention-"));
const mb = (b: number) => `${(b / 1048576).toFixed(0)} MB`;
const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);

try {
  const original = join(dir, "original.db");
  let t = performance.now();
  {
    const db = new Database(original, { create: true, readwrite: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA foreign_keys = ON");
    migrate(db);
    fillVolume(db, { messages: N, days: 500, nowMs: NOW });
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
  }
  console.log(
    `${N} messages over 500 days: ${mb(size(original))}, written in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );

  const copy = (name: string) => {
    const p = join(dir, `${name}.db`);
    copyFileSync(original, p);
    return p;
  };

  // 1. Conversion.
  {
    const p = copy("in-place");
    const db = new Database(p, { readwrite: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA auto_vacuum = INCREMENTAL");
    t = performance.now();
    db.run("VACUUM");
    const ms = performance.now() - t;
    console.log(
      `VACUUM in place: ${(ms / 1000).toFixed(1)} s, WAL grown to ${mb(size(`${p}-wal`))} beside ${mb(size(p))}`,
    );
    db.close();
    rmSync(p, { force: true });
    rmSync(`${p}-wal`, { force: true });
    rmSync(`${p}-shm`, { force: true });
  }
  const converted = copy("converted");
  const conversion = convertToIncrementalVacuum(converted);
  if (!conversion.converted) throw new Error(conversion.reason);
  console.log(
    `VACUUM INTO and rename (compaction.ts): ${(conversion.ms / 1000).toFixed(1)} s, extra space one copy (${mb(conversion.bytesAfter)})`,
  );

  // 2. The pruning work itself.
  {
    const db = openDatabase(converted);
    t = performance.now();
    const report = await runSteps(retentionSteps(db, { policy: DEFAULT_RETENTION, nowMs: NOW }), {
      startedAtMs: NOW,
      sleep: async () => {},
    });
    const wall = performance.now() - t;
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    for (const s of report.steps)
      console.log(
        `  ${s.name}: ${s.rows} rows in ${s.batches} batches, ${s.busyMs.toFixed(0)} ms, longest batch ${s.maxBatchMs.toFixed(1)} ms`,
      );
    console.log(
      `pruned without pauses in ${(wall / 1000).toFixed(1)} s; file ${mb(conversion.bytesAfter)} -> ${mb(size(converted))}`,
    );
    db.close();
  }

  // 3. Accepts while the pruner works as it ships.
  {
    const p = copy("latency");
    const db = openDatabase(p);
    const checkpointer = startCheckpointer({
      db,
      path: p,
      onProblem: (x) => x && console.log(`checkpointer: ${x}`),
    });
    await Bun.sleep(200);
    const queue = new DeliveryQueue(createSqliteStore(db), { nowMs: () => NOW });
    let allowed = false;
    let stopped = false;
    const waits = { with: [] as number[], without: [] as number[] };
    const started = performance.now();
    let pruning: ReturnType<typeof runSteps> | undefined;
    let next = started;
    for (let i = 0; performance.now() - started < SECONDS * 1000; i++) {
      next += 5;
      const wait = next - performance.now();
      if (wait > 0) await Bun.sleep(wait);
      else await new Promise((r) => setImmediate(r));
      const on = Math.floor((next - started) / 500) % 2 === 1;
      allowed = on;
      if (on)
        pruning ??= runSteps(retentionSteps(db, { policy: DEFAULT_RETENTION, nowMs: NOW }), {
          startedAtMs: NOW,
          sleep: async (ms) => {
            await Bun.sleep(ms);
            while (!allowed && !stopped) await Bun.sleep(2);
          },
          shouldStop: () => stopped,
        });
      await queue.accept(
        {
          direction: "inbound",
          intake: "ischedule",
          originator: "mailto:a@peer.example",
          method: "REQUEST",
          component: "VEVENT",
          contentType: "text/calendar",
          body: `BEGIN:VCALENDAR\r\nDESCRIPTION:${"x".repeat(5000)}${i}\r\nEND:VCALENDAR\r\n`,
        },
        [
          {
            recipient: "mailto:b@example.com",
            domain: "example.com",
            route: "local",
            target: "store",
            state: "delivered",
          },
        ],
      );
      (on ? waits.with : waits.without).push(Math.max(0, performance.now() - next));
    }
    stopped = true;
    const report = await pruning;
    await checkpointer.stop();
    db.close();
    const q = (xs: number[], p: number) =>
      [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!.toFixed(1);
    for (const k of ["without", "with"] as const)
      console.log(
        `accept wait ${k} the pruner: p50 ${q(waits[k], 0.5)} p90 ${q(waits[k], 0.9)} p99 ${q(waits[k], 0.99)} max ${q(waits[k], 1)} ms (${waits[k].length} accepts)`,
      );
    console.log(
      `pruner in its windows: ${report?.steps.reduce((n, s) => n + s.rows, 0)} rows, longest batch ${Math.max(...(report?.steps.map((s) => s.maxBatchMs) ?? [0])).toFixed(1)} ms`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
