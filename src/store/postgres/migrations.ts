/**
 * The PostgreSQL form of every migration in src/store/migrations.ts: the same list, the same version
 * numbers and names, each migration's DDL (and data changes) translated, so that a database at
 * version N has the same tables, columns, keys, indexes and triggers on both backends
 * (test/postgres/schema-parity.test.ts compares them at every version). migrate.ts applies them.
 *
 * The translation (docs/store-interface.md, "SQL that needs another form on PostgreSQL"):
 * - `INTEGER PRIMARY KEY` becomes `bigint GENERATED ALWAYS AS IDENTITY` (ids stay below 2^53);
 *   millisecond times are `bigint`; counters, sizes of a request's parts and statuses `integer`.
 * - `BLOB` is `bytea`; `x''` is `'\x'::bytea`.
 * - `COLLATE NOCASE` in an index becomes an expression index on `lower(column)`, which queries use
 *   as `lower(column) = lower($1)`.
 * - `WITHOUT ROWID` has no counterpart (every PostgreSQL table is a heap) and is dropped.
 * - The trigger's `RAISE(ABORT, ...)` body becomes a PL/pgSQL function raising an integrity
 *   constraint violation (SQLSTATE 23000) with SQLite's message.
 *
 * Never edit a migration that has shipped: add a new one here and in src/store/migrations.ts.
 */

export interface PostgresMigration {
  /** The same name as the SQLite migration of the same version. */
  readonly name: string;
  /** One or more statements, run in the migration's transaction. */
  readonly up: string;
}

const SCHEMA_V1 = `
CREATE TABLE messages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uuid text NOT NULL UNIQUE,
  received_at bigint NOT NULL,
  direction text NOT NULL CHECK (direction IN ('inbound','outbound')),
  intake text NOT NULL,
  peer_address text,
  peer_domain text,
  remote_message_id text,
  originator text NOT NULL,
  method text NOT NULL, component text NOT NULL, uid text, summary text, organizer text,
  content_type text NOT NULL,
  body bytea NOT NULL,
  body_hash text,
  headers text,
  dkim_result text NOT NULL DEFAULT 'none' CHECK (dkim_result IN ('pass','fail','none','trusted')),
  dkim_domain text, dkim_selector text, dkim_reason text,
  response_status integer, response_body text
);
CREATE INDEX messages_uid ON messages (uid) WHERE uid IS NOT NULL;
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_replay ON messages (peer_domain, remote_message_id) WHERE remote_message_id IS NOT NULL;
CREATE INDEX messages_peer ON messages (peer_domain, received_at, dkim_result) WHERE peer_domain IS NOT NULL;

CREATE TABLE deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  recipient text NOT NULL, domain text NOT NULL,
  route text NOT NULL,
  target text,
  state text NOT NULL CHECK (state IN ('queued','in-flight','delivered','failed','sent-imip','cancelled','broken')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint,
  lease_owner text, lease_expires_at bigint, lease_breaks integer NOT NULL DEFAULT 0,
  request_status text,
  last_error text,
  fallback_at bigint,
  created_at bigint NOT NULL, updated_at bigint NOT NULL, final_at bigint,
  UNIQUE (message_id, recipient),
  CHECK (state <> 'queued' OR next_attempt_at IS NOT NULL),
  CHECK (state <> 'in-flight' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_due_route ON deliveries (route, next_attempt_at) WHERE state = 'queued';
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE state = 'in-flight';
CREATE INDEX deliveries_done ON deliveries (state) WHERE state NOT IN ('queued', 'in-flight');
CREATE INDEX deliveries_recipient ON deliveries (lower(recipient), message_id);
CREATE INDEX deliveries_domain ON deliveries (domain, updated_at, route, state, message_id);
CREATE INDEX deliveries_updated ON deliveries (updated_at);
CREATE INDEX deliveries_state ON deliveries (state, message_id) WHERE state <> 'delivered';

CREATE TABLE attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  started_at bigint NOT NULL, duration_ms integer NOT NULL,
  route text NOT NULL, target text,
  http_status integer, request_status text,
  outcome text NOT NULL CHECK (outcome IN ('delivered','pending','temporary','permanent','sent-imip','cancelled')),
  error text, tls text, response text
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE INDEX attempts_started ON attempts (started_at, outcome);
CREATE INDEX attempts_failed ON attempts (started_at) WHERE outcome IN ('temporary', 'permanent');

CREATE TABLE peer_policies (
  domain text PRIMARY KEY,
  trust text NOT NULL CHECK (trust IN ('dkim','unsigned','deny')),
  allow_from text,
  note text,
  updated_at bigint NOT NULL
);

CREATE TABLE dkim_keys (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain text NOT NULL, selector text NOT NULL,
  algorithm text NOT NULL, bits integer NOT NULL,
  private_key_pem text NOT NULL, record text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending','active','retiring','retired')),
  created_at bigint NOT NULL, activated_at bigint, retire_after bigint,
  UNIQUE (domain, selector)
);

CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
`;

const REPLAY_KEYS = `
CREATE TABLE replay_keys (
  key text PRIMARY KEY,
  message_id bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX replay_keys_expiry ON replay_keys (expires_at);
DROP INDEX messages_replay;
`;

