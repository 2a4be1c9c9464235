/**
 * The indexes an accepted message is written to, each with the read that needs it. Every index on
 * messages, deliveries and attempts costs each commit that touches it one more 4 KB WAL frame and a
 * B-tree insert (docs/perf-notes.md, "What each index and setting costs"): an index appears here only
 * beside the query it serves, and the test fails when one is added without a reason or one that was
 * dropped comes back.
 */
import { describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";

/** Index -> the read that needs it (src/store/sqlite/FILE). */
const NEEDED: Record<string, string> = {
  // messages
  sqlite_autoindex_messages_1: "uuid UNIQUE: the console's message page by uuid (messages.ts byUuid)",
  messages_uid: "the log's uid: filter (message-search.ts)",
  messages_received_at: "retention's oldest messages first (retention.ts), the log's before:/after:",
  messages_peer: "inbound per-peer traffic (console-stats.ts inbound), the log's peer: filter",
  messages_refused: "refusal totals (refusals.ts); a refusal only, never an accepted message",
  // deliveries
  sqlite_autoindex_deliveries_1: "UNIQUE (message_id, recipient): the deliveries of a message",
  deliveries_due: "the queue's next due deliveries (deliveries.ts lease); queued ones only",
  deliveries_due_route: "a worker that leases some routes (deliveries.ts); queued ones only",
  deliveries_leases: "lease recovery (deliveries.ts); in-flight ones only",
  deliveries_recipient: "the store target's inbox (inbox.ts), the log's recipient: filter",
  deliveries_domain: "outbound per-peer outcomes (console-stats.ts outbound), the log's peer: filter",
  deliveries_updated: "the live view's changed deliveries (console-stats.ts changedDeliveries)",
  deliveries_state: "counts per state and the log's status: filter; every state but delivered",
  // attempts
  attempts_delivery: "a delivery's attempts (message page), ON DELETE CASCADE from retention",
  attempts_started: "the dashboard's attempts by outcome over time (console-stats.ts)",
  attempts_failed: "the dashboard's recent failures (console-stats.ts); failures only",
};

describe("the indexes of an accepted message", () => {
  test("every index on messages, deliveries and attempts is one a read needs; deliveries_done is gone", () => {
    const db = openDatabase(":memory:");
    const names = db
      .query<{ name: string }, []>(
        `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('messages', 'deliveries', 'attempts')
          ORDER BY name`,
      )
      .all()
      .map((r) => r.name);
    expect(names).toEqual(Object.keys(NEEDED).sort());
    expect(names).not.toContain("deliveries_done");
    db.close();
  });

  test("counting deliveries per state stays exact without an index of delivered ones", async () => {
    const db = openDatabase(":memory:");
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(new TestClock()));
    await queue.accept(invitation(), recipients(3));
    await queue.accept(invitation({ uid: "b" }), [
      ...recipients(2, { state: "delivered", requestStatus: "2.0;Success" }),
      ...recipients(1, { recipient: "mailto:x@peer.example", state: "failed", requestStatus: "3.7;Invalid" }),
    ]);
    expect(await queue.countByState()).toEqual({
      queued: 3,
      "in-flight": 0,
      delivered: 2,
      failed: 1,
      "sent-imip": 0,
      cancelled: 0,
      broken: 0,
    });
    db.close();
  });
});
