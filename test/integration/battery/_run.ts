/**
 * One full run of the battery: every area at once, each through its own pool (the endpoint a few
 * requests at a time, the SMTP intake two at a time so that logins never wait for each other, the
 * console/API and the fake peer more), the slow cases each on their own from the start, so that
 * their waits for the server's deadlines overlap the rest.
 */
import { AREAS, type Area, type Case, type Failure, runCases } from "./_cases.ts";

/** Cases of an area at once. SMTP AUTH allows 2 password checks at a time (attempt-throttle.ts). */
const CONCURRENCY: Record<Area, number> = { endpoint: 4, "console/API": 4, "SMTP intake": 2, "fake peer": 8 };

export interface AreaSummary {
  area: Area;
  cases: number;
  failures: number;
  serverErrors: number;
  ms: number;
}

export interface FullRun {
  failures: Failure[];
  serverErrors: number;
  areas: AreaSummary[];
  ms: number;
  slowest: { name: string; ms: number }[];
}

export async function runAll(cases: readonly Case[]): Promise<FullRun> {
  const started = performance.now();
  const slow = cases.filter((c) => c.slow);
  const [slowResult, ...byArea] = await Promise.all([
    runCases(slow, Math.max(1, slow.length)),
    ...AREAS.map((area) =>
      runCases(
        cases.filter((c) => c.area === area && !c.slow),
        CONCURRENCY[area],
      ),
    ),
  ]);
  const failures = [slowResult!, ...byArea].flatMap((r) => r.failures);
  const areas = AREAS.map((area, i) => ({
    area,
    cases: cases.filter((c) => c.area === area).length,
    failures: failures.filter((f) => f.area === area).length,
    serverErrors: byArea[i]!.serverErrors,
    ms: Math.round(byArea[i]!.ms),
  }));
  return {
    failures,
    serverErrors: [slowResult!, ...byArea].reduce((n, r) => n + r.serverErrors, 0),
    areas,
    ms: Math.round(performance.now() - started),
    slowest: [slowResult!, ...byArea]
      .flatMap((r) => r.slowest)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5),
  };
}

export function describeRun(label: string, r: FullRun): string {
  const lines = r.areas.map(
    (a) =>
      `  ${a.area.padEnd(12)} ${String(a.cases).padStart(4)} cases, ${a.failures} unexpected answers, ${a.serverErrors} server errors, ${a.ms} ms`,
  );
  const slowest = r.slowest.map((s) => `${s.name} (${s.ms} ms)`).join("; ");
  return `${label}: ${r.ms} ms\n${lines.join("\n")}\n  slowest: ${slowest}`;
}
