/**
 * Stopping a test server's process: SIGTERM, then SIGKILL when it has not exited after a grace
 * period, and resolve once it has exited.
 */
import type { ChildProcess } from "node:child_process";

export async function terminate(child: ChildProcess, exited: Promise<void>, graceMs = 2000): Promise<void> {
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(killer);
}
