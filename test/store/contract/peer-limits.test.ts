/**
 * The store contract, a per-peer limit across nodes: the same cases against SQLite and PostgreSQL
 * (_stores.ts; on PostgreSQL two connection pools on one database, as two nodes have). leaseFitting
 * tells `fits` what other lease owners hold in flight for each route and domain, and leases one
 * owner at a time, so that a limit `fits` checks against it holds for all of them together: two
 * nodes leasing at the same moment for one peer never hold more than the limit between them. On
 * SQLite one process owns the queue: the count is of other owners in that process (none, in serve),
 * and its transactions were one at a time already.
 */
import { expect, test } from "bun:test";
import type { DueRow, HeldInFlight, Store } from "../../../src/store/store.ts";
import { lease, message, queued, T0 } from "./_data.ts";
import { contract } from "./_stores.ts";

const LIMIT = 3;
const PEER = "peer.example";

/** `n` messages, each with one delivery to PEER, all due. */
async function backlog(store: Store, n: number): Promise<void> {
  for (let i = 0; i < n; i++)
    await store.accept({ message: message(), deliveries: [queued(`u${i}@${PEER}`, T0 + i)], nowMs: T0 });
}

/** One owner's rule: what it holds, plus what others hold, plus what this lease takes, within LIMIT. */
function withinLimit(mine: number): (row: DueRow, held: readonly HeldInFlight[]) => boolean {
  let taken = 0;
  return (row, held) => {
    const others = held.find((h) => h.domain === row.domain && h.route === row.route)?.messages ?? 0;
    if (mine + others + taken >= LIMIT) return false;
    taken++;
    return true;
  };
}

contract("store per-peer limits", (b) => {
  test("fits sees what the other owners hold in flight for the peer, not its own", async () => {
    const storeA = await b.fresh();
    const storeB = await b.another(storeA);
    await backlog(storeA, 5);
    /** What `fits` is given when `store` leases one more for `owner`. */
    const seenBy = async (store: Store, owner: string) => {
      const seen: (readonly HeldInFlight[])[] = [];
      const fits = (_row: DueRow, held: readonly HeldInFlight[]) => seen.push(held) > 0;
      await store.leaseFitting({ ...lease(owner), limit: 1, window: 1, fits, rotate: false });
      return seen[0];
    };
    const first = await storeA.leaseFitting({
      ...lease("node-a:1"),
      limit: 2,
      window: 2,
      fits: () => true,
      rotate: false,
    });
    expect(first.leased).toHaveLength(2);
    expect(await seenBy(storeB, "node-b:2")).toEqual([{ route: "local", domain: PEER, messages: 2 }]);
    expect(await seenBy(storeA, "node-a:1")).toEqual([{ route: "local", domain: PEER, messages: 1 }]);
  });

  test("two nodes leasing for one peer at the same moments never hold more than the limit together", async () => {
    const storeA = await b.fresh();
    const storeB = await b.another(storeA);
    await backlog(storeA, 60);
    const owners = [
      { store: storeA, owner: "node-a:1", held: [] as number[] },
      { store: storeB, owner: "node-b:2", held: [] as number[] },
    ];
    let most = 0;
    let leasedTotal = 0;
    for (let round = 0; round < 40; round++) {
      const results = await Promise.all(
        owners.map((o) =>
          o.store.leaseFitting({
            ...lease(o.owner),
            limit: LIMIT,
            window: LIMIT + 4,
            fits: withinLimit(o.held.length),
            rotate: false,
          }),
        ),
      );
      results.forEach((r, i) => {
        owners[i]!.held.push(...r.leased.map((d) => d.id));
        leasedTotal += r.leased.length;
      });
      const inFlight = (await storeA.countByState())["in-flight"];
      most = Math.max(most, inFlight);
      expect(inFlight).toBeLessThanOrEqual(LIMIT);
      // Each owner finishes one of what it holds, so the next round has room again.
      for (const o of owners) {
        const done = o.held.shift();
        if (done !== undefined) await o.store.releaseLeases({ ids: [done], owner: o.owner, nowMs: T0 });
      }
    }
    expect(most).toBe(LIMIT);
    expect(leasedTotal).toBeGreaterThan(40);
  });
});
