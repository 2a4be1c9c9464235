/**
 * The database schema as an ordered list of migrations. `PRAGMA user_version` records how many have
 * been applied; each is applied in its own IMMEDIATE transaction together with the version bump, so a
 * crash leaves the database at the previous version, never between two. A database written by a newer
 * isched is refused instead of being used with a schema this code does not understand; the setting
 * `schema.written-by` names the isched that last changed the schema, so the refusal can say which
 * version to run. (openDatabase backs the file up before it migrates: database.ts.)
 *
 * Never edit a migration that has shipped: add a new one.
 */
import type { Database } from "bun:sqlite";
import { VERSION } from "../../version.ts";
import { StoreError } from "../errors.ts";

export interface Migration {
  /** What the migration does, for error messages. */
  readonly name: string;
  readonly up: string | ((db: Database) => void);
}

/** `PRAGMA application_id` of an isched database ("isch"): tells it apart from other SQLite files. */
export const APPLICATION_ID = 0x69736368;

const SCHEMA_V1 = `
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  received_at INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('inbound','outbound')),
  intake TEXT NOT NULL,
  peer_address TEXT,
  peer_domain TEXT,
  remote_message_id TEXT,
  originator TEXT NOT NULL,
  method TEXT NOT NULL, component TEXT NOT NULL, uid TEXT, summary TEXT, organizer TEXT,
  content_type TEXT NOT NULL,
  body BLOB NOT NULL,
  body_hash TEXT,
  headers TEXT,
  dkim_result TEXT NOT NULL DEFAULT 'none' CHECK (dkim_result IN ('pass','fail','none','trusted')),
  dkim_domain TEXT, dkim_selector TEXT, dkim_reason TEXT,
  response_status INTEGER, response_body TEXT
);
CREATE INDEX messages_uid ON messages (uid) WHERE uid IS NOT NULL;
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_replay ON messages (peer_domain, remote_message_id) WHERE remote_message_id IS NOT NULL;
-- The console: per-peer traffic and the peer: filter (covering), without reading message rows.
CREATE INDEX messages_peer ON messages (peer_domain, received_at, dkim_result) WHERE peer_domain IS NOT NULL;

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY,
  message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  recipient TEXT NOT NULL, domain TEXT NOT NULL,
  route TEXT NOT NULL,
  target TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued','in-flight','delivered','failed','sent-imip','cancelled','broken')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  lease_owner TEXT, lease_expires_at INTEGER, lease_breaks INTEGER NOT NULL DEFAULT 0,
  request_status TEXT,
  last_error TEXT,
  fallback_at INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, final_at INTEGER,
  -- One delivery per recipient of a message; the index also serves "deliveries of a message".
  UNIQUE (message_id, recipient),
  -- A queued delivery without a due time is never leased, an in-flight one without a lease is never
  -- recovered: both would be lost silently.
  CHECK (state <> 'queued' OR next_attempt_at IS NOT NULL),
  CHECK (state <> 'in-flight' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
-- The queue's working set; both stay as small as the backlog. The second lets a worker that leases
-- only some routes skip a backlog of others.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_due_route ON deliveries (route, next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE state = 'in-flight';
-- Every other state, for counting and listing them without scanning the table. A query uses it only
-- if its WHERE contains this exact term (SQLite's partial index rule); a plain index on state would
-- tempt the planner away from deliveries_due.
CREATE INDEX deliveries_done ON deliveries (state) WHERE state NOT IN ('queued', 'in-flight');
CREATE INDEX deliveries_recipient ON deliveries (recipient COLLATE NOCASE, message_id);
-- The console: per-peer outcomes and the peer: filter (covering), and what changed for the live view.
CREATE INDEX deliveries_domain ON deliveries (domain, updated_at, route, state, message_id);
CREATE INDEX deliveries_updated ON deliveries (updated_at);
-- The console's status: filter for every state but the common 'delivered' (covering, and small).
CREATE INDEX deliveries_state ON deliveries (state, message_id) WHERE state <> 'delivered';

CREATE TABLE attempts (
  id INTEGER PRIMARY KEY,
  delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
  route TEXT NOT NULL, target TEXT,
  http_status INTEGER, request_status TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('delivered','pending','temporary','permanent','sent-imip','cancelled')),
  error TEXT, tls TEXT, response TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
-- The console: attempts by outcome over time, and the latest failures.
CREATE INDEX attempts_started ON attempts (started_at, outcome);
CREATE INDEX attempts_failed ON attempts (started_at) WHERE outcome IN ('temporary', 'permanent');

CREATE TABLE peer_policies (
  domain TEXT PRIMARY KEY,
  trust TEXT NOT NULL CHECK (trust IN ('dkim','unsigned','deny')),
  allow_from TEXT,
  note TEXT,
  updated_at INTEGER NOT NULL
);

CREATE TABLE dkim_keys (
  id INTEGER PRIMARY KEY,
  domain TEXT NOT NULL, selector TEXT NOT NULL,
  algorithm TEXT NOT NULL, bits INTEGER NOT NULL,
  private_key_pem TEXT NOT NULL, record TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending','active','retiring','retired')),
  created_at INTEGER NOT NULL, activated_at INTEGER, retire_after INTEGER,
  UNIQUE (domain, selector)
);

CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

PRAGMA application_id = ${APPLICATION_ID};
`;

