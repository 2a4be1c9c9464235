/**
 * Pruning old data, in batches: each call of a step's `batch(limit)` is one short transaction over
 * at most `limit` rows, so the pruner (pruner.ts) can yield to requests between two and keep each
 * one from waiting long. What goes, and when (retention-policy.ts):
 *
 * - refusals: a refused request's record after 7 days (oldest first, by the messages_refused index);
 * - messages: a message older than `--retain`, with its deliveries and attempts (ON DELETE CASCADE),
 *   never one with a delivery still queued or in flight;
 * - bodies: a message's body older than `--retain-bodies` becomes empty and `body_size` keeps how
 *   large it was, as a refusal's does (migration 3), so every reader that shows a body's size
 *   (`coalesce(body_size, length(body))`) still does; a message being delivered keeps its body;
 * - keys: replay and iTIP keys whose window has passed (their claims prune 16 at a time, which a
 *   quiet server never makes);
 * - compaction: with `auto_vacuum = INCREMENTAL` (compaction.ts), free pages beyond a reserve go
 *   back to the file system (`PRAGMA incremental_vacuum`); without it, SQLite reuses them for new
 *   rows, so the file stops growing but does not shrink.
 *
 * Messages are never deleted while a key that answers for them is in force: `--retain` is at least
 * a week (MIN_RETAIN_MS) and a key lives a day at most, so every key of a message that old has
 * expired (a claim takes an expired key over, and nothing reads one).
 *
 * The bodies step keeps a cursor in the settings table, so that each run starts where the last one
 * stopped instead of reading again every message whose body is gone. A message it passes while one
 * of its deliveries is queued or in flight is remembered (up to MAX_HELD of them) and looked at
 * again at the next run; past that many, the cursor waits at the first one it cannot remember.
 */
import type { Database } from "bun:sqlite";
import { keyClaims } from "./_key-claims.ts";
import { perDatabase } from "./_per-database.ts";
import { METADATA_BYTES } from "./refusals.ts";
import { getSetting, setSetting } from "./settings.ts";

export type PruneStepName = "refusals" | "messages" | "bodies" | "replay-keys" | "itip-keys" | "compaction";

export interface StepBatch {
  /** Rows (for compaction: pages) removed or emptied. */
  readonly rows: number;
  /** Bytes of bodies emptied, refusal metadata deleted, or pages returned to the file system. */
  readonly bytes: number;
  /** Nothing left to do in this run. */
  readonly done: boolean;
  /** Deliveries deleted with their messages (ON DELETE CASCADE, with their attempts). */
  readonly deliveries?: number;
  /**
   * How long the batch's own statements took, when the batch also waited for its turn (pruner.ts's
   * batches in the group commit): what requests waited for it. Unset: the time the call took.
   */
  readonly busyMs?: number;
}

/** One kind of pruning in one run: call `batch` until it says done (PostgreSQL's answer later). */
export interface PruneStep {
  readonly name: PruneStepName;
  batch(limit: number): StepBatch | Promise<StepBatch>;
}

/** SQLite's steps answer at once (bun:sqlite is synchronous). */
export interface SqlitePruneStep extends PruneStep {
  batch(limit: number): StepBatch;
}

/** Messages remembered by the bodies step while they are being delivered. */
export const MAX_HELD = 1000;
/** Free pages kept for new rows rather than given back (4 MB of 4 KB pages). */
export const DEFAULT_RESERVE_PAGES = 1024;
/** The setting that holds the bodies step's cursor and held messages. */
export const BODIES_CURSOR = "retention.bodies";

/** A delivery of message m still waits for an attempt, or is in one. */
const ACTIVE = `EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('queued', 'in-flight'))`;
const IDS = "(SELECT value FROM json_each($ids))";

/** A message a step passes: `held` 1 while one of its deliveries is queued or in flight. */
export type Row = { id: number; at: number; held: number };

