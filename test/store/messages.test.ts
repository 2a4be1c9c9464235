import { describe, expect, test } from "bun:test";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/database.ts";
import { findReplay, recordResponse } from "../../src/store/messages.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";

describe("replay lookup", () => {
  test("findReplay() finds the first message a peer sent with an iSchedule-Message-ID, and only that peer's", () => {
    const db = openDatabase(":memory:");
    const queue = new DeliveryQueue(db, queueOptions(new TestClock()));
    const inbound = (peerDomain: string, remoteMessageId: string) =>
      invitation({ direction: "inbound", intake: "ischedule", peerDomain, remoteMessageId });
    const first = queue.accept(inbound("a.example", "msg-1"), recipients(1)).messageId;
    queue.accept(inbound("a.example", "msg-1"), recipients(1));
    const other = queue.accept(inbound("b.example", "msg-1"), recipients(1)).messageId;
    expect(findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-1" })?.id).toBe(first);
    expect(findReplay(db, { peerDomain: "b.example", remoteMessageId: "msg-1" })?.id).toBe(other);
    expect(findReplay(db, { peerDomain: "a.example", remoteMessageId: "msg-2" })).toBeUndefined();
    db.close();
  });

  test("recordResponse() keeps the answer we gave, so a replay can get it again", () => {
    const db = openDatabase(":memory:");
    const queue = new DeliveryQueue(db, queueOptions(new TestClock()));
    const { messageId } = queue.accept(
      invitation({ peerDomain: "a.example", remoteMessageId: "m" }),
      recipients(1),
    );
    expect(recordResponse(db, { messageId, status: 200, body: "<schedule-response/>" })).toBe(true);
    expect(recordResponse(db, { messageId: 999, status: 200 })).toBe(false);
    expect(findReplay(db, { peerDomain: "a.example", remoteMessageId: "m" })).toMatchObject({
      responseStatus: 200,
      responseBody: "<schedule-response/>",
    });
    db.close();
  });
});
