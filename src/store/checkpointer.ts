/**
 * WAL checkpoints off the request path. SQLite folds the WAL back into the database file from
 * whichever connection commits past the autocheckpoint limit, and a checkpoint syncs the file: on a
 * slow disk that stalled every request queued behind it (tens of milliseconds at the 99th
 * percentile). isched turns automatic checkpoints off on its own connection and runs them from a
 * worker thread with a second connection instead. Durability does not change: committed transactions
 * are in the WAL either way.
 */
import type { Database } from "bun:sqlite";

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(db: Database, path: string, intervalMs = 1000): Checkpointer {
  const worker = new Worker(new URL("./checkpoint-worker.ts", import.meta.url).href);
  worker.postMessage({ path, intervalMs });
  // The worker checkpoints from now on; the main connection no longer does it on commit.
  db.run("PRAGMA wal_autocheckpoint = 0");
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          worker.terminate();
          resolve();
        };
        const timer = setTimeout(done, 2000);
        worker.onmessage = () => {
          clearTimeout(timer);
          done();
        };
        worker.postMessage("stop");
      }),
  };
}