/**
 * Replays are answered from replay_keys (store/replays.ts): a unique key per signed request, kept for
 * the signature's life. The message index the old replay lookup used goes.
 */
const REPLAY_KEYS = `
CREATE TABLE replay_keys (
  key TEXT PRIMARY KEY,
  message_id INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX replay_keys_expiry ON replay_keys (expires_at);
DROP INDEX messages_replay;
`;

/**
 * A refused request keeps its metadata only (store/refusals.ts): `refusal` says why (a message with
 * one is a refusal), `body_size` how large the body was; the body is not kept. It never has a
 * delivery, so no operator action can ever deliver it: a trigger refuses one. Refusals stored before
 * (a message answered with an error status, with failed deliveries) become the same: their bodies
 * and deliveries go.
 */
const REFUSALS = `
ALTER TABLE messages ADD COLUMN refusal TEXT;
ALTER TABLE messages ADD COLUMN body_size INTEGER;
CREATE INDEX messages_refused ON messages (id) WHERE refusal IS NOT NULL;
UPDATE messages SET
    refusal = coalesce(
      (SELECT d.last_error FROM deliveries d WHERE d.message_id = messages.id ORDER BY d.id LIMIT 1),
      'refused (HTTP ' || response_status || ')'),
    body_size = length(body),
    body = x''
  WHERE response_status >= 300;
DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE refusal IS NOT NULL);
CREATE TRIGGER deliveries_never_for_refused BEFORE INSERT ON deliveries
  WHEN (SELECT refusal FROM messages WHERE id = NEW.message_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'a refused request never gets a delivery'); END;
`;

/** The console's sessions outlive a restart (console/sessions.ts): only each cookie's SHA-256. */
const CONSOLE_SESSIONS = `
CREATE TABLE console_sessions (
  id_hash TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);
`;

/** What "test this domain" and real traffic learn about each peer (store/peer-facts.ts). */
const PEER_FACTS = `
CREATE TABLE peer_facts (
  domain TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('discovery','capabilities','key')),
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('test','traffic')),
  learned_at INTEGER NOT NULL,
  confirmed_at INTEGER NOT NULL,
  PRIMARY KEY (domain, kind, name)
) WITHOUT ROWID;
`;

/**
 * Signing domains that are not the Originator's domain (src/inbound/signer-alignment.ts): each
 * accepted message says which rule accepted its signer, and a console policy may name extra signers
 * for a peer's users (comma-separated domains).
 */
const SIGNER_ALIGNMENT = `
ALTER TABLE messages ADD COLUMN signer_rule TEXT;
ALTER TABLE peer_policies ADD COLUMN signers TEXT;
`;

/**
 * A peer's copy of an iTIP revision already accepted for a recipient is delivered once
 * (store/itip-keys.ts): one key per recipient's copy, claimed in the message's transaction; a
 * message counts the copies its peer sent again.
 */
const ITIP_KEYS = `
CREATE TABLE itip_keys (
  key TEXT PRIMARY KEY,
  message_id INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX itip_keys_expiry ON itip_keys (expires_at);
ALTER TABLE messages ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_resent_at INTEGER;
`;

/**
 * Several isched nodes on one PostgreSQL close their races in the database (docs/store-interface.md,
 * "Races and sharing"), and SQLite gets the same constraints so that one test suite holds for both:
 * a domain has one active key at most (two nodes starting at once must not both make one and sign
 * with different keys) and one pending key at most (two administrators generating at once). The
 * code already kept both rules, so a database breaks them only by hand or by a bug; the extra keys
 * take the state the console would give them, keeping the one that signs today (the oldest active:
 * own-keys.ts and live-keys.ts take the first by id) and the one the console names (the oldest
 * pending): another active key starts retiring now, another pending key is discarded (retired).
 * (PostgreSQL's form of this migration also adds what only several nodes need: the nodes and
 * smtp_retries tables, src/store/postgres/migrations.ts.)
 */
