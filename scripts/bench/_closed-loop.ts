/**
 * A closed-loop load for the store benchmarks: `callers` concurrent loops, each awaiting one
 * operation after another for `seconds`; the rate, each operation's latency and this process's CPU
 * time per operation (user + system, which other processes on a busy machine do not inflate).
 */

export interface LoopResult {
  perSecond: number;
  /** Sorted, milliseconds. */
  latenciesMs: number[];
  cpuUsPerOp: number;
}

export async function closedLoop(o: {
  callers: number;
  seconds: number;
  run: (i: number) => unknown;
}): Promise<LoopResult> {
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.callers }, async (_, w) => {
      for (let i = w; performance.now() < end; i += o.callers) {
        const s = performance.now();
        await o.run(i);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / elapsedS,
    latenciesMs: latencies,
    cpuUsPerOp: (cpu.user + cpu.system) / latencies.length,
  };
}

/** The p-quantile (0..1) of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}
