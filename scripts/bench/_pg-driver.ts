/**
 * What scripts/bench/pg-drivers.ts asks of each PostgreSQL driver, with the schema it runs on: the
 * isched tables (messages, deliveries, attempts) as they would be on PostgreSQL, with the unique
 * constraints that replace read-then-write checks there (the message uuid, one delivery per
 * recipient, and a replay key on the peer's iSchedule-Message-ID and body hash). Each adapter
 * (_pg-bun-sql.ts, _pg-porsager.ts, _pg-node-pg.ts) uses its driver the way its documentation
 * does: tagged templates with prepared statements for Bun.SQL and postgres, named prepared
 * statements for pg.
 */

export interface BenchDriver {
  readonly name: string;
  /** DDL and set-up: simple protocol, several statements allowed. */
  exec(sql: string): Promise<void>;
  /** One transaction: a message (~5 KB body), one delivery, one attempt. Returns the message id. */
  accept(row: AcceptRow): Promise<number>;
  /** The same three rows in one statement (data-modifying CTEs): one round trip, no BEGIN/COMMIT. */
  acceptOneStatement(row: AcceptRow): Promise<number>;
  /** Leases up to `limit` due queued deliveries, FOR UPDATE SKIP LOCKED; returns their ids. */
  lease(o: { owner: string; nowMs: number; leaseMs: number; limit: number }): Promise<number[]>;
  /** The stored body of a message, to check that bytea round-trips. */
  bodyOf(messageId: number): Promise<Uint8Array | undefined>;
  /** A number column that is int8 (bigint) in the schema, as the driver returns it. */
  receivedAt(messageId: number): Promise<unknown>;
  /**
   * Subscribes on a connection of its own. `onListen` runs once subscribed, and again after each
   * reconnection where the driver does that (the place to catch up on what was missed).
   */
  listen(channel: string, onPayload: (payload: string) => void, onListen: () => void): Promise<Unlisten>;
  notify(channel: string, payload: string): Promise<void>;
  /** SELECT 1 through the pool. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type Unlisten = () => Promise<void>;

export type OpenDriver = (url: string, o: { max: number }) => BenchDriver;

export interface AcceptRow {
  uuid: string;
  nowMs: number;
  peerDomain: string;
  remoteMessageId: string;
  originator: string;
  recipient: string;
  body: Buffer;
  bodyHash: string;
}

export const SCHEMA = `
DROP TABLE IF EXISTS attempts, deliveries, messages;
CREATE TABLE messages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  uuid text NOT NULL UNIQUE,
  received_at bigint NOT NULL,
  direction text NOT NULL CHECK (direction IN ('inbound','outbound')),
  intake text NOT NULL,
  peer_address text, peer_domain text, remote_message_id text,
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
CREATE INDEX messages_received_at ON messages (received_at);
CREATE INDEX messages_peer ON messages (peer_domain, received_at, dkim_result) WHERE peer_domain IS NOT NULL;
-- Replay: one accepted message per (peer, iSchedule-Message-ID, body), enforced by the database.
CREATE UNIQUE INDEX messages_replay ON messages (peer_domain, remote_message_id, body_hash)
  WHERE remote_message_id IS NOT NULL AND dkim_result IN ('pass', 'trusted');
CREATE TABLE deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  recipient text NOT NULL, domain text NOT NULL, route text NOT NULL, target text,
  state text NOT NULL CHECK (state IN ('queued','in-flight','delivered','failed','sent-imip','cancelled','broken')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint,
  lease_owner text, lease_expires_at bigint, lease_breaks integer NOT NULL DEFAULT 0,
  request_status text, last_error text, fallback_at bigint,
  created_at bigint NOT NULL, updated_at bigint NOT NULL, final_at bigint,
  UNIQUE (message_id, recipient),
  CHECK (state <> 'queued' OR next_attempt_at IS NOT NULL),
  CHECK (state <> 'in-flight' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE state = 'in-flight';
CREATE INDEX deliveries_domain ON deliveries (domain, updated_at);
CREATE INDEX deliveries_updated ON deliveries (updated_at);
CREATE TABLE attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
  started_at bigint NOT NULL, duration_ms integer NOT NULL,
  route text NOT NULL, target text, http_status integer, request_status text,
  outcome text NOT NULL, error text, tls text, response text
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE INDEX attempts_started ON attempts (started_at, outcome);
`;

/**
 * `count` queued deliveries of one message, all due, for the lease benchmark (made by the server:
 * generate_series, one statement).
 */
export function queuedDeliveriesSql(count: number, nowMs: number): string {
  return `TRUNCATE attempts, deliveries, messages RESTART IDENTITY;
INSERT INTO messages (uuid, received_at, direction, intake, originator, method, component, content_type, body)
  VALUES ('lease-bench', ${nowMs}, 'outbound', 'api', 'mailto:o@example.com', 'REQUEST', 'VEVENT', 'text/calendar', '\\x00');
INSERT INTO deliveries (message_id, recipient, domain, route, state, next_attempt_at, created_at, updated_at)
  SELECT 1, 'mailto:u' || g || '@peer' || (g % 50) || '.example', 'peer' || (g % 50) || '.example', 'ischedule',
    'queued', ${nowMs} - 60000 + (g % 1000), ${nowMs}, ${nowMs}
  FROM generate_series(1, ${count}) g;
ANALYZE deliveries;`;
}

/** A ~5 KB iTIP body, different for each `i` (as real invitations are). */
export function acceptRow(i: number, nowMs: number): AcceptRow {
  const uuid = Bun.randomUUIDv7("hex", nowMs);
  const text = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:${uuid}@peer.example\r\n${"DESCRIPTION:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\r\n".repeat(68)}END:VEVENT\r\nEND:VCALENDAR\r\n`;
  const body = Buffer.from(text);
  return {
    uuid,
    nowMs,
    peerDomain: `peer${i % 50}.example`,
    remoteMessageId: `${uuid}@peer.example`,
    originator: `mailto:organizer${i % 50}@peer${i % 50}.example`,
    recipient: `mailto:user${i % 200}@example.com`,
    body,
    bodyHash: new Bun.CryptoHasher("sha256").update(body).digest("base64"),
  };
}

/** Runs every check the compiled probe makes; prints one JSON line. Used by _pg-probe builds. */
export async function probe(open: OpenDriver, url: string): Promise<void> {
  const a = open(url, { max: 2 });
  const b = open(url, { max: 1 });
  const result: Record<string, unknown> = { driver: a.name };
  try {
    await a.exec(SCHEMA);
    const row = acceptRow(1, Date.now());
    const id = await a.accept(row);
    const body = await a.bodyOf(id);
    result.bytea = body !== undefined && Buffer.from(body).equals(row.body);
    const woken = new Promise<string>((resolve) => {
      void a.listen("probe", resolve, () => {}).then(() => b.notify("probe", "hello"));
    });
    result.notify = await Promise.race([woken, Bun.sleep(5000).then(() => "timeout")]);
    result.ok = result.bytea === true && result.notify === "hello";
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
  } finally {
    await a.close();
    await b.close();
  }
  console.log(JSON.stringify(result));
}