const SEVERAL_NODES = `
UPDATE dkim_keys SET state = 'retiring',
    retire_after = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
  WHERE state = 'active'
    AND id > (SELECT min(k.id) FROM dkim_keys k WHERE k.domain = dkim_keys.domain AND k.state = 'active');
UPDATE dkim_keys SET state = 'retired'
  WHERE state = 'pending'
    AND id > (SELECT min(k.id) FROM dkim_keys k WHERE k.domain = dkim_keys.domain AND k.state = 'pending');
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys (domain) WHERE state = 'pending';
`;

/**
 * A lean accepted-message write: every index costs each commit that touches it one more 4 KB WAL
 * frame (docs/perf-notes.md). deliveries_done served only the queue's count of deliveries per state,
 * which now counts as the console's does (the small deliveries_state index, delivered as the total
 * minus the rest), so a delivered delivery is written to one index fewer.
 */
const LEAN_ACCEPT = `
DROP INDEX deliveries_done;
`;

/**
 * The iTIP facts a sender checks against a receiver's capabilities (attachments, scheduled span,
 * whether the recurrence is bounded: src/outbound/message-facts.ts), kept at intake as JSON so that
 * each send does not parse the stored body again. NULL for messages stored before: those are parsed.
 */
const SEND_FACTS = `
ALTER TABLE messages ADD COLUMN send_facts TEXT;
`;

export const MIGRATIONS: readonly Migration[] = [
  { name: "initial schema", up: SCHEMA_V1 },
  { name: "replay keys", up: REPLAY_KEYS },
  { name: "refused requests keep metadata only", up: REFUSALS },
  { name: "console sessions", up: CONSOLE_SESSIONS },
  { name: "peer facts", up: PEER_FACTS },
  { name: "signer alignment", up: SIGNER_ALIGNMENT },
  { name: "iTIP keys", up: ITIP_KEYS },
  { name: "several nodes on one database", up: SEVERAL_NODES },
  // PostgreSQL's nodes table gains each node's version and clean stop (src/store/postgres/migrations.ts);
  // SQLite has no nodes table (one process owns the file), so the version only keeps step.
  { name: "node heartbeats", up: () => {} },
  { name: "lean accepted-message write", up: LEAN_ACCEPT },
  { name: "send facts kept at intake", up: SEND_FACTS },
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database): number {
  return db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
}

/**
 * Applies the migrations the database lacks. Returns the versions applied (empty when up to date).
 * Throws a StoreError for a database newer than `migrations` knows, and rethrows a migration's
 * error after rolling it back.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const known = migrations.length;
  const found = schemaVersion(db);
  if (found > known) throw newerSchema(db, found, known);
  const applied: number[] = [];
  for (let version = found + 1; version <= known; version++) {
    const migration = migrations[version - 1]!;
    const apply = db.transaction(() => {
      // Another connection may have migrated between our read and our write lock: read again.
      const current = schemaVersion(db);
      if (current >= version) return false;
      if (typeof migration.up === "string") db.run(migration.up);
      else migration.up(db);
      db.run(`PRAGMA user_version = ${version}`);
      return true;
    });
    try {
      if (apply.immediate()) applied.push(version);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new StoreError(`migration ${version} (${migration.name}) failed: ${reason}`, { cause: e });
    }
  }
  if (applied.length > 0 && hasSettings(db))
    db.run("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [WRITTEN_BY, VERSION]);
  return applied;
}

/** The setting naming the isched version that last changed the schema. */
export const WRITTEN_BY = "schema.written-by";

function hasSettings(db: Database): boolean {
  return (
    db.query<{ n: number }, []>("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'settings'").get()!.n >
    0
  );
}

/** The isched that last changed the schema, when the database says. */
export function writtenBy(db: Database): string | undefined {
  if (!hasSettings(db)) return undefined;
  return db.query<{ value: string }, [string]>("SELECT value FROM settings WHERE key = ?").get(WRITTEN_BY)
    ?.value;
}

/**
 * Why a database written by a newer isched is refused, and which isched to run instead: the part
 * of the refusal both backends share (SQLite adds what to restore).
 */
export function newerSchemaReason(o: {
  found: number;
  known: number;
  writtenBy: string | undefined;
}): string {
  // The same version naming itself would say nothing (a development build, or a hand-edited file).
  const by = o.writtenBy !== VERSION ? o.writtenBy : undefined;
  return (
    `it was written by ${by ? `isched ${by}` : "a newer isched"} (schema ${o.found}), and this isched ${VERSION} ` +
    `knows schema ${o.known} at most: run ${by ? `isched ${by}` : "the newer isched"} or later`
  );
}

/** The refusal of a database this isched cannot read: which isched to run instead, or what to restore. */
export function newerSchema(db: Database, found: number, known: number): StoreError {
  return new StoreError(
    `${newerSchemaReason({ found, known, writtenBy: writtenBy(db) })}, or restore the backup made before ` +
      "the upgrade (isched restore FILE)",
  );
}
