/**
 * The life of `isched serve` once it listens, as a supervisor sees it (sd_notify(3), systemd.service
 * Type=notify): READY=1 with a STATUS= line, WATCHDOG=1 at half of $WATCHDOG_USEC, and on SIGTERM
 * or SIGINT STOPPING=1 and a shutdown within a bound (src/ops/drain.ts through the server's stop()).
 * Without $NOTIFY_SOCKET nothing is sent and the shutdown is the same.
 *
 * The signals are caught from the start of `serve` (catchShutdownSignals), so that one sent while
 * isched starts (right after it printed its summary, say) is not the default end of the process but
 * the same shutdown, as soon as there is something to shut down.
 *
 * The exit code says whether the shutdown was clean: 0 when every step finished in time, 1 when one
 * overran or failed (the log names it). A second signal while the shutdown runs ends the process at
 * once (exit 1): whoever sends it prefers that to waiting, and SQLite's WAL and the leases keep what
 * was committed (start-up recovery puts leased deliveries back in the queue).
 */
import type { Logger } from "../log/logger.ts";
import type { DrainReport, Notifier, NotifyResult } from "../ops/index.ts";
import { formatDuration } from "../time/duration.ts";

const SIGNALS = ["SIGTERM", "SIGINT"] as const;

export interface ShutdownSignals {
  /** The first SIGTERM or SIGINT, once it came. */
  readonly first: Promise<string>;
  received(): string | undefined;
}

/** Catches SIGTERM and SIGINT from now on: the first is kept for the shutdown, a second ends at once. */
export function catchShutdownSignals(o: { log: Logger; exit?: (code: number) => never }): ShutdownSignals {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let received: string | undefined;
  let resolve: (signal: string) => void = () => {};
  const first = new Promise<string>((r) => {
    resolve = r;
  });
  for (const signal of SIGNALS)
    process.on(signal, () => {
      if (received !== undefined) {
        o.log.log("warn", "a second signal: exiting now, without finishing the shutdown", { signal });
        exit(1);
      }
      received = signal;
      resolve(signal);
    });
  return { first, received: () => received };
}

export interface SuperviseOptions {
  signals: ShutdownSignals;
  server: { stop(o: { timeoutMs: number }): Promise<DrainReport> };
  log: Logger;
  notifier: Notifier;
  shutdownTimeoutMs: number;
  /** For `systemctl status` while isched runs. */
  status: string;
  /** At the start of the shutdown (the other commands stop finding this server). */
  onStopping?: () => void;
}

/** Runs until SIGTERM or SIGINT and the shutdown after it; resolves with the exit code. */
export async function superviseServer(o: SuperviseOptions): Promise<number> {
  const { log, notifier } = o;
  // A notification that cannot be sent is logged once, not at every watchdog ping (sd-notify.ts).
  let reported = false;
  const told = (r: NotifyResult) => {
    if (r.sent || !notifier.enabled || reported) return;
    reported = true;
    log.log("warn", "cannot notify systemd", { reason: r.reason });
  };
  // A signal during start-up: straight to the shutdown, without saying READY first.
  if (o.signals.received() === undefined) told(notifier.ready(o.status));
  const intervalMs = notifier.watchdogIntervalMs;
  const watchdog =
    intervalMs === undefined ? undefined : setInterval(() => told(notifier.watchdog()), intervalMs);
  const signal = await o.signals.first;
  clearInterval(watchdog);
  const within = formatDuration(o.shutdownTimeoutMs);
  told(
    notifier.stopping(`stopping: finishing delivery attempts and closing the database (${within} at most)`),
  );
  log.log("info", "shutting down", { signal, within });
  o.onStopping?.();
  try {
    const report = await o.server.stop({ timeoutMs: o.shutdownTimeoutMs });
    const clean = report.overran.length === 0 && report.failed.length === 0;
    if (clean) log.log("info", "stopped", { ms: report.elapsedMs });
    else
      log.log("warn", "stopped, but not cleanly", {
        ms: report.elapsedMs,
        overran: report.overran.join(", ") || undefined,
        failed: report.failed.map((f) => `${f.name}: ${f.error}`).join("; ") || undefined,
      });
    return clean ? 0 : 1;
  } catch (e) {
    log.log("error", "the shutdown failed", { error: e instanceof Error ? e.message : String(e) });
    return 1;
  }
}
