import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { RefusalLog } from "../../src/inbound/refusal-log.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { MIGRATIONS, migrate } from "../../src/store/sqlite/migrations.ts";
import { cappedHeaders, MAX_HEADER_BYTES, type NewRefusal } from "../../src/store/sqlite/refusals.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { removeTempDirs, tempDatabasePath } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const refused = (n: number, extra: Partial<NewRefusal> = {}): NewRefusal => ({
  direction: "inbound",
  intake: "ischedule",
  originator: `mailto:x${n}@stranger.example`,
  method: "REQUEST",
  component: "VEVENT",
  contentType: "text/calendar; component=VEVENT; method=REQUEST",
  peerDomain: "stranger.example",
  refusal: "The request has no DKIM-Signature header; this server accepts only signed requests.",
  responseStatus: 403,
  responseBody: "<error/>",
  bodySize: 1_000_000,
  headers: [["Originator", `mailto:x${n}@stranger.example`]],
  ...extra,
});

onBothBackends("the refusal log", (b) => {
  let store: Store;
  beforeEach(async () => {
    store = await b.fresh();
  });
  const count = async () => (await b.rows<{ n: number }>(store, "SELECT count(*) AS n FROM messages"))[0]!.n;
  const originators = async () =>
    (
      await b.rows<{ originator: string }>(
        store,
        "SELECT originator FROM messages WHERE refusal IS NOT NULL ORDER BY id",
      )
    ).map((r) => r.originator);

  test("keeps metadata only: no body, the body's size, the reason", async () => {
    const log = new RefusalLog(store, { windowMs: 10 });
    const uuid = log.record(refused(1));
    await log.close();
    const [row] = await b.rows<{ uuid: string; body: Uint8Array; body_size: number; refusal: string }>(
      store,
      "SELECT uuid, body, body_size, refusal FROM messages",
    );
    expect({ uuid: row!.uuid, bodyBytes: row!.body.byteLength, size: row!.body_size }).toEqual({
      uuid,
      bodyBytes: 0,
      size: 1_000_000,
    });
    expect(row!.refusal).toContain("DKIM-Signature");
  });

  test("a refused request can never get a delivery", async () => {
    const queue = new DeliveryQueue(store, queueOptions(new TestClock()));
    await expect(queue.accept(invitation({ refusal: "forged" }), recipients(1))).rejects.toThrow(
      "a refused request never gets a delivery",
    );
    expect(await count()).toBe(0);
  });

  test("is pruned oldest first past its row limit", async () => {
    const log = new RefusalLog(store, {
      limits: { maxCount: 10, maxBytes: 1 << 30 },
      windowMs: 0,
    });
    for (let i = 1; i <= 11; i++) {
      log.record(refused(i));
      await log.close();
    }
    // Past 10 it prunes to nine tenths: the 9 newest are left.
    expect(await originators()).toEqual(
      Array.from({ length: 9 }, (_, i) => `mailto:x${i + 3}@stranger.example`),
    );
  });

  test("is pruned oldest first past its byte limit", async () => {
    const log = new RefusalLog(store, {
      limits: { maxCount: 1000, maxBytes: 20_000 },
      windowMs: 0,
    });
    const big: [string, string][] = [["X-Padding", "p".repeat(1500)]];
    for (let i = 1; i <= 20; i++) {
      log.record(refused(i, { headers: big }));
      await log.close();
    }
    const totals = await store.refusalTotals();
    expect(totals.bytes).toBeLessThanOrEqual(20_000);
    expect(totals.count).toBeLessThan(20);
    expect((await originators()).at(-1)).toBe("mailto:x20@stranger.example");
    expect((await originators())[0]).not.toBe("mailto:x1@stranger.example");
  });

  test("a flood is written in batches: the first at once, the rest at the end of the window", async () => {
    const log = new RefusalLog(store, { windowMs: 100 });
    log.record(refused(1));
    await log.flush(); // nothing waits: the first row's write, started at once, ends
    expect(await count()).toBe(1);
    for (let i = 2; i <= 50; i++) log.record(refused(i));
    expect(await count()).toBe(1);
    await Bun.sleep(250);
    expect(await count()).toBe(50);
    await log.close();
  });
});

