/**
 * Refused requests in the message log: a messages row with `refusal` set and no body, never a
 * delivery (a trigger refuses one). What it keeps is bounded: the header fields up to a cap, the
 * body's size and SHA-256, the reason and the answer, the peer's address. So a flood of refused
 * requests costs no more disk than its metadata, and the log of them is pruned oldest first past a
 * number of rows and a number of bytes (src/inbound/refusal-log.ts writes it).
 */
import type { Database } from "bun:sqlite";
import { DEFAULT_REFUSAL_LIMITS, type RefusalLimits } from "../refusal-limits.ts";
import { perDatabase } from "./_per-database.ts";
import { type HeaderList, insertMessage, type NewMessage } from "./messages.ts";

export { DEFAULT_REFUSAL_LIMITS, type RefusalLimits };

/** Header bytes kept of one refused request, and of one field value. */
export const MAX_HEADER_BYTES = 8 * 1024;
export const MAX_VALUE_BYTES = 2 * 1024;
/** Longer one-line values (a message id, an originator) are cut there. */
const MAX_LINE = 512;

export type NewRefusal = Omit<NewMessage, "body" | "refusal" | "replay" | "bodySize"> & {
  refusal: string;
  /** Bytes of the body as received (or declared, when it was not read). */
  bodySize?: number;
};

const EMPTY = new Uint8Array(0);

/** What a row's metadata weighs, in SQL over `messages` (the pruning's byte count). */
export const METADATA_BYTES = `(200 + length(originator) + length(content_type) + length(coalesce(remote_message_id, ''))
  + length(coalesce(headers, '')) + length(coalesce(dkim_reason, '')) + length(refusal)
  + length(coalesce(response_body, '')))`;

const statements = perDatabase((db) => ({
  totals: db.query<{ count: number; bytes: number | null }, []>(
    `SELECT count(*) AS count, sum(${METADATA_BYTES}) AS bytes FROM messages INDEXED BY messages_refused
      WHERE refusal IS NOT NULL`,
  ),
  oldest: db.query<{ id: number; bytes: number }, { limit: number }>(
    `SELECT id, ${METADATA_BYTES} AS bytes FROM messages INDEXED BY messages_refused
      WHERE refusal IS NOT NULL ORDER BY id LIMIT $limit`,
  ),
  bytesOf: db.query<{ bytes: number | null }, { ids: string }>(
    `SELECT sum(${METADATA_BYTES}) AS bytes FROM messages WHERE id IN (SELECT value FROM json_each($ids))`,
  ),
  remove: db.query<never, { ids: string }>(
    "DELETE FROM messages WHERE refusal IS NOT NULL AND id IN (SELECT value FROM json_each($ids))",
  ),
}));

const cut = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;

/** The header fields of a refused request, as many as fit in MAX_HEADER_BYTES, values cut. */
export function cappedHeaders(headers: HeaderList): HeaderList {
  const kept: [string, string][] = [];
  let bytes = 0;
  for (const [i, [name, value]] of headers.entries()) {
    const field: [string, string] = [cut(name, 128), cut(value, MAX_VALUE_BYTES)];
    bytes += field[0].length + field[1].length + 4;
    if (bytes > MAX_HEADER_BYTES) {
      kept.push(["…", `${headers.length - i} more header fields not kept`]);
      break;
    }
    kept.push(field);
  }
  return kept;
}

export type RefusalRow = NewRefusal & { uuid: string; receivedAt: number };

/** A refusal as the messages row that records it: no body, its long fields cut (both backends). */
export function refusalMessage(r: RefusalRow): NewMessage & { uuid: string; receivedAt: number } {
  return {
    ...r,
    body: EMPTY,
    originator: cut(r.originator, MAX_LINE),
    remoteMessageId: r.remoteMessageId === undefined ? undefined : cut(r.remoteMessageId, MAX_LINE),
    contentType: cut(r.contentType, MAX_LINE),
    headers: r.headers ? cappedHeaders(r.headers) : undefined,
  };
}

/**
 * Stores refusals in one transaction and, in the same one, prunes the oldest when the log is past
 * its limits (down to nine tenths of them, so that not every batch prunes). `totals` is what the
 * log held before; returns what it holds after.
 */
export function insertRefusals(
  db: Database,
  o: { rows: readonly RefusalRow[]; totals: RefusalTotals; limits: RefusalLimits },
): RefusalTotals {
  return db
    .transaction((): RefusalTotals => {
      const ids = o.rows.map((r) => insertMessage(db, refusalMessage(r)));
      const added = statements(db).bytesOf.get({ ids: JSON.stringify(ids) })?.bytes ?? 0;
      const totals = { count: o.totals.count + ids.length, bytes: o.totals.bytes + added };
      const { maxCount, maxBytes } = o.limits;
      if (totals.count <= maxCount && totals.bytes <= maxBytes) return totals;
      return pruneRefusals(db, {
        totals,
        count: Math.floor(maxCount * 0.9),
        bytes: Math.floor(maxBytes * 0.9),
      });
    })
    .immediate();
}

export interface RefusalTotals {
  count: number;
  bytes: number;
}

/** How many refusals are kept, and their metadata bytes. */
export function refusalTotals(db: Database): RefusalTotals {
  const t = statements(db).totals.get()!;
  return { count: t.count, bytes: t.bytes ?? 0 };
}

/**
 * Deletes the oldest refusals until at most `count` rows and `bytes` bytes are left of `totals`.
 * Returns what is left.
 */
export function pruneRefusals(
  db: Database,
  o: { totals: RefusalTotals; count: number; bytes: number },
): RefusalTotals {
  let { count, bytes } = o.totals;
  const s = statements(db);
  while (count > o.count || bytes > o.bytes) {
    const batch = s.oldest.all({ limit: Math.max(16, count - o.count) });
    if (batch.length === 0) return { count: 0, bytes: 0 };
    const ids: number[] = [];
    for (const row of batch) {
      if (count <= o.count && bytes <= o.bytes) break;
      ids.push(row.id);
      count--;
      bytes -= row.bytes;
    }
    s.remove.run({ ids: JSON.stringify(ids) });
  }
  return { count, bytes };
}
