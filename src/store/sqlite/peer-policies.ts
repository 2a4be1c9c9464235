/**
 * The peer_policies table: trust policies an administrator set in the console, one per remote
 * domain (or `*`). They take precedence over the `--trust` flags, and the running server reads them
 * on every request (src/console/peer-trust.ts), so a change applies to the next message.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export type PolicyTrust = "dkim" | "unsigned" | "deny";

export interface PeerPolicyRow {
  domain: string;
  trust: PolicyTrust;
  /** Comma-separated CIDRs unsigned requests are accepted from (trust 'unsigned'). */
  allowFrom: string | null;
  /** Comma-separated signing domains also accepted for this domain's users (config.ts SignerList). */
  signers: string | null;
  note: string | null;
  updatedAt: number;
}

const COLUMNS = "domain, trust, allow_from AS allowFrom, signers, note, updated_at AS updatedAt";

const statements = perDatabase((db) => ({
  get: db.query<PeerPolicyRow, { domain: string }>(
    `SELECT ${COLUMNS} FROM peer_policies WHERE domain = $domain`,
  ),
  all: db.query<PeerPolicyRow, []>(`SELECT ${COLUMNS} FROM peer_policies ORDER BY domain`),
  upsert: db.query<never, Record<string, string | number | null>>(`INSERT INTO peer_policies
      (domain, trust, allow_from, signers, note, updated_at)
      VALUES ($domain, $trust, $allowFrom, $signers, $note, $updatedAt)
    ON CONFLICT (domain) DO UPDATE SET trust = excluded.trust, allow_from = excluded.allow_from,
      signers = excluded.signers, note = excluded.note, updated_at = excluded.updated_at`),
  remove: db.query<never, { domain: string }>("DELETE FROM peer_policies WHERE domain = $domain"),
}));

export function getPeerPolicy(db: Database, domain: string): PeerPolicyRow | undefined {
  return statements(db).get.get({ domain }) ?? undefined;
}

export function allPeerPolicies(db: Database): PeerPolicyRow[] {
  return statements(db).all.all();
}

export function setPeerPolicy(db: Database, p: PeerPolicyRow): void {
  statements(db).upsert.run({ ...p });
}

/** True when there was a policy to remove. */
export function removePeerPolicy(db: Database, domain: string): boolean {
  return statements(db).remove.run({ domain }).changes === 1;
}
