/**
 * Shutdown within a bound (SIGTERM): the steps run in order (stop accepting, let attempts finish or
 * give their leases back, flush, close the database), each for at most what is left of the total
 * (or its own bound, when shorter). A step that overruns is left behind and the next one starts:
 * closing the database cleanly matters more than waiting for a slow client's upload, and systemd
 * kills the process at TimeoutStopSec anyway. A step that fails is logged and the next one starts too.
 *
 * The report says which steps completed, overran or failed, so the caller can exit non-zero when
 * the drain was not clean.
 */
import type { Logger } from "../log/logger.ts";

export interface DrainStep {
  readonly name: string;
  readonly run: () => void | Promise<void>;
  /** At most this long (within what is left of the total). */
  readonly boundMs?: number;
}

export interface DrainReport {
  readonly completed: readonly string[];
  /** Steps still running when their time was up. */
  readonly overran: readonly string[];
  readonly failed: readonly { readonly name: string; readonly error: string }[];
  readonly elapsedMs: number;
}

export async function drain(
  steps: readonly DrainStep[],
  o: { totalMs: number; log?: Logger; elapsed?: () => number },
): Promise<DrainReport> {
  const elapsed = o.elapsed ?? (() => performance.now());
  const start = elapsed();
  const completed: string[] = [];
  const overran: string[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const step of steps) {
    const left = Math.max(0, o.totalMs - (elapsed() - start));
    const bound = Math.min(left, step.boundMs ?? left);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      Promise.resolve()
        .then(step.run)
        .then(
          () => ({ ok: true as const }),
          (e: unknown) => ({ ok: false as const, error: e instanceof Error ? e.message : String(e) }),
        ),
      new Promise<"overran">((resolve) => {
        timer = setTimeout(() => resolve("overran"), bound);
      }),
    ]);
    clearTimeout(timer);
    if (outcome === "overran") {
      overran.push(step.name);
      o.log?.log("warn", "shutdown: a step did not finish in time; going on", {
        step: step.name,
        ms: Math.round(bound),
      });
    } else if (outcome.ok) completed.push(step.name);
    else {
      failed.push({ name: step.name, error: outcome.error });
      o.log?.log("error", "shutdown: a step failed; going on", { step: step.name, error: outcome.error });
    }
  }
  return { completed, overran, failed, elapsedMs: Math.round(elapsed() - start) };
}
