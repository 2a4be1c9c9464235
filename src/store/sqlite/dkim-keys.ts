/**
 * The dkim_keys table: isched's own signing keys per domain, with their life cycle
 * (pending: published, not yet signing; active: signing; retiring: still published; retired).
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export type KeyState = "pending" | "active" | "retiring" | "retired";

export interface DkimKeyRow {
  id: number;
  domain: string;
  selector: string;
  algorithm: string;
  bits: number;
  privateKeyPem: string;
  record: string;
  state: KeyState;
  createdAt: number;
  activatedAt: number | null;
  retireAfter: number | null;
}

const COLUMNS = `id, domain, selector, algorithm, bits, private_key_pem AS privateKeyPem, record, state,
  created_at AS createdAt, activated_at AS activatedAt, retire_after AS retireAfter`;

const statements = perDatabase((db) => ({
  ofDomain: db.query<DkimKeyRow, { domain: string }>(
    `SELECT ${COLUMNS} FROM dkim_keys WHERE domain = $domain ORDER BY id`,
  ),
  all: db.query<DkimKeyRow, Record<string, never>>(`SELECT ${COLUMNS} FROM dkim_keys ORDER BY domain, id`),
  insert: db.query<never, Record<string, string | number | null>>(`INSERT INTO dkim_keys
    (domain, selector, algorithm, bits, private_key_pem, record, state, created_at, activated_at)
    VALUES ($domain, $selector, $algorithm, $bits, $privateKeyPem, $record, $state, $createdAt, $activatedAt)`),
  setState: db.query<never, Record<string, string | number | null>>(
    "UPDATE dkim_keys SET state = $state, activated_at = coalesce($activatedAt, activated_at), retire_after = $retireAfter WHERE id = $id",
  ),
}));

export function keysOfDomain(db: Database, domain: string): DkimKeyRow[] {
  return statements(db).ofDomain.all({ domain });
}

export function allKeys(db: Database): DkimKeyRow[] {
  return statements(db).all.all({});
}

export function insertKey(db: Database, k: Omit<DkimKeyRow, "id" | "retireAfter">): void {
  statements(db).insert.run({ ...k });
}

export function setKeyState(
  db: Database,
  o: { id: number; state: KeyState; activatedAt?: number; retireAfter?: number },
): void {
  statements(db).setState.run({
    id: o.id,
    state: o.state,
    activatedAt: o.activatedAt ?? null,
    retireAfter: o.retireAfter ?? null,
  });
}
