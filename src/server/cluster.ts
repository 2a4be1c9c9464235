/**
 * A node among several on one PostgreSQL database (--database, --node-id): what keeps two nodes from
 * delivering one delivery twice, and a dead node's deliveries from waiting for it forever.
 *
 * - Its name: at start-up the node claims its row in the nodes table, refused while another live
 *   process holds the name (seen within the lease time, not stopped cleanly, and not a dead process
 *   of this host): two processes of one name would take each other's leases at start.
 * - Its leases carry `NODE:PID` (leaseOwner), so start-up recovery takes back the deliveries its own
 *   earlier process left in flight, and the expired ones of any node, but never the live leases of
 *   another node (src/queue/queue.ts, recoverExpiredLeases).
 * - While it runs, every tick (a third of the lease time, 10 s at most) it writes its heartbeat
 *   (last seen, version), renews the leases of the deliveries it is attempting or holding for a
 *   slot, and takes over the expired leases of nodes that stopped renewing theirs (a node killed,
 *   frozen or cut off): those deliveries go back to the queue and the dispatcher is woken.
 * - Work that another node could start now is announced (NOTIFY on the queue channel): deliveries
 *   the intake queued but did not finish, an operator's "retry now", the leases a stopping node gave
 *   back. Every other node's dispatcher wakes at once instead of at its next look (up to 5 s idle).
 *   When the listener reconnects, announcements made meanwhile were missed: the dispatcher wakes.
 * - A clean stop announces the work it gave back, then marks its row stopped.
 */
import type { Logger } from "../log/logger.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { NodeRow } from "../store/postgres/nodes.ts";
import type { PostgresStore } from "../store/postgres/store.ts";
import { VERSION } from "../version.ts";

/** The heartbeat, lease renewal and takeover run this often: a third of the lease time, at most this. */
const MAX_TICK_MS = 10_000;

export interface NodeIdentity {
  id: string;
  host: string;
  pid: number;
}

/** The lease owner of this process: `NODE:PID`; `NODE:` is what its start-up recovery takes back. */
export const leaseOwnerOf = (node: Pick<NodeIdentity, "id" | "pid">): string => `${node.id}:${node.pid}`;
export const ownerPrefixOf = (nodeId: string): string => `${nodeId}:`;

/**
 * Why this process may not run as `self.id`, or undefined: another process that holds the name is
 * alive as far as the database can tell (it beat its heart within the lease time and did not stop),
 * unless it ran on this host and its process is gone (a restart after a crash).
 */
export function nameTaken(o: {
  previous: NodeRow | undefined;
  self: NodeIdentity;
  nowMs: number;
  leaseMs: number;
  processAlive: (pid: number) => boolean;
}): string | undefined {
  const p = o.previous;
  if (!p || p.stoppedAt !== null || p.seenAt <= o.nowMs - o.leaseMs) return undefined;
  if (p.host === o.self.host && (p.pid === o.self.pid || !o.processAlive(p.pid))) return undefined;
  const agoS = Math.max(0, Math.round((o.nowMs - p.seenAt) / 1000));
  return `--node-id: node "${p.id}" runs already on ${p.host} (pid ${p.pid}, heartbeat ${agoS} s ago); give each node its own --node-id, or stop that one first`;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Claims the node's name (refused with a StoreError naming --node-id, see nameTaken). */
export async function claimNodeName(o: {
  store: PostgresStore;
  self: NodeIdentity;
  leaseMs: number;
  nowMs: () => number;
}): Promise<void> {
  const now = o.nowMs();
  await o.store.claimNode({
    node: { ...o.self, version: VERSION, startedAt: now, seenAt: now },
    refuse: (previous) =>
      nameTaken({ previous, self: o.self, nowMs: o.nowMs(), leaseMs: o.leaseMs, processAlive }),
  });
}

export interface ClusterNode {
  /** Tells the other nodes that deliveries are due now (best effort: they poll anyway). */
  announce(): void;
  /** Announces what the dispatcher gave back and marks the node stopped; call after the dispatcher stopped. */
  stop(): Promise<void>;
}

/**
 * Starts the node's tick (heartbeat, renewal of the leases it holds, takeover of expired ones) and
 * its listener for the other nodes' announcements.
 */
export async function runClusterNode(o: {
  store: PostgresStore;
  queue: DeliveryQueue;
  self: NodeIdentity;
  leaseMs: number;
  /** The deliveries this process holds leases on (the dispatcher's heldIds). */
  heldIds: () => number[];
  /** Wakes this node's dispatcher: expired leases went back to the queue, or another node announced work. */
  wake: () => void;
  log: Logger;
  nowMs: () => number;
}): Promise<ClusterNode> {
  const owner = leaseOwnerOf(o.self);
  const tickMs = Math.min(MAX_TICK_MS, Math.max(250, Math.floor(o.leaseMs / 3)));
  let failing = false;
  let running: Promise<void> | undefined;
  const tick = async () => {
    try {
      if (!(await o.store.beat({ ...o.self, seenAt: o.nowMs() })))
        o.log.log("warn", "another process has taken this node's name in the nodes table", {
          node: o.self.id,
        });
      const held = o.heldIds();
      if (held.length > 0) {
        const kept = new Set(await o.queue.renewLease(held, owner));
        const lost = held.filter((id) => !kept.has(id));
        if (lost.length > 0)
          o.log.log("warn", "leases lost before they were renewed (another node took the deliveries over)", {
            deliveries: lost.join(","),
          });
      }
      const taken = await o.queue.recoverExpiredLeases();
      if (taken.requeued.length + taken.broken.length > 0) {
        o.log.log("warn", "took over deliveries whose lease expired (their node stopped renewing it)", {
          requeued: taken.requeued.length,
          broken: taken.broken.length,
        });
        o.wake();
      }
      if (failing) o.log.log("info", "the node's heartbeat works again");
      failing = false;
    } catch (e) {
      if (!failing)
        o.log.log("error", "cannot write the node's heartbeat or renew its leases; trying again", {
          error: (e as Error)?.message ?? String(e),
        });
      failing = true;
    }
  };
  const unlisten = await o.store.onWork(
    (from) => {
      if (from !== o.self.id) o.wake();
    },
    () => o.wake(),
  );
  const announce = () =>
    o.store.announceWork(o.self.id).catch((e) =>
      o.log.log("warn", "cannot tell the other nodes of new work (they find it within 5 s)", {
        error: (e as Error)?.message ?? String(e),
      }),
    );
  const timer = setInterval(() => {
    running ??= tick().finally(() => {
      running = undefined;
    });
  }, tickMs);
  return {
    announce: () => void announce(),
    async stop() {
      clearInterval(timer);
      await running;
      await unlisten().catch(() => {});
      await announce();
      await o.store.markStopped({ ...o.self, atMs: o.nowMs() });
    },
  };
}
