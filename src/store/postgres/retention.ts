/**
 * Pruning old data on PostgreSQL: the steps of src/store/sqlite/retention.ts (refusals after 7 days,
 * messages after `--retain` with their deliveries and attempts, bodies after `--retain-bodies`,
 * expired replay and iTIP keys), each batch one short transaction on the pool, so that the pruner
 * (src/store/sqlite/pruner.ts, which runs them) keeps no lock long and the nodes' requests go on
 * between two batches. The same rules as on SQLite: a message with a delivery queued or in flight
 * keeps its row and its body, and the statement that deletes or empties checks that again.
 *
 * Several nodes share the database: a run is made by one node at a time (takePruningLock, a
 * session-level advisory lock on a connection reserved for the run, which PostgreSQL releases by
 * itself when a node dies), and the bodies step's cursor in the settings table is the cluster's.
 * No compaction step: PostgreSQL's autovacuum makes the space of deleted rows reusable.
 */
import type { SQL } from "bun";
import type { RetentionPolicy } from "../retention-policy.ts";
import { METADATA_BYTES } from "../sqlite/refusals.ts";
import {
  BODIES_CURSOR,
  type BodiesCursor,
  type PruneStep,
  parseBodiesCursor,
  passMessages,
  type Row,
  type StepBatch,
} from "../sqlite/retention.ts";
import { changes, idArray, type Runner, rows } from "./_values.ts";
import { pruneKeys } from "./key-claims.ts";
import { getSetting, setSetting } from "./settings.ts";

/** The advisory lock of a pruning run ("prun"). */
const PRUNING_LOCK = 0x7072756e;

/** A delivery of message m still waits for an attempt, or is in one. */
const ACTIVE = `EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('queued', 'in-flight'))`;

const sum = (list: readonly Record<string, unknown>[]) => list.reduce((n, r) => n + Number(r.bytes), 0);

/** Refused requests received before `beforeMs`. */
function refusalPruning(sql: Runner, o: { beforeMs: number }): PruneStep {
  return {
    name: "refusals",
    async batch(limit): Promise<StepBatch> {
      // Rows another node deletes at this moment (its refusal log's own pruning) are skipped.
      const gone = await rows(
        sql,
        `WITH old AS (SELECT id FROM messages WHERE refusal IS NOT NULL AND received_at < $1
            ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
          DELETE FROM messages USING old WHERE messages.id = old.id AND messages.refusal IS NOT NULL
          RETURNING ${METADATA_BYTES} AS bytes`,
        [o.beforeMs, limit],
      );
      return { rows: gone.length, bytes: sum(gone), done: gone.length < limit };
    },
  };
}

/** The messages after the cursor (at, id) received before `beforeMs`, in that order, with whether each is held. */
async function messagesAfter(
  q: Runner,
  o: { at: number; id: number; beforeMs: number; limit: number },
): Promise<Row[]> {
  const found = await rows(
    q,
    `SELECT m.id, m.received_at AS at, (CASE WHEN ${ACTIVE} THEN 1 ELSE 0 END) AS held FROM messages m
      WHERE m.received_at < $1 AND (m.received_at, m.id) > ($2::bigint, $3::bigint)
      ORDER BY m.received_at, m.id LIMIT $4`,
    [o.beforeMs, o.at, o.id, o.limit],
  );
  return found.map((r) => ({ id: Number(r.id), at: Number(r.at), held: Number(r.held) }));
}

/** Messages received before `beforeMs`, with their deliveries and attempts; never one being delivered. */
function messagePruning(sql: Runner, o: { beforeMs: number }): PruneStep {
  // A cursor for this run only: what it passes is being delivered, and is looked at again next run.
  let at = Number.MIN_SAFE_INTEGER;
  let id = 0;
  return {
    name: "messages",
    batch: (limit) =>
      sql.begin(async (tx): Promise<StepBatch> => {
        const found = await messagesAfter(tx, { at, id, beforeMs: o.beforeMs, limit });
        const last = found.at(-1);
        if (last) ({ at, id } = last);
        const gone = found.filter((r) => r.held === 0).map((r) => r.id);
        if (gone.length === 0) return { rows: 0, bytes: 0, done: found.length < limit };
        const [counted] = await rows(
          tx,
          `WITH gone AS (DELETE FROM messages m WHERE m.id = ANY($1::bigint[]) AND NOT ${ACTIVE} RETURNING m.id)
            SELECT (SELECT count(*) FROM gone)::int AS messages,
              (SELECT count(*) FROM deliveries WHERE message_id IN (SELECT id FROM gone))::int AS deliveries`,
          [idArray(gone)],
        );
        return {
          rows: Number(counted!.messages),
          bytes: 0,
          deliveries: Number(counted!.deliveries),
          done: found.length < limit,
        };
      }),
  };
}

