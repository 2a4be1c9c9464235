/**
 * Bun's built-in PostgreSQL client (`Bun.SQL`, the driver chosen for isched's PostgreSQL store; see
 * docs/store-interface.md and BENCHMARKS.md) against the real server: the behaviours a store over
 * it relies on. Each test is a fact the design depends on, so that a Bun upgrade that changes one
 * fails here first rather than in the queue.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";

const START_MS = 60_000;

let pg: RunningPostgres;
let sql: SQL;
let other: SQL;

beforeAll(async () => {
  pg = await startPostgres();
  sql = new SQL({ url: pg.url, max: 4 });
  other = new SQL({ url: pg.url, max: 2 });
  await sql`CREATE TABLE messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, uuid text NOT NULL UNIQUE,
    received_at bigint NOT NULL, body bytea NOT NULL)`;
  await sql`CREATE TABLE deliveries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state text NOT NULL,
    next_attempt_at bigint, lease_owner text)`;
}, START_MS);

afterAll(async () => {
  await sql?.close({ timeout: 1 });
  await other?.close({ timeout: 1 });
  await pg?.stop();
});

/** Resolves with the next payload on `channel` for which `match` holds, or "timeout". */
function nextNotification(
  payloads: string[],
  match: (p: string) => boolean,
  timeoutMs = 5000,
): Promise<string> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = () => {
      const hit = payloads.find(match);
      if (hit !== undefined) resolve(hit);
      else if (Date.now() > deadline) resolve("timeout");
      else setTimeout(check, 10);
    };
    check();
  });
}

describe("Bun.SQL values", () => {
  test("a 5 KB body round-trips through bytea byte for byte", async () => {
    const body = new Uint8Array(5 * 1024).map((_, i) => (i * 7) % 256);
    const [row] = await sql`INSERT INTO messages (uuid, received_at, body)
      VALUES (${"m-bytes"}, ${Date.now()}, ${body}) RETURNING body`;
    expect(Buffer.from(row.body).equals(Buffer.from(body))).toBe(true);
  });

  test("bigint (int8) columns come back as strings: a store converts its millisecond times", async () => {
    const now = Date.now();
    const [row] = await sql`SELECT received_at FROM messages WHERE uuid = ${"m-bytes"}`;
    expect(typeof row.received_at).toBe("string");
    expect(Number(row.received_at)).toBeGreaterThanOrEqual(now - 60_000);
  });

  test("a unique violation is a PostgresError with SQLSTATE 23505 and the constraint's name", async () => {
    const insert = () => sql`INSERT INTO messages (uuid, received_at, body) VALUES ('dup', 1, '\\x00')`;
    await insert();
    const e = await insert().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SQL.PostgresError);
    expect((e as SQL.PostgresError).errno).toBe("23505");
    expect((e as SQL.PostgresError & { constraint?: string }).constraint).toBe("messages_uuid_key");
  });
});

describe("LISTEN/NOTIFY", () => {
  test("a NOTIFY from another client wakes a listener", async () => {
    const payloads: string[] = [];
    const sub = await sql.listen("wake", (p) => payloads.push(p));
    try {
      await other.notify("wake", "work arrived");
      expect(await nextNotification(payloads, (p) => p === "work arrived")).toBe("work arrived");
    } finally {
      await sub.unlisten();
    }
  });

  test("a NOTIFY inside a transaction arrives at COMMIT, and never after a ROLLBACK", async () => {
    const payloads: string[] = [];
    const sub = await sql.listen("wake", (p) => payloads.push(p));
    try {
      await other.begin(async (tx) => {
        await tx.notify("wake", "committed");
        await Bun.sleep(200);
        expect(payloads).not.toContain("committed");
      });
      expect(await nextNotification(payloads, (p) => p === "committed")).toBe("committed");
      await other
        .begin(async (tx) => {
          await tx.notify("wake", "rolled back");
          throw new Error("abort");
        })
        .catch(() => {});
      await other.notify("wake", "marker");
      await nextNotification(payloads, (p) => p === "marker");
      expect(payloads).not.toContain("rolled back");
    } finally {
      await sub.unlisten();
    }
  });
});

/**
 * Runs `work` in a transaction of `client` and keeps that transaction open (its locks held) until
 * commit() is called, as a node in the middle of its own lease or migration would.
 */
async function openTransaction<T>(
  client: SQL,
  work: (tx: SQL) => Promise<T>,
): Promise<{ value: T; commit: () => Promise<void> }> {
  let release: () => void = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const value = Promise.withResolvers<T>();
  const done = client.begin(async (tx) => {
    try {
      value.resolve(await work(tx));
    } catch (e) {
      value.reject(e);
      throw e;
    }
    await held;
  });
  return {
    value: await value.promise,
    commit: async () => {
      release();
      await done;
    },
  };
}

