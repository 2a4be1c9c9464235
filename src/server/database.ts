/**
 * The store `isched serve` runs on: DATA/isched.db opened (a copy first when its schema must be
 * migrated), with the WAL checkpointer beside it; or, with --database, the PostgreSQL database
 * several nodes share (migrated under its advisory lock; no checkpointer: PostgreSQL checkpoints
 * itself). The queue on it, with what a previous run left in flight; and the problems the operator
 * sees (src/log/health.ts): failing checkpoints, a key peers cannot find yet, risky settings.
 */
import { join } from "node:path";
import { riskySettings } from "../config/risky-settings.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import { type KeyPublication, keyProblems } from "../keys/key-publication.ts";
import { createHealth, type Health, type Problem } from "../log/health.ts";
import type { Logger } from "../log/logger.ts";
import { DeliveryQueue } from "../queue/queue.ts";
import { openPostgresStore, type PostgresStore } from "../store/postgres/store.ts";
import { startCheckpointer } from "../store/sqlite/checkpointer.ts";
import { openSqliteStore, type SqliteStore } from "../store/sqlite/store.ts";
import type { Store } from "../store/store.ts";
import { redactSecrets } from "../text/redact.ts";

export interface ServerDatabase {
  readonly store: Store;
  /** The SQLite store, when that is the backend: retention (serverPruner) runs on its connection. */
  readonly sqlite?: SqliteStore;
  /** The PostgreSQL store, with --database: the nodes table and lease takeover (src/server/cluster.ts). */
  readonly postgres?: PostgresStore;
  readonly health: Health;
  close(): Promise<void>;
}

/** How long start-up waits for --database to answer before it gives up. */
const CONNECT_TIMEOUT_S = 10;

export async function openServerDatabase(o: {
  config: ServeConfig;
  log: Logger;
  nowMs: () => number;
}): Promise<ServerDatabase> {
  const health = createHealth({ log: o.log, nowMs: o.nowMs });
  if (o.config.database !== undefined) {
    const store = await openDatabaseUrl(o.config.database);
    return { store, postgres: store, health, close: () => store.close() };
  }
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
  const checkpointer = startCheckpointer({
    db: store.db,
    path,
    writes: { hold: () => store.holdWrites(), release: () => store.releaseWrites() },
    onProblem: (problem) =>
      problem === undefined
        ? health.resolve("checkpoints", "WAL checkpoints complete again")
        : health.report("checkpoints", problem),
  });
  return {
    store,
    sqlite: store,
    health,
    async close() {
      await checkpointer.stop();
      await store.close();
    },
  };
}

/**
 * The PostgreSQL store of --database, migrated; a server that cannot be reached, refuses the login
 * or holds a schema this isched cannot use is one line naming --database, its password redacted.
 */
async function openDatabaseUrl(url: string): Promise<PostgresStore> {
  try {
    return await openPostgresStore(url, { connectTimeoutSeconds: CONNECT_TIMEOUT_S });
  } catch (e) {
    const err = e as Error & { code?: string };
    const why = redactSecrets(`${err?.message ?? String(e)}${err?.code ? ` (${err.code})` : ""}`);
    throw new Error(`--database: cannot use ${redactSecrets(url)}: ${why}`);
  }
}

/**
 * The queue, after taking back what a previous run left in flight (a dead process's leases): on
 * SQLite, which one process owns, every in-flight delivery; among several nodes (`startOfNode`, the
 * owner prefix of this node's leases), this node's and the expired ones (src/server/cluster.ts).
 */
export async function openQueue(o: {
  store: Store;
  log: Logger;
  nowMs: () => number;
  leaseMs?: number;
  startOfNode?: string;
}): Promise<DeliveryQueue> {
  const queue = new DeliveryQueue(o.store, { nowMs: o.nowMs, leaseMs: o.leaseMs });
  const recovered = await queue.recoverExpiredLeases(
    o.startOfNode === undefined ? { allInFlight: true } : { startOfNode: o.startOfNode },
  );
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
