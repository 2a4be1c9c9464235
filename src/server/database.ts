/**
 * The store `isched serve` runs on: DATA/isched.db opened (a copy first when its schema must be
 * migrated), with the WAL checkpointer beside it; the queue on it, with what a previous run left in
 * flight; and the problems the operator sees (src/log/health.ts): failing checkpoints, a key peers
 * cannot find yet, risky settings.
 */
import { join } from "node:path";
import { riskySettings } from "../config/risky-settings.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import { type KeyPublication, keyProblems } from "../keys/key-publication.ts";
import { createHealth, type Health, type Problem } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { DeliveryQueue } from "../queue/queue.ts";
import { startCheckpointer } from "../store/sqlite/checkpointer.ts";
import { openSqliteStore, type SqliteStore } from "../store/sqlite/store.ts";
import type { Store } from "../store/store.ts";

export interface ServerDatabase {
  /** The SQLite store: retention (serverPruner) still runs on its connection. */
  readonly store: SqliteStore;
  readonly health: Health;
  close(): Promise<void>;
}

export function openServerDatabase(o: {
  config: ServeConfig;
  log: Logger;
  nowMs: () => number;
}): ServerDatabase {
  const path = join(o.config.dataDir, "isched.db");
  const store = openSqliteStore(path, {
    synchronous: o.config.sync,
    onMigrationBackup: (backup) =>
      o.log.log("warn", "copied the database before migrating its schema", { backup }),
    // An older database gives pruned pages back to the disk only once converted (store/compaction.ts).
    convertToIncrementalVacuum: (r) => {
      if (r.converted)
        o.log.log("info", "converted the database to incremental auto-vacuum", {
          before: r.bytesBefore,
          after: r.bytesAfter,
          ms: Math.round(r.ms),
        });
      else if (r.reason !== "a new database" && r.reason !== "already converted")
        o.log.log(
          "warn",
          "the database keeps its size after pruning: not converted to incremental auto-vacuum",
          {
            reason: r.reason,
          },
        );
    },
  });
  const health = createHealth({ log: o.log, nowMs: o.nowMs });
  const checkpointer = startCheckpointer({
    db: store.db,
    path,
    onProblem: (problem) =>
      problem === undefined
        ? health.resolve("checkpoints", "WAL checkpoints complete again")
        : health.report("checkpoints", problem),
  });
  return {
    store,
    health,
    async close() {
      await checkpointer.stop();
      await store.close();
    },
  };
}

/** The queue, after taking back what a previous run left in flight (a dead process's leases). */
export async function openQueue(o: {
  store: Store;
  log: Logger;
  nowMs: () => number;
}): Promise<DeliveryQueue> {
  const queue = new DeliveryQueue(o.store, { nowMs: o.nowMs });
  const recovered = await queue.recoverExpiredLeases({ allInFlight: true });
  if (recovered.requeued.length + recovered.broken.length > 0)
    o.log.log("warn", "recovered deliveries left in flight by a previous run", {
      requeued: recovered.requeued.length,
      broken: recovered.broken.length,
    });
  return queue;
}

/**
 * What the operator must know about now: the running server's problems, then risky settings. The
 * console's policies are read at start and again by refresh(), which the console calls after it
 * changed one: problems() is asked synchronously (the start-up summary, /readyz, the Overview).
 */
export async function operatorProblems(o: {
  config: ServeConfig;
  store: Store;
  health: Health;
  keyPublication: KeyPublication;
  sinceMs: number;
}): Promise<{ problems: () => Problem[]; refresh: () => Promise<void> }> {
  const { config } = o;
  let policies = await o.store.peerPolicies();
  return {
    problems: () => [
      ...o.health.problems(),
      ...keyProblems(o.keyPublication, o.sinceMs),
      ...riskySettings({
        trust: config.trust,
        consolePolicies: policies,
        tls: config.tls !== undefined,
        trustedProxies: config.trustedProxies ?? [],
        domains: config.domains,
      }).map((r) => ({ ...r, sinceMs: o.sinceMs })),
    ],
    async refresh() {
      policies = await o.store.peerPolicies();
    },
  };
}