const leaseSql = (tx: SQL, o: { owner: string; limit: number; skipLocked: boolean }) =>
  o.skipLocked
    ? tx`UPDATE deliveries SET state = 'in-flight', lease_owner = ${o.owner}
        WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' ORDER BY next_attempt_at, id
          LIMIT ${o.limit} FOR UPDATE SKIP LOCKED)
        RETURNING id`
    : tx`UPDATE deliveries SET state = 'in-flight', lease_owner = ${o.owner}
        WHERE id IN (SELECT id FROM deliveries WHERE state = 'queued' ORDER BY next_attempt_at, id
          LIMIT ${o.limit})
        RETURNING id`;

async function leaseIds(
  tx: SQL,
  o: { owner: string; limit: number; skipLocked: boolean },
): Promise<number[]> {
  return (await leaseSql(tx, o)).map((r: { id: string }) => Number(r.id));
}

describe("leasing and locking", () => {
  beforeEach(async () => {
    await sql`TRUNCATE deliveries`;
    await sql`INSERT INTO deliveries (state, next_attempt_at) SELECT 'queued', g FROM generate_series(1, 100) g`;
  });

  test("two clients leasing at once get disjoint sets, and the second does not wait for the first", async () => {
    // The first lease stays uncommitted (its rows locked) while the second runs.
    const first = await openTransaction(sql, (tx) =>
      leaseIds(tx, { owner: "node-a", limit: 50, skipLocked: true }),
    );
    const t0 = performance.now();
    const secondIds = await leaseIds(other, { owner: "node-b", limit: 50, skipLocked: true });
    const waitedMs = performance.now() - t0;
    await first.commit();
    expect(first.value).toHaveLength(50);
    expect(secondIds).toHaveLength(50);
    expect(new Set([...first.value, ...secondIds]).size).toBe(100);
    expect(waitedMs).toBeLessThan(1000);
  });

  test("the SQLite lease statement, run as it is on PostgreSQL, leases the same deliveries twice", async () => {
    // Why the PostgreSQL store needs SKIP LOCKED: the second UPDATE waits for the first one's row
    // locks, then re-checks only the outer WHERE (id IN the set its subquery chose), not the state.
    const first = await openTransaction(sql, (tx) =>
      leaseIds(tx, { owner: "node-a", limit: 10, skipLocked: false }),
    );
    const second = leaseIds(other, { owner: "node-b", limit: 10, skipLocked: false });
    await Bun.sleep(200);
    await first.commit();
    expect(await second).toEqual(first.value);
  });

  test("the replay-key claim of src/store/replays.ts holds on PostgreSQL when two copies commit at once", async () => {
    // The same statement as SQLite's: a claim on a key in force changes no row (the copy is a
    // replay); one on an expired key takes it over. Run by two transactions at once, the second
    // waits for the first's commit on the primary key, then finds its row in force.
    await sql`CREATE TABLE IF NOT EXISTS replay_keys (key text PRIMARY KEY, message_id bigint NOT NULL,
      expires_at bigint NOT NULL)`;
    await sql`TRUNCATE replay_keys`;
    const claim = (
      tx: SQL,
      messageId: number,
      nowMs: number,
    ) => tx`INSERT INTO replay_keys (key, message_id, expires_at)
      VALUES ('dkim\npeer.example\nid-1\nbh', ${messageId}, ${nowMs + 60_000})
      ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
      WHERE replay_keys.expires_at <= ${nowMs}`;
    const first = await openTransaction(sql, async (tx) => (await claim(tx, 1, 1_000)).count);
    const second = claim(other, 2, 1_000).then((r) => r.count);
    await Bun.sleep(200);
    await first.commit();
    expect(first.value).toBe(1);
    expect(await second).toBe(0);
    // Once the key has expired, the next message takes it over.
    expect((await claim(other, 3, 100_000)).count).toBe(1);
    const [row] = await sql`SELECT message_id FROM replay_keys`;
    expect(Number(row.message_id)).toBe(3);
  });

  test("a transaction-level advisory lock makes a second migrator wait until the first commits", async () => {
    const order: string[] = [];
    const first = await openTransaction(sql, (tx) => tx`SELECT pg_advisory_xact_lock(${0x69736368})`);
    const second = other.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${0x69736368})`;
      order.push("second got the lock");
    });
    await Bun.sleep(300);
    expect(order).toEqual([]);
    order.push("first committed");
    await first.commit();
    await second;
    expect(order).toEqual(["first committed", "second got the lock"]);
  });
});

/** Runs a read again while it fails on a connection the server closed (57P01), at most 10 times. */
async function retryOnLostConnection<T>(read: () => PromiseLike<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (e) {
      if (attempt >= 10 || !(e instanceof SQL.PostgresError) || e.errno !== "57P01") throw e;
      await Bun.sleep(10);
    }
  }
}

describe("outages", () => {
  test("a connection lost before COMMIT rejects the transaction and commits nothing", async () => {
    let inserted = false;
    // The rejection is caught from the start: it happens while the test waits for the termination.
    const outcome = sql
      .begin(async (t) => {
        await t`INSERT INTO messages (uuid, received_at, body) VALUES ('lost', 1, '\\x00')`;
        inserted = true;
        await t`SELECT pg_sleep(10)`;
      })
      .then(
        () => undefined,
        (x: unknown) => x,
      );
    while (!inserted) await Bun.sleep(5);
    expect(await pg.terminateConnections()).toBeGreaterThan(0);
    const e = await outcome;
    expect(e).toBeInstanceOf(SQL.PostgresError);
    // 57P01 admin_shutdown: the same a server shutting down sends to its sessions.
    expect((e as SQL.PostgresError).errno).toBe("57P01");
    // The pool may still hand out connections the server has just closed, one after another (each
    // such query fails with the same 57P01) until it has noticed them all: a store retries reads.
    const [row] = await retryOnLostConnection(
      () => sql`SELECT count(*)::int AS n FROM messages WHERE uuid = 'lost'`,
    );
    expect(row.n).toBe(0);
  });

  test(
    "while the server is down a query fails at once; after a restart the same client answers again",
    async () => {
      await sql`SELECT 1`;
      await pg.stop({ keepData: true });
      try {
        const t0 = performance.now();
        const e = await sql`SELECT 1`.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(SQL.PostgresError);
        expect((e as SQL.PostgresError).code).toBe("ERR_POSTGRES_CONNECTION_REFUSED");
        expect(performance.now() - t0).toBeLessThan(1000);
      } finally {
        await pg.start();
      }
      const [row] = await sql`SELECT count(*)::int AS n FROM messages WHERE uuid = 'm-bytes'`;
      expect(row.n).toBe(1);
    },
    START_MS,
  );

  test(
    "after a restart the listener comes back by itself and runs its catch-up hook again",
    async () => {
      const payloads: string[] = [];
      let subscribed = 0;
      const sub = await sql.listen(
        "wake",
        (p) => payloads.push(p),
        () => {
          subscribed++;
        },
      );
      try {
        expect(subscribed).toBe(1);
        await pg.stop({ keepData: true });
        await Bun.sleep(500);
        await pg.start();
        // Notifications sent while the listener reconnects are lost (PostgreSQL keeps none for absent
        // listeners): hence the hook, where a node looks at the queue itself.
        const deadline = Date.now() + 40_000;
        while (!payloads.includes("after restart") && Date.now() < deadline) {
          await other.notify("wake", "after restart").catch(() => {});
          await Bun.sleep(100);
        }
        expect(payloads).toContain("after restart");
        expect(subscribed).toBe(2);
      } finally {
        await sub.unlisten();
      }
    },
    START_MS,
  );
});

test(
  "Bun.SQL works inside a `bun build --compile` executable (bytea and LISTEN/NOTIFY)",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "isched-bun-sql-probe-"));
    try {
      const source = join(dir, "probe.ts");
      writeFileSync(
        source,
        `import { SQL } from "bun";
const a = new SQL({ url: process.argv[2], max: 1 });
const b = new SQL({ url: process.argv[2], max: 1 });
const [row] = await a\`SELECT \${new Uint8Array([0, 1, 254, 255])}::bytea AS body\`;
const woken = new Promise((resolve) => { void a.listen("probe", resolve).then(() => b.notify("probe", "hello")); });
const payload = await Promise.race([woken, Bun.sleep(5000).then(() => "timeout")]);
console.log(JSON.stringify({ body: [...row.body], payload }));
await a.close(); await b.close();
process.exit(0);
`,
      );
      const binary = join(dir, "probe");
      const build = Bun.spawnSync([process.execPath, "build", "--compile", source, "--outfile", binary], {
        stderr: "pipe",
      });
      expect(build.stderr.toString()).not.toContain("error");
      expect(build.exitCode).toBe(0);
      const run = Bun.spawn([binary, pg.url], { stdout: "pipe", stderr: "pipe" });
      const out = await new Response(run.stdout).text();
      expect(await run.exited).toBe(0);
      expect(JSON.parse(out.trim())).toEqual({ body: [0, 1, 254, 255], payload: "hello" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  START_MS,
);
