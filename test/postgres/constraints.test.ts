/**
 * The constraints isched relies on refuse the same rows on SQLite and on PostgreSQL: the same SQL
 * runs on a fresh database of each (test/postgres/_backends.ts) and must end the same way. These
 * are the rules that keep a refused message undeliverable, a replay or an iTIP copy delivered once,
 * a queued delivery leasable and an in-flight one recoverable, and a domain signing with one key.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import {
  type Backend,
  BackendPair,
  BODY,
  insertKey as key,
  insertMessage as message,
  onBoth,
  outcome,
  type Param,
  same,
} from "./_backends.ts";

const START_MS = 60_000;

let pg: RunningPostgres;
let pairs: BackendPair;

beforeAll(async () => {
  pg = await startPostgres();
  pairs = new BackendPair(pg, "constraints");
}, START_MS);

afterEach(() => pairs.closeAll());

afterAll(async () => {
  await pg?.stop();
});

interface DeliveryInsert {
  recipient?: string;
  state?: string;
  nextAttemptAt?: number | null;
  leaseOwner?: string | null;
  leaseExpiresAt?: number | null;
}

function delivery(b: Backend, messageId: number, d: DeliveryInsert = {}): Promise<number> {
  const params: Param[] = [
    messageId,
    d.recipient ?? "b@example.com",
    d.state ?? "queued",
    d.nextAttemptAt === undefined ? 1000 : d.nextAttemptAt,
    d.leaseOwner ?? null,
    d.leaseExpiresAt ?? null,
  ];
  return b.run(
    `INSERT INTO deliveries (message_id, recipient, domain, route, state, next_attempt_at, lease_owner,
        lease_expires_at, created_at, updated_at)
      VALUES ($1, $2, 'example.com', 'local', $3, $4, $5, $6, 1000, 1000)`,
    params,
  );
}

const setKeyState = (b: Backend, selector: string, state: string) =>
  b.run("UPDATE dkim_keys SET state = $1 WHERE selector = $2", [state, selector]);

const count = async (b: Backend, text: string, params: Param[] = []): Promise<number> =>
  (await b.all(text, params))[0]!.n as number;

describe("the same constraints hold on SQLite and PostgreSQL", () => {
  test("a refused request never gets a delivery, one at a time or several in one statement", async () => {
    const both = await pairs.fresh();
    const refusal = { trigger: "a refused request never gets a delivery" };
    expect(
      await onBoth(both, async (b) => {
        const accepted = await message(b, "accepted");
        const refused = await message(b, "refused", "DKIM signature did not verify");
        return [
          await outcome(delivery(b, accepted)),
          await outcome(delivery(b, refused)),
          await outcome(
            b.run(
              `INSERT INTO deliveries (message_id, recipient, domain, route, state, next_attempt_at, created_at, updated_at)
                SELECT id, 'c@example.com', 'example.com', 'local', 'queued', 1, 1, 1 FROM messages`,
            ),
          ),
          await count(b, "SELECT count(*) AS n FROM deliveries WHERE message_id = $1", [refused]),
          await count(b, "SELECT count(*) AS n FROM deliveries"),
        ];
      }),
    ).toEqual(same(["ok", refusal, refusal, 0, 1]));
  });

  for (const table of ["replay_keys", "itip_keys"]) {
    test(`a key of ${table} is held by one message: inserted twice it is refused, claimed it is taken only once expired`, async () => {
      const both = await pairs.fresh();
      // The claim of src/store/_key-claims.ts, with positional parameters.
      const claim = (b: Backend, messageId: number, nowMs: number) =>
        b.run(
          `INSERT INTO ${table} (key, message_id, expires_at) VALUES ('k', $1, $2)
            ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
            WHERE ${table}.expires_at <= $3`,
          [messageId, nowMs + 60_000, nowMs],
        );
      expect(
        await onBoth(both, async (b) => [
          await claim(b, 1, 1_000),
          await outcome(b.run(`INSERT INTO ${table} (key, message_id, expires_at) VALUES ('k', 2, 9)`)),
          await claim(b, 2, 30_000),
          await claim(b, 3, 61_000),
          await b.all(`SELECT key, message_id, expires_at FROM ${table}`),
        ]),
      ).toEqual(same([1, "unique", 0, 1, [{ key: "k", message_id: 3, expires_at: 121_000 }]]));
    });
  }

  test("a domain has one active key at most: a second is refused; other domains and other states are not", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => [
        await outcome(key(b, "example.com", "s1", "active")),
        await outcome(key(b, "example.com", "s2", "active")),
        await outcome(key(b, "example.org", "s1", "active")),
        await outcome(key(b, "example.com", "s3", "retiring")),
        await outcome(key(b, "example.com", "s4", "retiring")),
        await outcome(key(b, "example.com", "s5", "retired")),
        await outcome(key(b, "example.com", "s6", "retired")),
        // A retiring key made active again while another signs.
        await outcome(setKeyState(b, "s3", "active")),
      ]),
    ).toEqual(same(["ok", "unique", "ok", "ok", "ok", "ok", "ok", "unique"]));
  });

  test("a domain has one pending key at most, beside its active key", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => [
        await outcome(key(b, "example.com", "s1", "active")),
        await outcome(key(b, "example.com", "s2", "pending")),
        await outcome(key(b, "example.com", "s3", "pending")),
        await outcome(key(b, "example.org", "s3", "pending")),
      ]),
    ).toEqual(same(["ok", "ok", "unique", "ok"]));
  });

  test("rotation retires the active key before activating the pending one; the other order is refused", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => {
        await key(b, "example.com", "old", "active");
        await key(b, "example.com", "new", "pending");
        const wrongOrder = await outcome(setKeyState(b, "new", "active"));
        const retired = await setKeyState(b, "old", "retiring");
        const activated = await setKeyState(b, "new", "active");
        return [
          wrongOrder,
          retired,
          activated,
          await b.all("SELECT selector, state FROM dkim_keys ORDER BY id"),
        ];
      }),
    ).toEqual(
      same([
        "unique",
        1,
        1,
        [
          { selector: "old", state: "retiring" },
          { selector: "new", state: "active" },
        ],
      ]),
    );
  });

  test("a queued delivery needs a due time, an in-flight one a lease owner and expiry, and a state is one of seven", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => {
        const m = await message(b, "m");
        const d = (recipient: string, x: DeliveryInsert) => outcome(delivery(b, m, { recipient, ...x }));
        return [
          await d("a@x", { state: "queued", nextAttemptAt: null }),
          await d("b@x", { state: "queued", nextAttemptAt: 5 }),
          await d("c@x", { state: "in-flight", nextAttemptAt: null, leaseOwner: null, leaseExpiresAt: 9 }),
          await d("d@x", {
            state: "in-flight",
            nextAttemptAt: null,
            leaseOwner: "node-a",
            leaseExpiresAt: null,
          }),
          await d("e@x", {
            state: "in-flight",
            nextAttemptAt: null,
            leaseOwner: "node-a",
            leaseExpiresAt: 9,
          }),
          await d("f@x", { state: "delivered", nextAttemptAt: null }),
          await d("g@x", { state: "sent", nextAttemptAt: null }),
          // Leasing without a lease, and queueing without a due time, are refused as updates too.
          await outcome(b.run("UPDATE deliveries SET state = 'in-flight' WHERE recipient = 'b@x'")),
          await outcome(b.run("UPDATE deliveries SET state = 'queued' WHERE recipient = 'f@x'")),
          await outcome(
            b.run(
              "UPDATE deliveries SET state = 'in-flight', lease_owner = 'n', lease_expires_at = 7 WHERE recipient = 'b@x'",
            ),
          ),
        ];
      }),
    ).toEqual(same(["check", "ok", "check", "check", "ok", "ok", "check", "check", "check", "ok"]));
  });

  test("one delivery per recipient of a message, and none for a message that does not exist", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => {
        const m = await message(b, "m");
        const other = await message(b, "other");
        return [
          await outcome(delivery(b, m, { recipient: "b@example.com" })),
          await outcome(delivery(b, m, { recipient: "b@example.com" })),
          await outcome(delivery(b, other, { recipient: "b@example.com" })),
          await outcome(delivery(b, 999, { recipient: "b@example.com" })),
        ];
      }),
    ).toEqual(same(["ok", "unique", "ok", "foreign key"]));
  });

  test("a message's uuid is unique, its direction and DKIM result checked, and its defaults the same", async () => {
    const both = await pairs.fresh();
    const insert = (b: Backend, uuid: string, direction: string, dkim: string | null) =>
      outcome(
        b.run(
          `INSERT INTO messages (uuid, received_at, direction, intake, originator, method, component, content_type, body, dkim_result)
            VALUES ($1, 1, $2, 'ischedule', 'mailto:a@x', 'REQUEST', 'VEVENT', 'text/calendar', $3, coalesce($4, 'none'))`,
          [uuid, direction, BODY, dkim],
        ),
      );
    expect(
      await onBoth(both, async (b) => {
        const id = await message(b, "m");
        return [
          await insert(b, "m", "inbound", null),
          await insert(b, "n", "sideways", null),
          await insert(b, "o", "outbound", "maybe"),
          await insert(b, "p", "outbound", "trusted"),
          await outcome(b.run("INSERT INTO messages (uuid, received_at) VALUES ('q', 1)")),
          await b.all("SELECT dkim_result, resends, last_resent_at, refusal FROM messages WHERE id = $1", [
            id,
          ]),
        ];
      }),
    ).toEqual(
      same([
        "unique",
        "check",
        "check",
        "ok",
        "not null",
        [{ dkim_result: "none", resends: 0, last_resent_at: null, refusal: null }],
      ]),
    );
  });

  test("an attempt's outcome is checked, and deleting a message deletes its deliveries and their attempts", async () => {
    const both = await pairs.fresh();
    const attempt = (b: Backend, deliveryId: number, result: string) =>
      outcome(
        b.run(
          `INSERT INTO attempts (delivery_id, started_at, duration_ms, route, outcome) VALUES ($1, 1, 5, 'local', $2)`,
          [deliveryId, result],
        ),
      );
    expect(
      await onBoth(both, async (b) => {
        const m = await message(b, "m");
        await delivery(b, m);
        const [d] = await b.all("SELECT id FROM deliveries");
        const outcomes = [
          await attempt(b, d!.id as number, "temporary"),
          await attempt(b, d!.id as number, "maybe"),
          await attempt(b, 999, "delivered"),
        ];
        await b.run("DELETE FROM messages WHERE id = $1", [m]);
        return [
          ...outcomes,
          await count(b, "SELECT count(*) AS n FROM deliveries"),
          await count(b, "SELECT count(*) AS n FROM attempts"),
        ];
      }),
    ).toEqual(same(["ok", "check", "foreign key", 0, 0]));
  });

  test("policies, peer facts, sessions and settings: checked values and one row per key", async () => {
    const both = await pairs.fresh();
    expect(
      await onBoth(both, async (b) => {
        const policy = (domain: string, trust: string) =>
          outcome(
            b.run("INSERT INTO peer_policies (domain, trust, updated_at) VALUES ($1, $2, 1)", [
              domain,
              trust,
            ]),
          );
        const fact = (kind: string, source: string) =>
          outcome(
            b.run(
              `INSERT INTO peer_facts (domain, kind, name, value, source, learned_at, confirmed_at)
                VALUES ('peer.example', $1, 'n', 'v', $2, 1, 1)`,
              [kind, source],
            ),
          );
        return [
          await policy("peer.example", "dkim"),
          await policy("peer.example", "deny"),
          await policy("other.example", "maybe"),
          await fact("discovery", "test"),
          await fact("discovery", "traffic"),
          await fact("rumour", "test"),
          await fact("key", "gossip"),
          await outcome(b.run("INSERT INTO console_sessions VALUES ('h', 1, 1)")),
          await outcome(b.run("INSERT INTO console_sessions VALUES ('h', 2, 2)")),
          await outcome(b.run("INSERT INTO settings VALUES ('a', '1')")),
          await outcome(b.run("INSERT INTO settings VALUES ('a', '2')")),
        ];
      }),
    ).toEqual(
      same(["ok", "unique", "check", "ok", "unique", "check", "check", "ok", "unique", "ok", "unique"]),
    );
  });
});
