/**
 * One finding of a diagnosis (`isched doctor`, `isched validate`, and whatever else checks a setup):
 * pass, warn or fail, what was checked, what was found, and the fix when it does not pass.
 */

export type CheckStatus = "pass" | "warn" | "fail";

export interface Check {
  /** A stable name for scripts: `srv`, `dkim-dns`, `tls-chain`, ... */
  readonly id: string;
  readonly status: CheckStatus;
  /** What was checked, for the operator: `SRV _ischedules._tcp.example.com`. */
  readonly subject: string;
  /** What was found. */
  readonly detail: string;
  /** What to do about it; absent when it passes. */
  readonly fix?: string;
  /** How long the check took, where it asked the network. */
  readonly ms?: number;
}

/** A finding with its fix; `ms` when it asked the network. */
export function finding(
  id: string,
  status: CheckStatus,
  subject: string,
  detail: string,
  extra: { fix?: string; ms?: number } = {},
): Check {
  return { id, status, subject, detail, ...extra };
}

/** Times a check that asks the network. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - t0) };
}
