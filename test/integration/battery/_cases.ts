/**
 * The battery's cases and how they are run: each case belongs to an area, knows its expected answer,
 * and reports what did not match. Cases run in pools (a few at a time per area); the slow ones, which
 * wait for one of the server's deadlines, are started first so that they overlap the rest.
 */

export type Area = "endpoint" | "console/API" | "SMTP intake" | "fake peer";
export const AREAS: readonly Area[] = ["endpoint", "console/API", "SMTP intake", "fake peer"];

export interface Verdict {
  /** What differed from the expected answer; empty when it matched. */
  readonly problems: readonly string[];
  /** The server answered a client's mistake with a 5xx (HTTP), or failed on its own side. */
  readonly serverError?: boolean;
}

export interface Case {
  readonly area: Area;
  readonly name: string;
  /** Waits for one of the server's deadlines: started before the others and run alongside them. */
  readonly slow?: boolean;
  run(): Promise<Verdict>;
}

export interface Failure {
  readonly area: Area;
  readonly name: string;
  readonly problems: readonly string[];
}

export interface RunResult {
  readonly failures: Failure[];
  /** Cases answered with a server error (5xx for a client's mistake, 451 for a local failure). */
  readonly serverErrors: number;
  readonly ms: number;
  /** The five slowest cases, for the output. */
  readonly slowest: readonly { name: string; ms: number }[];
}

/** Runs `cases` at most `concurrency` at a time; a case that throws (no answer at all) fails. */
export async function runCases(cases: readonly Case[], concurrency: number): Promise<RunResult> {
  const started = performance.now();
  const failures: Failure[] = [];
  let serverErrors = 0;
  let next = 0;
  const times: { name: string; ms: number }[] = [];
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i]!;
      let verdict: Verdict;
      const caseStarted = performance.now();
      try {
        verdict = await c.run();
      } catch (e) {
        verdict = { problems: [`no answer: ${(e as Error)?.message ?? String(e)}`] };
      }
      times.push({ name: `${c.area}: ${c.name}`, ms: Math.round(performance.now() - caseStarted) });
      if (verdict.serverError) serverErrors++;
      if (verdict.problems.length > 0)
        failures.push({ area: c.area, name: c.name, problems: verdict.problems });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, cases.length) }, worker));
  const slowest = times.sort((a, b) => b.ms - a.ms).slice(0, 5);
  return { failures, serverErrors, ms: performance.now() - started, slowest };
}

/** One line per failed case, for a readable test failure. */
export function describeFailures(failures: readonly Failure[]): string[] {
  return failures.map((f) => `${f.area}: ${f.name}: ${f.problems.join("; ")}`);
}

/** `problems` when `actual` differs from `expected` (compared as JSON), labelled. */
export function differs(label: string, actual: unknown, expected: unknown): string[] {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  return a === e ? [] : [`${label}: got ${clip(a)}, expected ${clip(e)}`];
}

export function clip(text: string | undefined, max = 300): string {
  const t = text ?? "";
  return t.length > max ? `${t.slice(0, max)}...` : t;
}