describe("the refusal log", () => {
  // SQLite only: max_page_count makes the file full (PostgreSQL's full disk is not simulated here).
  test("a full database does not change the refusal: its rows wait and are written once there is room", async () => {
    const db = openDatabase(":memory:");
    const errors: string[] = [];
    const log = new RefusalLog(createSqliteStore(db), {
      windowMs: 20,
      onWriteError: (reason) => errors.push(reason),
    });
    const count = () => db.query<{ n: number }, []>("SELECT count(*) AS n FROM messages").get()!.n;
    // SQLite answers SQLITE_FULL ("database or disk is full") once the file may not grow.
    const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    db.run(`PRAGMA max_page_count = ${pages}`);
    for (let i = 1; i <= 30; i++) expect(() => log.record(refused(i))).not.toThrow();
    await Bun.sleep(100);
    // A row or two may fit in the pages the file has.
    expect(count()).toBeLessThan(5);
    expect(errors).toEqual(["database or disk is full"]);
    db.run("PRAGMA max_page_count = 1000000");
    await Bun.sleep(100);
    expect(count()).toBe(30);
    await log.close();
    db.close();
  });

  test("header fields are kept up to a cap, and long values are cut", () => {
    const fields: [string, string][] = Array.from({ length: 50 }, (_, i) => [`X-H${i}`, "v".repeat(5000)]);
    const kept = cappedHeaders(fields);
    const bytes = kept.reduce((n, [a, b]) => n + a.length + b.length, 0);
    expect(bytes).toBeLessThan(MAX_HEADER_BYTES + 200);
    expect(kept[0]![1]).toContain("(5000 characters)");
    expect(kept.at(-1)).toEqual(["…", `${50 - (kept.length - 1)} more header fields not kept`]);
  });
});

describe("migrating refusals stored before", () => {
  test("a refused message loses its body and its failed deliveries, an accepted one is untouched", () => {
    const path = tempDatabasePath();
    const old = new Database(path);
    migrate(old, MIGRATIONS.slice(0, 2));
    const body = "BEGIN:VCALENDAR\r\nX-FORGED:1\r\nEND:VCALENDAR\r\n";
    // How a refusal was stored before: the answer's status, one failed delivery per recipient.
    const message = old.query<{ id: number }, [string, Uint8Array, number]>(
      `INSERT INTO messages (uuid, received_at, direction, intake, originator, method, component, content_type,
         body, response_status)
       VALUES (?, 1, 'inbound', 'ischedule', 'mailto:alice@example.com', 'REQUEST', 'VEVENT', 'text/calendar', ?, ?)
       RETURNING id`,
    );
    const delivery = old.query<never, [number, string]>(
      `INSERT INTO deliveries (message_id, recipient, domain, route, state, last_error, created_at, updated_at)
       VALUES (?, 'mailto:bob@example.com', 'example.com', 'local', 'failed', ?, 1, 1)`,
    );
    const forged = { messageId: message.get("u-forged", Buffer.from(body), 403)!.id };
    delivery.run(forged.messageId, "request refused (403): The request has no DKIM-Signature header.");
    const fine = { messageId: message.get("u-fine", Buffer.from(body), 200)!.id };
    delivery.run(fine.messageId, "");
    old.close();

    const db = openDatabase(path);
    const row = (id: number) =>
      db
        .query<{ refusal: string | null; body: Uint8Array; body_size: number | null }, [number]>(
          "SELECT refusal, body, body_size FROM messages WHERE id = ?",
        )
        .get(id)!;
    const deliveries = (id: number) =>
      db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM deliveries WHERE message_id = ?").get(id)!
        .n;
    expect(row(forged.messageId).refusal).toBe(
      "request refused (403): The request has no DKIM-Signature header.",
    );
    expect(row(forged.messageId).body.byteLength).toBe(0);
    expect(row(forged.messageId).body_size).toBe(Buffer.byteLength(body));
    expect(deliveries(forged.messageId)).toBe(0);
    expect(row(fine.messageId).refusal).toBeNull();
    expect(row(fine.messageId).body.byteLength).toBeGreaterThan(0);
    expect(deliveries(fine.messageId)).toBe(1);
    db.close();
  });
});