/** Empties the bodies of `ids` that are accepted, not yet emptied and not being delivered. */
async function emptyBodies(q: Runner, ids: readonly number[]): Promise<{ rows: number; bytes: number }> {
  if (ids.length === 0) return { rows: 0, bytes: 0 };
  // SET reads the row as it was: body_size becomes the old body's length.
  const emptied = await rows(
    q,
    `UPDATE messages AS m SET body_size = octet_length(m.body), body = '\\x'::bytea
      WHERE m.id = ANY($1::bigint[]) AND m.refusal IS NULL AND m.body_size IS NULL AND NOT ${ACTIVE}
      RETURNING m.body_size AS bytes`,
    [idArray(ids)],
  );
  return { rows: emptied.length, bytes: sum(emptied) };
}

/**
 * Empties the bodies of messages received before `beforeMs`, never one being delivered; the cursor
 * (and the messages it passed while they were being delivered) is kept in the settings table, as on
 * SQLite.
 */
function bodyPruning(sql: Runner, o: { beforeMs: number }): PruneStep {
  let heldChecked = 0;
  return {
    name: "bodies",
    batch: (limit) =>
      sql.begin(async (tx): Promise<StepBatch> => {
        const cursor: BodiesCursor = parseBodiesCursor(await getSetting(tx, BODIES_CURSOR));
        if (heldChecked < cursor.held.length) {
          const look = cursor.held.slice(heldChecked, heldChecked + limit);
          const states = await rows(
            tx,
            `SELECT m.id, (m.refusal IS NULL AND m.body_size IS NULL) AS kept, ${ACTIVE} AS held
              FROM messages m WHERE m.id = ANY($1::bigint[])`,
            [idArray(look)],
          );
          const byId = new Map(states.map((r) => [Number(r.id), r]));
          const stillHeld = look.filter((id) => byId.get(id)?.held === true && byId.get(id)?.kept === true);
          const done = await emptyBodies(
            tx,
            look.filter((id) => byId.get(id)?.held === false),
          );
          cursor.held.splice(heldChecked, look.length, ...stillHeld);
          heldChecked += stillHeld.length;
          await setSetting(tx, BODIES_CURSOR, JSON.stringify(cursor));
          return { ...done, done: false };
        }
        const found = await messagesAfter(tx, { at: cursor.at, id: cursor.id, beforeMs: o.beforeMs, limit });
        const passed = passMessages(cursor, found);
        heldChecked += passed.filter((r) => r.held === 1).length;
        const done = await emptyBodies(
          tx,
          passed.filter((r) => r.held === 0).map((r) => r.id),
        );
        if (passed.length > 0) await setSetting(tx, BODIES_CURSOR, JSON.stringify(cursor));
        return { ...done, done: passed.length < limit };
      }),
  };
}

/** Replay or iTIP keys whose window has passed. */
function keyPruning(sql: Runner, o: { table: "replay_keys" | "itip_keys"; nowMs: number }): PruneStep {
  return {
    name: o.table === "replay_keys" ? "replay-keys" : "itip-keys",
    async batch(limit) {
      const n = await pruneKeys(sql, o.table, o.nowMs, limit);
      return { rows: n, bytes: 0, done: n < limit };
    },
  };
}

/** The steps of one run, in order, for `policy` at `nowMs` (as retentionSteps on SQLite, without compaction). */
export function postgresRetentionSteps(
  sql: Runner,
  o: { policy: RetentionPolicy; nowMs: number },
): PruneStep[] {
  const { policy, nowMs } = o;
  return [
    refusalPruning(sql, { beforeMs: nowMs - policy.refusalsMs }),
    ...(policy.messagesMs === undefined
      ? []
      : [messagePruning(sql, { beforeMs: nowMs - policy.messagesMs })]),
    ...(policy.bodiesMs === undefined ? [] : [bodyPruning(sql, { beforeMs: nowMs - policy.bodiesMs })]),
    keyPruning(sql, { table: "replay_keys", nowMs }),
    keyPruning(sql, { table: "itip_keys", nowMs }),
  ];
}

/**
 * The right to make a pruning run, for this node alone: a session-level advisory lock on a
 * connection reserved until `release`; undefined when another node holds it (it is pruning now).
 */
export async function takePruningLock(sql: SQL): Promise<{ release(): Promise<void> } | undefined> {
  const conn = await sql.reserve();
  try {
    const [r] = await rows(conn, "SELECT pg_try_advisory_lock($1) AS got", [PRUNING_LOCK]);
    if (r?.got !== true) {
      await conn.release();
      return undefined;
    }
  } catch (e) {
    await conn.release();
    throw e;
  }
  return {
    async release() {
      try {
        await changes(conn, "SELECT pg_advisory_unlock($1)", [PRUNING_LOCK]);
      } finally {
        await conn.release();
      }
    },
  };
}
