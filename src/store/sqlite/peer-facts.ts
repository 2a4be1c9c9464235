/**
 * What isched has learned about each peer, kept between runs for the console's peer page: how its
 * iSchedule server was found (SRV targets, or a static route), its capabilities document, and each
 * DKIM selector's key (how it was fetched, its type and size). One row per (domain, kind, name),
 * with who learned it ("test this domain" or real traffic), when it was first seen with this value
 * and when it was last confirmed.
 */
import type { Database } from "bun:sqlite";
import { perDatabase } from "./_per-database.ts";

export type PeerFactKind = "discovery" | "capabilities" | "key";
export type PeerFactSource = "test" | "traffic";

export interface PeerFactRow {
  domain: string;
  kind: PeerFactKind;
  /** The selector for a key; "" otherwise. */
  name: string;
  /** JSON, shaped by the kind (src/console/peer-facts.ts). */
  value: string;
  source: PeerFactSource;
  learnedAt: number;
  confirmedAt: number;
}

const COLUMNS = `domain, kind, name, value, source, learned_at AS learnedAt, confirmed_at AS confirmedAt`;

const statements = perDatabase((db) => ({
  upsert: db.query<never, Record<string, string | number>>(
    `INSERT INTO peer_facts (domain, kind, name, value, source, learned_at, confirmed_at)
      VALUES ($domain, $kind, $name, $value, $source, $at, $at)
    ON CONFLICT (domain, kind, name) DO UPDATE SET
      learned_at = CASE WHEN value = excluded.value THEN learned_at ELSE excluded.learned_at END,
      value = excluded.value, source = excluded.source, confirmed_at = excluded.confirmed_at`,
  ),
  ofDomain: db.query<PeerFactRow, { domain: string }>(
    `SELECT ${COLUMNS} FROM peer_facts WHERE domain = $domain ORDER BY kind, name`,
  ),
}));

/** Records a fact: a new value starts its age afresh, the same value only counts as confirmed. */
export function recordPeerFact(
  db: Database,
  f: {
    domain: string;
    kind: PeerFactKind;
    name: string;
    value: string;
    source: PeerFactSource;
    atMs: number;
  },
): void {
  statements(db).upsert.run({
    domain: f.domain,
    kind: f.kind,
    name: f.name,
    value: f.value,
    source: f.source,
    at: f.atMs,
  });
}

export function peerFactsOf(db: Database, domain: string): PeerFactRow[] {
  return statements(db).ofDomain.all({ domain });
}
