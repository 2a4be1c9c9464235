import { describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/database.ts";
import { findReplay, recordResponse } from "../../src/store/messages.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";

describe("replay lookup", () => {
  const clock = () => new TestClock();

  test("findReplay() finds the first verified message a peer sent with an iSchedule-Message-ID and body, and only that peer's", () => {
    const db = openDatabase(":memory:");
    const c = clock();
    const queue = new DeliveryQueue(db, queueOptions(c));
    const inbound = (peerDomain: string, remoteMessageId: string, extra: object = {}) =>
      invitation({
        direction: "inbound",
        intake: "ischedule",
        peerDomain,
        remoteMessageId,
        bodyHash: "H1",
        dkimResult: "pass",
        ...extra,
      });
    // A forged (failed) request with the same id must never answer for the real one.
    queue.accept(inbound("a.example", "msg-1", { dkimResult: "fail" }), recipients(1));
    const first = queue.accept(inbound("a.example", "msg-1"), recipients(1)).messageId;
    queue.accept(inbound("a.example", "msg-1"), recipients(1));
    const other = queue.accept(inbound("b.example", "msg-1"), recipients(1)).messageId;
    const since = c.ms - 1000;
    expect(
      findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-1", bodyHash: "H1", since })?.id,
    ).toBe(first);
    expect(
      findReplay(db, { peerDomain: "b.example", remoteMessageId: "msg-1", bodyHash: "H1", since })?.id,
    ).toBe(other);
    expect(
      findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-2", bodyHash: "H1", since }),
    ).toBeUndefined();
    expect(
      findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-1", bodyHash: "H2", since }),
    ).toBeUndefined();
    expect(
      findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-1", bodyHash: "H1", since: c.ms + 1 }),
    ).toBeUndefined();
    db.close();
  });

  test("recordResponse() keeps the answer we gave, so a replay can get it again", () => {
    const db = openDatabase(":memory:");
    const c = clock();
    const queue = new DeliveryQueue(db, queueOptions(c));
    const { messageId } = queue.accept(
      invitation({ peerDomain: "a.example", remoteMessageId: "m", bodyHash: "H", dkimResult: "trusted" }),
      recipients(1),
    );
    expect(recordResponse(db, { messageId, status: 200, body: "<schedule-response/>" })).toBe(true);
    expect(recordResponse(db, { messageId: 999, status: 200 })).toBe(false);
    expect(
      findReplay(db, { peerDomain: "a.example", remoteMessageId: "m", bodyHash: "H", since: 0 }),
    ).toMatchObject({
      responseStatus: 200,
      responseBody: "<schedule-response/>",
    });
    db.close();
  });
});
