/**
 * The report of `isched doctor` and `isched validate`: one line per check, `pass`, `warn` or `fail`,
 * what was found, and for anything not passing the fix on the next line; or the same as JSON for
 * scripts. The exit status says the worst: 0 when everything passes, 3 when there are warnings and
 * no failure, 1 when something fails (2 stays the usage error of every command).
 */

import type { Check, CheckStatus } from "../diagnose/check.ts";

export type { Check, CheckStatus };

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

export function worst(checks: readonly Check[]): CheckStatus {
  return checks.reduce<CheckStatus>((w, c) => (RANK[c.status] > RANK[w] ? c.status : w), "pass");
}

/** 0 all pass, 3 warnings only, 1 a failure. */
export function exitCodeOf(checks: readonly Check[]): number {
  const w = worst(checks);
  return w === "fail" ? 1 : w === "warn" ? 3 : 0;
}

export function formatCheck(c: Check): string {
  const time = c.ms === undefined ? "" : ` (${c.ms} ms)`;
  const line = `${c.status.padEnd(4)}  ${c.subject}: ${c.detail}${time}`;
  return c.fix && c.status !== "pass" ? `${line}\n      fix: ${c.fix}` : line;
}

/** Counts by status, for the last line. */
export function summaryLine(checks: readonly Check[]): string {
  const n = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  return `${n("pass")} passed, ${n("warn")} warnings, ${n("fail")} failed`;
}

export function formatReport(checks: readonly Check[]): string {
  return `${[...checks.map(formatCheck), summaryLine(checks)].join("\n")}\n`;
}
