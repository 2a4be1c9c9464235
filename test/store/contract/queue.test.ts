/**
 * The store contract, queue path: the same cases against SQLite and PostgreSQL (_stores.ts). What
 * the queue relies on: accept stores a message and its deliveries whole (the body byte for byte,
 * times as integer milliseconds), lease takes due deliveries oldest first and never one twice,
 * completion applies only under the lease it was given, renew/release/recovery/operator actions
 * change only the rows in the state they expect, and two nodes leasing at once never share a
 * delivery.
 */
import { expect, test } from "bun:test";
import { acceptQueued, BODY, lease, message, queued, T0 } from "./_data.ts";
import { contract } from "./_stores.ts";

const ATTEMPT = { startedAt: T0 + 1_000_000, durationMs: 12, route: "local" as const };

contract("store queue", (b) => {
  test("accept stores the message byte for byte, its deliveries queued, times as numbers", async () => {
    const store = await b.fresh();
    const stored = await acceptQueued(store, 2, { summary: "Planning" });
    expect(stored.deliveryIds).toHaveLength(2);
    expect(stored.copies.size).toBe(0);
    const row = (await store.messageRow(stored.messageId))!;
    expect(row.body).toBeInstanceOf(Uint8Array);
    expect([...row.body]).toEqual([...BODY]);
    expect(row.receivedAt).toBe(T0);
    expect(row.id).toBe(stored.messageId);
    expect(row.bodySize).toBe(BODY.length);
    expect(row.headers).toEqual([["Originator", "mailto:organizer@peer.example"]]);
    expect(row.summary).toBe("Planning");
    expect((await store.messageRow(row.uuid))?.id).toBe(stored.messageId);
    const deliveries = await store.deliveriesOf(stored.messageId);
    expect(deliveries.map((d) => [d.id, d.state, d.nextAttemptAt, d.createdAt, d.attempts])).toEqual([
      [stored.deliveryIds[0]!, "queued", T0, T0, 0],
      [stored.deliveryIds[1]!, "queued", T0 + 1, T0, 0],
    ]);
    expect(await store.countByState()).toMatchObject({ queued: 2, "in-flight": 0, delivered: 0 });
    expect(await store.nextDueAt()).toBe(T0);
  });

  test("a delivery decided at intake is stored final with its attempt", async () => {
    const store = await b.fresh();
    const decided = { ...queued("a@example.com"), state: "delivered" as const, nextAttemptAt: null };
    const stored = await store.accept({
      message: message(),
      deliveries: [{ ...decided, attempt: { ...ATTEMPT, startedAt: T0, outcome: "delivered" } }],
      nowMs: T0,
    });
    const detail = (await store.messageDetail(stored.messageId))!;
    expect(detail.deliveries).toHaveLength(1);
    const [d] = detail.deliveries;
    expect([d!.state, d!.attempts, d!.finalAt]).toEqual(["delivered", 1, T0]);
    expect(d!.attemptList.map((a) => [a.deliveryId, a.startedAt, a.outcome])).toEqual([
      [d!.id, T0, "delivered"],
    ]);
    expect(await store.nextDueAt()).toBeUndefined();
  });

  test("lease takes due deliveries oldest first up to the limit, and never one twice", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 5);
    await store.addDeliveries({
      messageId: (await acceptQueued(store, 0)).messageId,
      deliveries: [queued("later@example.com", T0 + 10_000_000)],
      nowMs: T0,
    });
    const first = await store.lease({ ...lease("node-a"), limit: 3 });
    expect(first.map((d) => d.id)).toEqual(ids.slice(0, 3));
    expect(first.every((d) => d.state === "in-flight" && d.leaseOwner === "node-a")).toBe(true);
    expect(first[0]!.leaseExpiresAt).toBe(T0 + 1_060_000);
    const second = await store.lease({ ...lease("node-b"), limit: 10 });
    expect(second.map((d) => d.id)).toEqual(ids.slice(3));
    expect(await store.countByState()).toMatchObject({ queued: 1, "in-flight": 5 });
  });

  test("leaseFitting leases what fits of the due window, and with rotate puts a full window's refused rows behind the rest", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 6);
    const asked: number[] = [];
    // A window of 4: the 1st and 3rd fit; the 2nd and 4th are refused (their target is full).
    const fits = (row: { id: number; domain: string }) => {
      asked.push(row.id);
      return row.id === ids[0] || row.id === ids[2];
    };
    const first = await store.leaseFitting({ ...lease("node-a"), limit: 10, window: 4, fits, rotate: true });
    expect(asked).toEqual(ids.slice(0, 4));
    expect(first.leased.map((d) => d.id)).toEqual([ids[0]!, ids[2]!]);
    expect(first.refused).toBe(2);
    expect(first.leased.every((d) => d.state === "in-flight" && d.leaseOwner === "node-a")).toBe(true);
    // The refused two are due now, behind the 5th and 6th, which were due before.
    const rest = await store.lease({ ...lease("node-b"), limit: 10 });
    expect(rest.map((d) => d.id)).toEqual([ids[4]!, ids[5]!, ids[1]!, ids[3]!]);
  });

  test("leaseFitting without rotate, or with a window not full, leaves refused rows where they are", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 3);
    const none = await store.leaseFitting({
      ...lease("n"),
      limit: 5,
      window: 2,
      fits: () => false,
      rotate: false,
    });
    expect(none).toEqual({ leased: [], refused: 2 });
    const short = await store.leaseFitting({
      ...lease("n"),
      limit: 5,
      window: 10,
      fits: () => false,
      rotate: true,
    });
    expect(short).toEqual({ leased: [], refused: 3 });
    expect((await store.lease({ ...lease("m"), limit: 10 })).map((d) => d.id)).toEqual(ids);
  });

  test("lease of some routes takes only theirs; leaseIds takes the queued ones of its ids", async () => {
    const store = await b.fresh();
    const stored = await store.accept({
      message: message(),
      deliveries: [queued("a@example.com"), { ...queued("b@example.org"), route: "imip" }],
      nowMs: T0,
    });
    const [local, imip] = stored.deliveryIds as [number, number];
    expect((await store.lease({ ...lease("n"), limit: 10, routes: ["imip"] })).map((d) => d.id)).toEqual([
      imip,
    ]);
    expect((await store.leaseIds({ ...lease("n"), ids: [local, imip] })).map((d) => d.id)).toEqual([local]);
  });

  test("completeMany applies outcomes under the lease only, and records every attempt", async () => {
    const store = await b.fresh();
    const { messageId, deliveryIds: ids } = await acceptQueued(store, 3);
    const [a, c, w] = ids as [number, number, number];
    await store.lease({ ...lease("node-a"), limit: 3 });
    const now = T0 + 1_000_100;
    const applied = await store.completeMany({
      owner: "node-a",
      nowMs: now,
      items: [
        {
          deliveryId: a,
          attempt: { ...ATTEMPT, outcome: "delivered", requestStatus: "2.0;Success" },
          next: { state: "delivered", requestStatus: "2.0;Success" },
        },
        {
          deliveryId: c,
          attempt: { ...ATTEMPT, outcome: "temporary", error: "503" },
          next: { state: "queued", nextAttemptAt: now + 60_000, error: "503", route: "imip", target: "mx" },
        },
        {
          deliveryId: w,
          attempt: { ...ATTEMPT, outcome: "pending" },
          next: { state: "waiting", nextAttemptAt: now + 5, error: "key not in DNS" },
        },
      ],
    });
    expect(applied).toEqual([true, true, true]);
    const rows = await store.deliveriesOf(messageId);
    expect(rows.map((d) => [d.state, d.attempts, d.nextAttemptAt, d.leaseOwner, d.finalAt])).toEqual([
      ["delivered", 1, null, null, now],
      ["queued", 1, now + 60_000, null, null],
      ["queued", 0, now + 5, null, null],
    ]);
    expect([rows[0]!.requestStatus, rows[1]!.route, rows[1]!.target, rows[2]!.lastError]).toEqual([
      "2.0;Success",
      "imip",
      "mx",
      "key not in DNS",
    ]);
    const detail = (await store.messageDetail(messageId))!;
    expect(detail.deliveries.map((d) => d.attemptList.map((x) => x.outcome))).toEqual([
      ["delivered"],
      ["temporary"],
      [],
    ]);
    // A stale owner's completion changes nothing (the attempt row alone is kept, as history).
    await store.leaseIds({ ...lease("node-b", now + 60_000), ids: [c] });
    const stale = await store.completeMany({
      owner: "node-a",
      nowMs: now + 60_001,
      items: [{ deliveryId: c, attempt: { ...ATTEMPT, outcome: "delivered" }, next: { state: "delivered" } }],
    });
    expect(stale).toEqual([false]);
    expect((await store.deliveryRow(c))?.leaseOwner).toBe("node-b");
  });

  test("renew and release act only on the owner's leases", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 2);
    await store.lease({ ...lease("node-a"), limit: 1 });
    await store.lease({ ...lease("node-b"), limit: 1 });
    const later = { owner: "node-a", nowMs: T0 + 1_030_000, leaseExpiresAt: T0 + 1_090_000 };
    expect(await store.renewLeases({ ...later, ids })).toEqual([ids[0]!]);
    expect((await store.deliveryRow(ids[0]!))?.leaseExpiresAt).toBe(T0 + 1_090_000);
    expect(await store.releaseLeases({ ids, owner: "node-a", nowMs: T0 + 1_040_000 })).toBe(1);
    const released = (await store.deliveryRow(ids[0]!))!;
    expect([released.state, released.nextAttemptAt, released.leaseOwner]).toEqual([
      "queued",
      T0 + 1_040_000,
      null,
    ]);
    expect((await store.deliveryRow(ids[1]!))?.state).toBe("in-flight");
  });

  test("recoverLeases breaks the expired leases as the plan decides, and counts the breaks", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 3);
    await store.lease({ ...lease("dead"), limit: 2 });
    await store.lease({ ...lease("alive", T0 + 1_050_000), limit: 1 });
    const seen: string[] = [];
    const report = await store.recoverLeases({
      nowMs: T0 + 1_070_000,
      expiredBy: T0 + 1_070_000,
      plan: (d) => {
        seen.push(`${d.id}:${d.leaseOwner}:${d.leaseBreaks}`);
        return d.id === ids[0]
          ? { state: "broken", error: "crashed" }
          : { state: "queued", nextAttemptAt: T0 + 2_000_000, error: "lease expired" };
      },
    });
    expect(seen).toEqual([`${ids[0]}:dead:0`, `${ids[1]}:dead:0`]);
    expect(report).toEqual({ broken: [ids[0]!], requeued: [ids[1]!] });
    const rows = await Promise.all(ids.map((id) => store.deliveryRow(id)));
    expect(rows.map((d) => [d!.state, d!.leaseBreaks, d!.nextAttemptAt])).toEqual([
      ["broken", 1, null],
      ["queued", 1, T0 + 2_000_000],
      ["in-flight", 0, T0 + 2],
    ]);
    // Start-up: every in-flight lease, and the streaks of queued deliveries end first.
    const startUp = await store.recoverLeases({
      nowMs: T0 + 1_080_000,
      endStreaks: true,
      plan: () => ({ state: "queued", nextAttemptAt: T0 + 1_085_000, error: "restart" }),
    });
    expect(startUp).toEqual({ broken: [], requeued: [ids[2]!] });
    expect((await store.deliveryRow(ids[1]!))?.leaseBreaks).toBe(0);
    expect((await store.deliveryRow(ids[2]!))?.leaseBreaks).toBe(1);
  });

  test("operator actions change only deliveries in the states they accept; wakeWaiting wakes by prefix", async () => {
    const store = await b.fresh();
    const { deliveryIds: ids } = await acceptQueued(store, 3);
    const [a, c, d] = ids as [number, number, number];
    expect(await store.operatorAction({ action: "cancel", ids: [a], nowMs: T0 + 5 })).toBe(1);
    expect(await store.operatorAction({ action: "retryNow", ids: [a, c], nowMs: T0 + 6 })).toBe(1);
    expect(await store.operatorAction({ action: "requestImip", ids: [c], nowMs: T0 + 7 })).toBe(1);
    expect([(await store.deliveryRow(a))?.state, (await store.deliveryRow(c))?.route]).toEqual([
      "cancelled",
      "imip",
    ]);
    await store.lease({ ...lease("n"), limit: 1, routes: ["local"] });
    const t = T0 + 1_000_000;
    await store.completeMany({
      owner: "n",
      nowMs: t,
      items: [
        {
          deliveryId: d,
          attempt: { ...ATTEMPT, outcome: "pending" },
          next: { state: "waiting", nextAttemptAt: t + 90_000, error: "waiting for DNS: s1" },
        },
      ],
    });
    expect(await store.wakeWaiting({ route: "local", prefix: "waiting for", nowMs: t + 10 })).toBe(1);
    expect((await store.deliveryRow(d))?.nextAttemptAt).toBe(t + 10);
    expect(await store.countByState()).toMatchObject({ queued: 2, cancelled: 1 });
  });

  test("the console's reads: ids, counts, failures, peers, selectors, the inbox and the live cursor", async () => {
    const store = await b.fresh();
    const cursor = await store.changeCursor(T0);
    const local = {
      ...queued("Alice@example.com"),
      target: "store",
      state: "delivered" as const,
      nextAttemptAt: null,
    };
    const remote = { ...queued("bob@peer.example"), route: "ischedule" as const };
    const { messageId, deliveryIds } = await store.accept({
      message: message({
        peerDomain: "peer.example",
        dkimResult: "pass",
        dkimSelector: "s1",
        body: "BEGIN:VCALENDAR",
      }),
      deliveries: [{ ...local, attempt: { ...ATTEMPT, startedAt: T0, outcome: "delivered" } }, remote],
      nowMs: T0,
    });
    const [l, r] = deliveryIds as [number, number];
    await store.lease({ ...lease("n"), limit: 1 });
    const failedAt = T0 + 1_000_000;
    await store.completeMany({
      owner: "n",
      nowMs: failedAt,
      items: [
        {
          deliveryId: r,
          attempt: { ...ATTEMPT, route: "ischedule", outcome: "temporary", error: "503", httpStatus: 503 },
          next: { state: "queued", nextAttemptAt: failedAt + 60_000, error: "503" },
        },
      ],
    });
    expect(await store.deliveryIdsOfMessage(messageId)).toEqual([l, r]);
    expect(await store.actionableDeliveries([l, r, 999], "cancel")).toEqual([r]);
    expect(await store.unknownDeliveries([r, 999, l])).toEqual([999]);
    expect(await store.deliveryStateCounts()).toMatchObject({ delivered: 1, queued: 1, failed: 0 });
    const failures = await store.recentFailures(10);
    expect(
      failures.map((f) => [f.deliveryId, f.messageId, f.startedAt, f.httpStatus, f.state, f.error]),
    ).toEqual([[r, messageId, ATTEMPT.startedAt, 503, "queued", "503"]]);
    expect(await store.lastAttempt({ route: "local", domain: "example.com" })).toEqual({
      outcome: "delivered",
      startedAt: T0,
      error: null,
    });
    expect(await store.lastAttempt({ route: "imip" })).toBeNull();
    expect(await store.inboundPeerStats(T0)).toEqual([
      { domain: "peer.example", messages: 1, dkimPass: 1, dkimFail: 0, lastAt: T0 },
    ]);
    expect(await store.outboundPeerStats(T0)).toEqual([
      { domain: "example.com", deliveries: 0, delivered: 0, failed: 0, pending: 0, lastAt: T0 },
      { domain: "peer.example", deliveries: 1, delivered: 0, failed: 0, pending: 1, lastAt: failedAt },
    ]);
    expect(await store.selectorsSeen("peer.example")).toEqual([
      { selector: "s1", messages: 1, lastVerifiedAt: T0 },
    ]);
    const inbox = await store.inbox({ recipient: "alice@EXAMPLE.com", limit: 5 });
    expect(inbox.items.map((i) => [i.recipient, i.body, i.receivedAt])).toEqual([
      ["Alice@example.com", "BEGIN:VCALENDAR", T0],
    ]);
    expect(inbox.nextBeforeId).toBeUndefined();
    const buckets = await store.attemptsByOutcome({ nowMs: T0 + 2_000_000, sizeMs: 1_000_000, count: 2 });
    expect(buckets).toEqual([
      { startMs: T0, counts: { delivered: 1 } },
      { startMs: T0 + 1_000_000, counts: { temporary: 1 } },
    ]);
    expect(await store.changedMessages(cursor, { nowMs: failedAt + 1, overlapMs: 2000 })).toEqual([
      messageId,
    ]);
    expect(await store.changedMessages(cursor, { nowMs: failedAt + 2, overlapMs: 2000 })).toEqual([]);
  });

  test("the log: filtered pages newest first, summaries, and the deliveries a bulk action would change", async () => {
    const store = await b.fresh();
    const term = (
      key: "recipient" | "status" | "organizer" | "method",
      values: string[],
      negated = false,
    ) => ({ key, values, negated });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const stored = await store.accept({
        message: message({ organizer: `mailto:Org${i}@example.com`, method: i === 2 ? "CANCEL" : "REQUEST" }),
        deliveries: [queued(`Ann${i}@a.example`), queued(`bob@b.example`)],
        nowMs: T0,
      });
      ids.push(stored.messageId);
    }
    await store.operatorAction({
      action: "cancel",
      ids: (await store.deliveriesOf(ids[0]!)).map((d) => d.id),
      nowMs: T0 + 1,
    });
    const first = await store.searchMessages({ filter: [], limit: 2 });
    expect(first.messages.map((m) => m.id)).toEqual([ids[2]!, ids[1]!]);
    expect(first.nextBeforeId).toBe(ids[1]!);
    const second = await store.searchMessages({ filter: [], limit: 2, beforeId: first.nextBeforeId });
    expect(
      second.messages.map((m) => [m.id, m.domains, m.recipients, m.deliveryStates, m.receivedAt]),
    ).toEqual([[ids[0]!, ["a.example", "b.example"], 2, { cancelled: 2 }, T0]]);
    expect(second.nextBeforeId).toBeUndefined();
    const byRecipient = await store.searchMessages({
      filter: [term("recipient", ["ann1@A.EXAMPLE"])],
      limit: 10,
    });
    expect(byRecipient.messages.map((m) => m.id)).toEqual([ids[1]!]);
    const notCancel = await store.searchMessages({
      filter: [term("method", ["CANCEL"], true), term("organizer", ["mailto:org0@EXAMPLE.com"], true)],
      limit: 10,
    });
    expect(notCancel.messages.map((m) => m.id)).toEqual([ids[1]!]);
    expect(
      (await store.summariesOf([ids[0]!, ids[2]!], [term("status", ["queued"])])).map((m) => m.id),
    ).toEqual([ids[2]!]);
    const forCancel = await store.deliveriesForAction({
      filter: [term("recipient", ["BOB@b.example"])],
      action: "cancel",
      max: 10,
    });
    const bobs = await Promise.all(ids.slice(1).map(async (id) => (await store.deliveriesOf(id))[1]!.id));
    expect(forCancel).toEqual(bobs);
  });

  test("two nodes leasing at once never get the same delivery, and together lease every one", async () => {
    const first = await b.fresh();
    const second = await b.another(first);
    const N = 120;
    await acceptQueued(first, N);
    const leaseAll = async (store: typeof first, owner: string) => {
      const got: number[] = [];
      for (;;) {
        const batch = await store.lease({ ...lease(owner), limit: 7 });
        if (batch.length === 0) return got;
        got.push(...batch.map((d) => d.id));
      }
    };
    const [a, c] = await Promise.all([leaseAll(first, "node-a"), leaseAll(second, "node-b")]);
    expect(a.length + c.length).toBe(N);
    expect(new Set([...a, ...c]).size).toBe(N);
    expect(await first.countByState()).toMatchObject({ queued: 0, "in-flight": N });
  });
});
