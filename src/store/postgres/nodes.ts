/**
 * The nodes table: one row per node id on a database several isched nodes share (migrations 8 and
 * 9), written by src/server/cluster.ts. A node claims its row at start-up (refused while another
 * process that still lives holds the name: two processes of one name would take each other's leases
 * at start), beats its heart into it while it runs, and marks it stopped when it shuts down cleanly.
 * The operator reads the rows (last heartbeat, version) to see the cluster.
 */
import { StoreError } from "../errors.ts";
import { type Runner, rows, withNumbers } from "./_values.ts";

export interface NodeRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  startedAt: number;
  /** The last heartbeat (ms). */
  seenAt: number;
  /** Set by a clean stop; null while it runs, or after it died. */
  stoppedAt: number | null;
}

const COLUMNS = `id, host, pid, version, started_at AS "startedAt", seen_at AS "seenAt", stopped_at AS "stoppedAt"`;
const nodeRow = (r: Record<string, unknown>): NodeRow =>
  withNumbers<NodeRow>(r, ["pid", "startedAt", "seenAt", "stoppedAt"]);

/**
 * Takes the row of `node.id` for this process, in one transaction that locks it: `refuse` sees the
 * row as it was (undefined for a new node) and returns why this process may not take it, or
 * undefined; refused, nothing is written and a StoreError says why.
 */
export async function claimNode(
  sql: Runner,
  o: { node: Omit<NodeRow, "stoppedAt">; refuse: (previous: NodeRow | undefined) => string | undefined },
): Promise<void> {
  await sql.begin(async (tx) => {
    const [found] = await rows(tx, `SELECT ${COLUMNS} FROM nodes WHERE id = $1 FOR UPDATE`, [o.node.id]);
    const why = o.refuse(found ? nodeRow(found) : undefined);
    if (why !== undefined) throw new StoreError(why);
    const n = o.node;
    await rows(
      tx,
      `INSERT INTO nodes (id, host, pid, version, started_at, seen_at, stopped_at)
        VALUES ($1, $2, $3, $4, $5, $6, NULL)
      ON CONFLICT (id) DO UPDATE SET host = $2, pid = $3, version = $4, started_at = $5, seen_at = $6,
        stopped_at = NULL`,
      [n.id, n.host, n.pid, n.version, n.startedAt, n.seenAt],
    );
  });
}

/** The heartbeat; false when the row is no longer this process's (another took the name over). */
export async function beat(sql: Runner, o: { id: string; host: string; pid: number; seenAt: number }) {
  const r = await sql.unsafe(
    "UPDATE nodes SET seen_at = $4 WHERE id = $1 AND host = $2 AND pid = $3 AND stopped_at IS NULL",
    [o.id, o.host, o.pid, o.seenAt],
  );
  return (r.count as number) === 1;
}

/** A clean stop: the name is free at once for a process elsewhere. */
export async function markStopped(sql: Runner, o: { id: string; host: string; pid: number; atMs: number }) {
  await sql.unsafe("UPDATE nodes SET stopped_at = $4 WHERE id = $1 AND host = $2 AND pid = $3", [
    o.id,
    o.host,
    o.pid,
    o.atMs,
  ]);
}

/**
 * Every node that has run on this database, by name, with the deliveries it holds in flight now
 * (leases carry `NODE:PID`).
 */
export async function allNodes(sql: Runner): Promise<(NodeRow & { inFlight: number })[]> {
  const found = await rows(
    sql,
    `SELECT ${COLUMNS}, coalesce(held.n, 0)::int AS "inFlight" FROM nodes
      LEFT JOIN (SELECT split_part(lease_owner, ':', 1) AS node, count(*) AS n FROM deliveries
        WHERE state = 'in-flight' GROUP BY 1) held ON held.node = nodes.id
      ORDER BY id`,
  );
  return found.map((r) => ({ ...nodeRow(r), inFlight: r.inFlight as number }));
}

/** The channel a node announces queued work on, so that the others' dispatchers wake (cluster.ts). */
export const QUEUE_CHANNEL = "queue";

/** Tells every node listening that deliveries are due (`payload`: the announcing node's id). */
export async function announceWork(sql: Runner, payload: string): Promise<void> {
  await sql.unsafe("SELECT pg_notify($1, $2)", [QUEUE_CHANNEL, payload]);
}
