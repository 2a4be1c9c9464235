/**
 * The `pg` package (node-postgres) for scripts/bench/pg-drivers.ts: a Pool for queries and
 * transactions (named prepared statements), and LISTEN on a Client of its own, as its documentation
 * shows. pg has no reconnecting listener: a listener that must survive a server restart needs its
 * own reconnect loop, which this adapter deliberately does not add (the benchmark reports what the
 * driver does by itself). A pool's idle connection that the server closes emits 'error' on the pool;
 * without a handler that ends the process, so one is installed.
 */
import pg from "pg";
import type { OpenDriver, Unlisten } from "./_pg-driver.ts";

const INSERT_MESSAGE = `INSERT INTO messages (uuid, received_at, direction, intake, peer_domain, remote_message_id,
    originator, method, component, uid, content_type, body, body_hash, dkim_result)
  VALUES ($1, $2, 'inbound', 'ischedule', $3, $4, $5, 'REQUEST', 'VEVENT', $4,
    'text/calendar; charset=utf-8; method=REQUEST; component=VEVENT', $6, $7, 'pass')`;
const INSERT_DELIVERY = `INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts,
    request_status, created_at, updated_at, final_at)
  VALUES ($1, $2, 'example.com', 'local', 'store', 'delivered', 1, '2.0;Success', $3, $3, $3)`;
const INSERT_ATTEMPT = `INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, request_status, outcome)
  VALUES ($1, $2, 0, 'local', 'store', '2.0;Success', 'delivered')`;

export const open: OpenDriver = (url, o) => {
  const pool = new pg.Pool({ connectionString: url, max: o.max });
  pool.on("error", () => {});
  const listeners: pg.Client[] = [];
  return {
    name: "pg",
    async exec(text) {
      await pool.query(text);
    },
    async accept(r) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const m = await client.query({
          name: "insert-message",
          text: `${INSERT_MESSAGE} RETURNING id`,
          values: [r.uuid, r.nowMs, r.peerDomain, r.remoteMessageId, r.originator, r.body, r.bodyHash],
        });
        const d = await client.query({
          name: "insert-delivery",
          text: `${INSERT_DELIVERY} RETURNING id`,
          values: [m.rows[0].id, r.recipient, r.nowMs],
        });
        await client.query({ name: "insert-attempt", text: INSERT_ATTEMPT, values: [d.rows[0].id, r.nowMs] });
        await client.query("COMMIT");
        return Number(m.rows[0].id);
      } catch (e) {
        await client.query("ROLLBACK").catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    async acceptOneStatement(r) {
      const result = await pool.query({
        name: "accept-one",
        text: `WITH m AS (${INSERT_MESSAGE} RETURNING id),
          d AS (INSERT INTO deliveries (message_id, recipient, domain, route, target, state, attempts, request_status,
              created_at, updated_at, final_at)
            SELECT id, $8, 'example.com', 'local', 'store', 'delivered', 1, '2.0;Success', $2, $2, $2 FROM m
            RETURNING id)
          INSERT INTO attempts (delivery_id, started_at, duration_ms, route, target, request_status, outcome)
            SELECT id, $2, 0, 'local', 'store', '2.0;Success', 'delivered' FROM d
          RETURNING (SELECT id FROM m) AS id`,
        values: [
          r.uuid,
          r.nowMs,
          r.peerDomain,
          r.remoteMessageId,
          r.originator,
          r.body,
          r.bodyHash,
          r.recipient,
        ],
      });
      return Number(result.rows[0].id);
    },
    async lease(o) {
      const result = await pool.query({
        name: "lease",
        text: `UPDATE deliveries SET state = 'in-flight', lease_owner = $1, lease_expires_at = $2, updated_at = $3
          WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' AND next_attempt_at <= $3
            ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
          RETURNING id`,
        values: [o.owner, o.nowMs + o.leaseMs, o.nowMs, o.limit],
      });
      return result.rows.map((r: { id: string }) => Number(r.id));
    },
    async bodyOf(id) {
      const result = await pool.query("SELECT body FROM messages WHERE id = $1", [id]);
      return result.rows[0]?.body;
    },
    async receivedAt(id) {
      const result = await pool.query("SELECT received_at FROM messages WHERE id = $1", [id]);
      return result.rows[0]?.received_at;
    },
    async listen(channel, onPayload, onListen): Promise<Unlisten> {
      const client = new pg.Client({ connectionString: url });
      client.on("error", () => {});
      client.on("notification", (n) => {
        if (n.channel === channel) onPayload(n.payload ?? "");
      });
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      listeners.push(client);
      onListen();
      return async () => {
        await client.end().catch(() => {});
      };
    },
    async notify(channel, payload) {
      await pool.query("SELECT pg_notify($1, $2)", [channel, payload]);
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      for (const c of listeners) await c.end().catch(() => {});
      await pool.end();
    },
  };
};
