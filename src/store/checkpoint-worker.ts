/**
 * The checkpointer's thread (see checkpointer.ts): its own connection to the database file, folding
 * the WAL back into the database every interval. The sync a checkpoint needs happens here, not on the
 * thread that answers requests.
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

self.onmessage = (event: MessageEvent<{ path: string; intervalMs: number } | "stop">) => {
  if (event.data === "stop") {
    clearInterval(timer);
    try {
      db?.run("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      // The main connection folds what is left when it closes.
    }
    db?.close();
    self.postMessage("stopped");
    return;
  }
  db = new Database(event.data.path, { readwrite: true });
  db.run("PRAGMA busy_timeout = 5000");
  timer = setInterval(() => {
    try {
      // PASSIVE: copies what no reader needs any more, never waits for or blocks a writer.
      db?.run("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      // Busy or briefly locked: the next round does it.
    }
  }, event.data.intervalMs);
};