const statements = perDatabase((db) => ({
  oldRefusals: db.query<{ id: number; at: number; bytes: number }, { limit: number }>(
    `SELECT id, received_at AS at, ${METADATA_BYTES} AS bytes FROM messages INDEXED BY messages_refused
      WHERE refusal IS NOT NULL ORDER BY id LIMIT $limit`,
  ),
  deleteRefusals: db.query<never, { ids: string }>(
    `DELETE FROM messages WHERE refusal IS NOT NULL AND id IN ${IDS}`,
  ),
  // In (received_at, id) order from a cursor, so that messages kept back are passed, not read again.
  oldMessages: db.query<Row, { at: number; id: number; before: number; limit: number }>(
    `SELECT m.id, m.received_at AS at, ${ACTIVE} AS held FROM messages m INDEXED BY messages_received_at
      WHERE m.received_at >= $at AND m.received_at < $before AND (m.received_at > $at OR m.id > $id)
      ORDER BY m.received_at, m.id LIMIT $limit`,
  ),
  deliveriesOf: db.query<{ n: number }, { ids: string }>(
    `SELECT count(*) AS n FROM deliveries WHERE message_id IN ${IDS}`,
  ),
  // The statement checks again what the batch decided: a message being delivered is never deleted.
  deleteMessages: db.query<never, { ids: string }>(
    `DELETE FROM messages AS m WHERE m.id IN ${IDS} AND NOT ${ACTIVE}`,
  ),
  bodyState: db.query<{ id: number; kept: number; held: number }, { ids: string }>(
    `SELECT m.id, (m.refusal IS NULL AND m.body_size IS NULL) AS kept, ${ACTIVE} AS held FROM messages m
      WHERE m.id IN ${IDS}`,
  ),
  // Only accepted messages whose body is still there (body_size is set once it is not), and the
  // same check of deliveries as above. The right-hand sides read the row as it was.
  emptyBodies: db.query<{ bytes: number }, { ids: string }>(
    `UPDATE messages AS m SET body_size = length(m.body), body = x''
      WHERE m.id IN ${IDS} AND m.refusal IS NULL AND m.body_size IS NULL AND NOT ${ACTIVE}
      RETURNING body_size AS bytes`,
  ),
  pragma: (name: "auto_vacuum" | "freelist_count" | "page_size" | "page_count") =>
    (db.query(`PRAGMA ${name}`).get() as Record<string, number>)[name]!,
}));

const ids = (list: readonly number[]): string => JSON.stringify(list);

/** Refused requests received before `beforeMs`, oldest first. */
export function refusalPruning(db: Database, o: { beforeMs: number }): SqlitePruneStep {
  const s = statements(db);
  return {
    name: "refusals",
    batch: (limit) =>
      db
        .transaction((): StepBatch => {
          const rows = s.oldRefusals.all({ limit });
          // Ids follow the order refusals were written in, which is their time to within the log's
          // batching window: the first young one ends the run.
          const old = rows.filter((r) => r.at < o.beforeMs);
          const young = old.length < rows.length;
          if (old.length > 0) s.deleteRefusals.run({ ids: ids(old.map((r) => r.id)) });
          return {
            rows: old.length,
            bytes: old.reduce((sum, r) => sum + r.bytes, 0),
            done: young || rows.length < limit,
          };
        })
        .immediate(),
  };
}

/** Messages received before `beforeMs`, with their deliveries and attempts; never one being delivered. */
export function messagePruning(db: Database, o: { beforeMs: number }): SqlitePruneStep {
  const s = statements(db);
  // A cursor for this run only: what it passes is being delivered, and is looked at again next run.
  let at = Number.MIN_SAFE_INTEGER;
  let id = 0;
  return {
    name: "messages",
    batch: (limit) =>
      db
        .transaction((): StepBatch => {
          const rows = s.oldMessages.all({ at, id, before: o.beforeMs, limit });
          const last = rows.at(-1);
          if (last) ({ at, id } = last);
          const gone = rows.filter((r) => r.held === 0).map((r) => r.id);
          if (gone.length === 0) return { rows: 0, bytes: 0, done: rows.length < limit };
          const deliveries = s.deliveriesOf.get({ ids: ids(gone) })!.n;
          s.deleteMessages.run({ ids: ids(gone) });
          return { rows: gone.length, bytes: 0, deliveries, done: rows.length < limit };
        })
        .immediate(),
  };
}

export interface BodiesCursor {
  /** The last message passed, in (received_at, id) order. */
  at: number;
  id: number;
  /** Messages passed while being delivered, to look at again. */
  held: number[];
}

function readCursor(db: Database): BodiesCursor {
  return parseBodiesCursor(getSetting(db, BODIES_CURSOR));
}

/** The bodies step's cursor as the settings table keeps it (JSON), or the start. */
export function parseBodiesCursor(raw: string | undefined): BodiesCursor {
  if (raw === undefined) return { at: Number.MIN_SAFE_INTEGER, id: 0, held: [] };
  const v = JSON.parse(raw) as Partial<BodiesCursor>;
  return {
    at: typeof v.at === "number" ? v.at : Number.MIN_SAFE_INTEGER,
    id: typeof v.id === "number" ? v.id : 0,
    held: Array.isArray(v.held) ? v.held.filter((x): x is number => typeof x === "number") : [],
  };
}

/**
 * Moves `cursor` past `rows` (in (received_at, id) order), remembering those being delivered
 * (`held` 1); stops before one it cannot remember (MAX_HELD). Returns the rows passed.
 */