// body_size is bigint: a refused request's size may be the one it declared, unread (any Content-Length).
// The trigger function runs with the search_path it was created under, so that it finds isched's
// messages table whichever search_path the inserting session has.
const REFUSALS = `
ALTER TABLE messages ADD COLUMN refusal text;
ALTER TABLE messages ADD COLUMN body_size bigint;
CREATE INDEX messages_refused ON messages (id) WHERE refusal IS NOT NULL;
UPDATE messages SET
    refusal = coalesce(
      (SELECT d.last_error FROM deliveries d WHERE d.message_id = messages.id ORDER BY d.id LIMIT 1),
      'refused (HTTP ' || response_status || ')'),
    body_size = length(body),
    body = '\\x'::bytea
  WHERE response_status >= 300;
DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE refusal IS NOT NULL);
CREATE FUNCTION deliveries_never_for_refused() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  IF (SELECT refusal FROM messages WHERE id = NEW.message_id) IS NOT NULL THEN
    RAISE EXCEPTION 'a refused request never gets a delivery' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_never_for_refused BEFORE INSERT ON deliveries
  FOR EACH ROW EXECUTE FUNCTION deliveries_never_for_refused();
`;

const CONSOLE_SESSIONS = `
CREATE TABLE console_sessions (
  id_hash text PRIMARY KEY,
  created_at bigint NOT NULL,
  last_seen_at bigint NOT NULL
);
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);
`;

const PEER_FACTS = `
CREATE TABLE peer_facts (
  domain text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('discovery','capabilities','key')),
  name text NOT NULL,
  value text NOT NULL,
  source text NOT NULL CHECK (source IN ('test','traffic')),
  learned_at bigint NOT NULL,
  confirmed_at bigint NOT NULL,
  PRIMARY KEY (domain, kind, name)
);
`;

const SIGNER_ALIGNMENT = `
ALTER TABLE messages ADD COLUMN signer_rule text;
ALTER TABLE peer_policies ADD COLUMN signers text;
`;

const ITIP_KEYS = `
CREATE TABLE itip_keys (
  key text PRIMARY KEY,
  message_id bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX itip_keys_expiry ON itip_keys (expires_at);
ALTER TABLE messages ADD COLUMN resends integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_resent_at bigint;
`;

/**
 * SQLite's form: one active and one pending key per domain, the extra keys of a database that
 * breaks the rule taking the state the console would give them. PostgreSQL's adds the tables only
 * several nodes need (docs/store-interface.md, "Races and sharing"; one process owns an SQLite file):
 * - nodes: one row per node id, so that a node refuses to start while another with the same id was
 *   seen within the lease time (two nodes with one id would take each other's leases at start);
 * - smtp_retries: the SMTP intake's retry memory (src/smtp-intake/retry-memory.ts), shared so that a
 *   client retrying a 4xx on another node does not get its handled recipients handled twice; pruned
 *   by expiry, oldest first.
 */
const SEVERAL_NODES = `
UPDATE dkim_keys SET state = 'retiring', retire_after = (extract(epoch FROM statement_timestamp()) * 1000)::bigint
  WHERE state = 'active'
    AND id > (SELECT min(k.id) FROM dkim_keys k WHERE k.domain = dkim_keys.domain AND k.state = 'active');
UPDATE dkim_keys SET state = 'retired'
  WHERE state = 'pending'
    AND id > (SELECT min(k.id) FROM dkim_keys k WHERE k.domain = dkim_keys.domain AND k.state = 'pending');
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys (domain) WHERE state = 'pending';

CREATE TABLE nodes (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  started_at bigint NOT NULL,
  seen_at bigint NOT NULL
);

CREATE TABLE smtp_retries (
  key text PRIMARY KEY,
  recipients text[] NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX smtp_retries_expiry ON smtp_retries (expires_at);
`;

/**
 * The nodes table's heartbeat (src/server/cluster.ts): the isched version each node runs, for the
 * operator, and when it stopped cleanly, so that a node of the same name may start elsewhere at once
 * instead of waiting for the lease time.
 */
const NODE_HEARTBEATS = `
ALTER TABLE nodes ADD COLUMN version text NOT NULL DEFAULT '';
ALTER TABLE nodes ADD COLUMN stopped_at bigint;
`;

/**
 * A lean accepted-message write: every index costs each commit that touches it one more 4 KB WAL
 * frame in SQLite (docs/perf-notes.md). deliveries_done served only SQLite's count of deliveries per
 * state, which now counts without it; PostgreSQL counts them with one GROUP BY over the table, which
 * never used it. Dropped here too, so that both schemas stay one (test/postgres/schema-parity.test.ts).
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
ALTER TABLE messages ADD COLUMN send_facts text;
`;

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  { name: "initial schema", up: SCHEMA_V1 },
  { name: "replay keys", up: REPLAY_KEYS },
  { name: "refused requests keep metadata only", up: REFUSALS },
  { name: "console sessions", up: CONSOLE_SESSIONS },
  { name: "peer facts", up: PEER_FACTS },
  { name: "signer alignment", up: SIGNER_ALIGNMENT },
  { name: "iTIP keys", up: ITIP_KEYS },
  { name: "several nodes on one database", up: SEVERAL_NODES },
  { name: "node heartbeats", up: NODE_HEARTBEATS },
  { name: "lean accepted-message write", up: LEAN_ACCEPT },
  { name: "send facts kept at intake", up: SEND_FACTS },
];

/**
 * Tables only the PostgreSQL schema has: its version record (SQLite's PRAGMA user_version and
 * application_id; migrate.ts) and what only several nodes share (SEVERAL_NODES above).
 */
export const POSTGRES_ONLY_TABLES: readonly string[] = ["schema_meta", "nodes", "smtp_retries"];
