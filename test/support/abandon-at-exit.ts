/**
 * Server fixtures whose processes run in a group or session of their own (Cyrus's master,
 * PostgreSQL's postmaster) would outlive a test process that ends before their stop(). Each fixture
 * keeps its live servers in a set made here; at exit, and on Ctrl-C or a termination signal (which
 * do not emit "exit"), every one of them is abandoned: killed and its folder removed, synchronously.
 */

export interface Abandonable {
  /** Synchronously: no waiting for anything asynchronous at process exit. */
  abandon(): void;
}

/** A set whose members are abandoned when the process ends. */
export function abandonedAtExit<T extends Abandonable>(): Set<T> {
  const live = new Set<T>();
  process.on("exit", () => {
    for (const server of live) server.abandon();
  });
  // Once cleaned up, the signal is raised again so that it still ends the process, unless someone
  // else listens for it and decides.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      for (const server of live) server.abandon();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  return live;
}
