/**
 * RFC 2782 target selection: lowest priority first; within a priority, a weighted random order
 * (weight-0 targets keep a small chance by being placed first before the running sums, as the RFC
 * describes). A single record whose target is "." means the service is decidedly not available.
 */
import type { SrvRecord } from "./client.ts";

/** True when the answer says "no such service here" (one record with target "."). */
export const srvSaysUnavailable = (records: readonly SrvRecord[]): boolean =>
  records.length === 1 && (records[0]!.target === "" || records[0]!.target === ".");

/** The order in which to try the targets. `random` returns [0, 1). */
export function orderSrvTargets(
  records: readonly SrvRecord[],
  random: () => number = Math.random,
): SrvRecord[] {
  const usable = records.filter((r) => r.target !== "" && r.target !== ".");
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
  const out: SrvRecord[] = [];
  for (const p of priorities) {
    // Zero-weight entries first, then the rest, as RFC 2782 orders them before summing.
    const pool = usable
      .filter((r) => r.priority === p)
      .sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (pool.length > 0) {
      const total = pool.reduce((s, r) => s + r.weight, 0);
      const pick = Math.floor(random() * (total + 1));
      let running = 0;
      let index = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        running += pool[i]!.weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      out.push(pool.splice(index, 1)[0]!);
    }
  }
  return out;
}
