/** Replay keys and the answer kept for a replay, through the Store on both backends (test/support/store-backends.ts). */
import { expect, test } from "bun:test";
import { storedAnswer } from "../../src/inbound/replays.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { ReplayConflictError } from "../../src/store/errors.ts";
import type { Store } from "../../src/store/store.ts";
import { invitation, queueOptions, recipients, TestClock } from "../queue/_fixtures.ts";
import { statuses } from "../support/isched.ts";
import { onBothBackends } from "../support/store-backends.ts";

onBothBackends("replay keys", (b) => {
  const holder = (store: Store, key: string, nowMs: number) => store.replayHolder({ key, nowMs });

  test("a key answers for its message while in force, and a second message cannot claim it", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    const replay = { key: "dkim\na.example\nmsg-1\nBH", expiresAt: c.ms + 60_000 };
    const first = await queue.accept(invitation({ replay }), recipients(1));
    expect(await holder(store, replay.key, c.ms)).toBe(first.messageId);
    expect(await holder(store, "dkim\nb.example\nmsg-1\nBH", c.ms)).toBeUndefined();
    // The claim and the message are one transaction: a conflicting claim stores nothing.
    await expect(queue.accept(invitation({ uid: "second", replay }), recipients(1))).rejects.toThrow(
      ReplayConflictError,
    );
    const stored = (await b.rows<{ n: number }>(store, "SELECT count(*) AS n FROM messages"))[0]!.n;
    expect(stored).toBe(1);
  });

  test("an expired key answers for nothing and is taken over by the next message", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    const key = "dkim\na.example\n\nBH";
    await queue.accept(invitation({ replay: { key, expiresAt: c.ms + 1000 } }), recipients(1));
    c.ms += 1000;
    expect(await holder(store, key, c.ms)).toBeUndefined();
    const later = await queue.accept(invitation({ replay: { key, expiresAt: c.ms + 1000 } }), recipients(1));
    expect(await holder(store, key, c.ms)).toBe(later.messageId);
  });

  test("claims prune expired keys, so the table holds about one window of traffic", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    for (let i = 0; i < 40; i++)
      await queue.accept(invitation({ replay: { key: `k${i}`, expiresAt: c.ms + 1000 } }), recipients(1));
    c.ms += 2000;
    for (let i = 0; i < 3; i++)
      await queue.accept(invitation({ replay: { key: `new${i}`, expiresAt: c.ms + 1000 } }), recipients(1));
    const left = (await b.rows<{ n: number }>(store, "SELECT count(*) AS n FROM replay_keys"))[0]!.n;
    // Each claim prunes up to 16 expired keys: 3 claims take all 40, and leave their own 3.
    expect(left).toBe(3);
  });

  test("a key whose message was stored but never answered (a crash) answers from its deliveries", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
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
  });

  test("recordResponse() keeps the answer we gave, so a replay can get it again", async () => {
    const store = await b.fresh();
    const c = new TestClock();
    const queue = new DeliveryQueue(store, queueOptions(c));
    const { messageId } = await queue.accept(
      invitation({ peerDomain: "a.example", remoteMessageId: "m", bodyHash: "H", dkimResult: "trusted" }),
      recipients(1),
    );
    await store.recordResponse({ messageId, status: 200, body: "<schedule-response/>" });
    await store.recordResponse({ messageId: 999, status: 200, body: "" });
    expect(await store.messageRow(999)).toBeUndefined();
    expect(await store.messageRow(messageId)).toMatchObject({
      responseStatus: 200,
      responseBody: "<schedule-response/>",
    });
  });
});