export function passMessages<R extends Row>(cursor: BodiesCursor, rows: readonly R[]): R[] {
  const passed: R[] = [];
  for (const r of rows) {
    if (r.held === 1) {
      // Too many to remember: wait here, and look again next run.
      if (cursor.held.length >= MAX_HELD) break;
      cursor.held.push(r.id);
    }
    passed.push(r);
  }
  const last = passed.at(-1);
  if (last) {
    cursor.at = last.at;
    cursor.id = last.id;
  }
  return passed;
}

/** Empties the bodies of messages received before `beforeMs`; never one being delivered. */
export function bodyPruning(db: Database, o: { beforeMs: number }): SqlitePruneStep {
  const s = statements(db);
  // First the messages held back last time (each looked at once per run), then onwards from the cursor.
  let heldChecked = 0;
  const empty = (list: readonly number[]): { rows: number; bytes: number } => {
    if (list.length === 0) return { rows: 0, bytes: 0 };
    const emptied = s.emptyBodies.all({ ids: ids(list) });
    return { rows: emptied.length, bytes: emptied.reduce((sum, r) => sum + r.bytes, 0) };
  };
  return {
    name: "bodies",
    batch: (limit) =>
      db
        .transaction((): StepBatch => {
          const cursor = readCursor(db);
          if (heldChecked < cursor.held.length) {
            const look = cursor.held.slice(heldChecked, heldChecked + limit);
            const states = new Map(s.bodyState.all({ ids: ids(look) }).map((r) => [r.id, r]));
            const stillHeld = look.filter((id) => states.get(id)?.held === 1 && states.get(id)?.kept === 1);
            const done = empty(look.filter((id) => states.get(id)?.held === 0));
            cursor.held.splice(heldChecked, look.length, ...stillHeld);
            heldChecked += stillHeld.length;
            setSetting(db, BODIES_CURSOR, JSON.stringify(cursor));
            return { ...done, done: false };
          }
          const rows = s.oldMessages.all({ at: cursor.at, id: cursor.id, before: o.beforeMs, limit });
          const passed = passMessages(cursor, rows);
          heldChecked += passed.filter((r) => r.held === 1).length;
          const done = empty(passed.filter((r) => r.held === 0).map((r) => r.id));
          if (passed.length > 0) setSetting(db, BODIES_CURSOR, JSON.stringify(cursor));
          return { ...done, done: passed.length < limit };
        })
        .immediate(),
  };
}

/** Replay or iTIP keys whose window has passed. */
export function keyPruning(
  db: Database,
  o: { table: "replay_keys" | "itip_keys"; nowMs: number },
): SqlitePruneStep {
  const keys = keyClaims(o.table);
  return {
    name: o.table === "replay_keys" ? "replay-keys" : "itip-keys",
    batch: (limit) => {
      const rows = keys.prune(db, o.nowMs, limit);
      return { rows, bytes: 0, done: rows < limit };
    },
  };
}

/** How the database gives free pages back, and how many it holds. */
export interface SpaceFacts {
  /** `PRAGMA auto_vacuum`: only `incremental` gives pages back while isched runs. */
  readonly autoVacuum: "none" | "full" | "incremental";
  readonly pageBytes: number;
  readonly pages: number;
  readonly freePages: number;
}

export function spaceFacts(db: Database): SpaceFacts {
  const s = statements(db);
  const mode = s.pragma("auto_vacuum");
  return {
    autoVacuum: mode === 2 ? "incremental" : mode === 1 ? "full" : "none",
    pageBytes: s.pragma("page_size"),
    pages: s.pragma("page_count"),
    freePages: s.pragma("freelist_count"),
  };
}

/**
 * Gives free pages beyond `reservePages` back to the file system, `limit` pages per batch (each
 * `PRAGMA incremental_vacuum(N)` is one transaction that moves pages from the end of the file into
 * free slots and cuts the file). Does nothing on a database without incremental auto-vacuum.
 */
export function compaction(db: Database, o: { reservePages?: number } = {}): SqlitePruneStep {
  const reserve = o.reservePages ?? DEFAULT_RESERVE_PAGES;
  return {
    name: "compaction",
    batch: (limit) => {
      const facts = spaceFacts(db);
      const excess = facts.freePages - reserve;
      if (facts.autoVacuum !== "incremental" || excess <= 0) return { rows: 0, bytes: 0, done: true };
      const pages = Math.min(limit, excess);
      // A pragma that returns no rows; run() steps it to the end, which is what frees the pages.
      db.run(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
      const freed = facts.freePages - spaceFacts(db).freePages;
      return { rows: freed, bytes: freed * facts.pageBytes, done: freed === 0 || excess <= limit };
    },
  };
}
