import { describe, expect, test } from "bun:test";
import { storedAnswer } from "../../src/inbound/replays.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { getMessageRow, recordResponse } from "../../src/store/sqlite/messages.ts";
import { findReplay, ReplayConflictError } from "../../src/store/sqlite/replays.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { statuses } from "../support/isched.ts";

describe("replay keys", () => {
  test("a key answers for its message while in force, and a second message cannot claim it", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const replay = { key: "dkim\na.example\nmsg-1\nBH", expiresAt: c.ms + 60_000 };
    const first = await queue.accept(invitation({ replay }), recipients(1));
    expect(findReplay(db, { key: replay.key, nowMs: c.ms })).toBe(first.messageId);
    expect(findReplay(db, { key: "dkim\nb.example\nmsg-1\nBH", nowMs: c.ms })).toBeUndefined();
    // The claim and the message are one transaction: a conflicting claim stores nothing.
    await expect(queue.accept(invitation({ uid: "second", replay }), recipients(1))).rejects.toThrow(
      ReplayConflictError,
    );
    const stored = db.query<{ n: number }, []>("SELECT count(*) AS n FROM messages").get()!.n;
    expect(stored).toBe(1);
    db.close();
  });

  test("an expired key answers for nothing and is taken over by the next message", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const key = "dkim\na.example\n\nBH";
    await queue.accept(invitation({ replay: { key, expiresAt: c.ms + 1000 } }), recipients(1));
    c.ms += 1000;
    expect(findReplay(db, { key, nowMs: c.ms })).toBeUndefined();
    const later = await queue.accept(invitation({ replay: { key, expiresAt: c.ms + 1000 } }), recipients(1));
    expect(findReplay(db, { key, nowMs: c.ms })).toBe(later.messageId);
    db.close();
  });

  test("claims prune expired keys, so the table holds about one window of traffic", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    for (let i = 0; i < 40; i++)
      await queue.accept(invitation({ replay: { key: `k${i}`, expiresAt: c.ms + 1000 } }), recipients(1));
    c.ms += 2000;
    for (let i = 0; i < 3; i++)
      await queue.accept(invitation({ replay: { key: `new${i}`, expiresAt: c.ms + 1000 } }), recipients(1));
    const left = db.query<{ n: number }, []>("SELECT count(*) AS n FROM replay_keys").get()!.n;
    // Each claim prunes up to 16 expired keys: 3 claims take all 40, and leave their own 3.
    expect(left).toBe(3);
    db.close();
  });

  test("a key whose message was stored but never answered (a crash) answers from its deliveries", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const key = "dkim\na.example\nmsg-9\nBH";
    await queue.accept(invitation({ replay: { key, expiresAt: c.ms + 60_000 } }), [
      { recipient: "mailto:ann@example.com", domain: "example.com", route: "local" },
      {
        recipient: "mailto:ghost@example.com",
        domain: "example.com",
        route: "local",
        state: "failed",
        requestStatus: "3.7;Invalid calendar user",
        lastError: "no such user",
      },
    ]);
    const answer = await storedAnswer(queue, key);
    expect(answer?.status).toBe(200);
    expect(statuses(answer!.xml)).toEqual({
      // Held, not yet delivered: 1.1 (src/inbound/answers.ts says why not 1.0).
      "mailto:ann@example.com": "1.1;Sent",
      "mailto:ghost@example.com": "3.7;Invalid calendar user",
    });
    db.close();
  });

  test("recordResponse() keeps the answer we gave, so a replay can get it again", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock();
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const { messageId } = await queue.accept(
      invitation({ peerDomain: "a.example", remoteMessageId: "m", bodyHash: "H", dkimResult: "trusted" }),
      recipients(1),
    );
    expect(recordResponse(db, { messageId, status: 200, body: "<schedule-response/>" })).toBe(true);
    expect(recordResponse(db, { messageId: 999, status: 200 })).toBe(false);
    expect(getMessageRow(db, messageId)).toMatchObject({
      responseStatus: 200,
      responseBody: "<schedule-response/>",
    });
    db.close();
  });
});
