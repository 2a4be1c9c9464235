/**
 * The store contract, key claims and configuration: the same cases against SQLite and PostgreSQL
 * (_stores.ts). A replay key and a recipient's iTIP key are held by one message at a time, also
 * when two nodes accept copies at once (on PostgreSQL the second claim waits on the primary key,
 * then finds it in force); the capabilities serial moves once per change of fingerprint; sessions
 * and the admin password.
 */
import { expect, test } from "bun:test";
import { ItipCopyError, ReplayConflictError } from "../../../src/store/errors.ts";
import { message, queued, T0 } from "./_data.ts";
import { contract } from "./_stores.ts";

const WINDOW_MS = 600_000;

const replayed = (key: string, receivedAt = T0) =>
  message({ receivedAt, replay: { key, expiresAt: receivedAt + WINDOW_MS } });

function itipCopy(recipients: readonly string[], receivedAt = T0) {
  return {
    message: message({
      receivedAt,
      itipKeys: {
        keys: recipients.map((r) => ({ recipient: r, key: `uid-1|seq-0|${r}` })),
        expiresAt: receivedAt + WINDOW_MS,
      },
    }),
    deliveries: recipients.map((r) => queued(r)),
    nowMs: receivedAt,
  };
}

/** The error a rejected promise gave, or "stored". */
const settled = (p: Promise<unknown>) =>
  p.then(
    () => "stored" as const,
    (e: unknown) => e,
  );

contract("store claims and configuration", (b) => {
  test("a replay key in force is held by one message; an expired one is taken over", async () => {
    const store = await b.fresh();
    const first = await store.accept({
      message: replayed("k1"),
      deliveries: [queued("a@example.com")],
      nowMs: T0,
    });
    expect(await store.replayHolder({ key: "k1", nowMs: T0 + 1 })).toBe(first.messageId);
    const copy = await settled(
      store.accept({ message: replayed("k1", T0 + 5), deliveries: [], nowMs: T0 + 5 }),
    );
    expect(copy).toBeInstanceOf(ReplayConflictError);
    expect(await store.countByState()).toMatchObject({ queued: 1 });
    const later = T0 + WINDOW_MS + 1;
    expect(await store.replayHolder({ key: "k1", nowMs: later })).toBeUndefined();
    const again = await store.accept({ message: replayed("k1", later), deliveries: [], nowMs: later });
    expect(await store.replayHolder({ key: "k1", nowMs: later })).toBe(again.messageId);
  });

  test("two nodes accepting copies of one replay key at once store one message", async () => {
    const first = await b.fresh();
    const second = await b.another(first);
    const outcomes = await Promise.all(
      [first, second, first, second].map((s) =>
        settled(s.accept({ message: replayed("same"), deliveries: [queued("a@example.com")], nowMs: T0 })),
      ),
    );
    expect(outcomes.filter((o) => o === "stored")).toHaveLength(1);
    expect(outcomes.filter((o) => o instanceof ReplayConflictError)).toHaveLength(3);
    expect(await second.countByState()).toMatchObject({ queued: 1 });
  });

  test("an iTIP copy is refused whole when every recipient is held, and delivered to the others", async () => {
    const store = await b.fresh();
    const first = await store.accept(itipCopy(["a@example.com", "b@example.com"]));
    const whole = await settled(store.accept(itipCopy(["a@example.com", "b@example.com"], T0 + 5)));
    expect(whole).toBeInstanceOf(ItipCopyError);
    expect([...(whole as ItipCopyError).held]).toEqual([
      ["a@example.com", first.messageId],
      ["b@example.com", first.messageId],
    ]);
    const part = await store.accept(itipCopy(["b@example.com", "c@example.com"], T0 + 6));
    expect([...part.copies]).toEqual([["b@example.com", first.messageId]]);
    expect((await store.deliveriesOf(part.messageId)).map((d) => d.recipient)).toEqual(["c@example.com"]);
    await store.noteResent({ messageIds: [first.messageId, first.messageId], nowMs: T0 + 7 });
    const row = (await store.messageRow(first.messageId))!;
    expect([row.resends, row.lastResentAt]).toEqual([1, T0 + 7]);
  });

  test("two nodes accepting one iTIP revision at once deliver it once", async () => {
    const first = await b.fresh();
    const second = await b.another(first);
    const outcomes = await Promise.all(
      [first, second].map((s) => settled(s.accept(itipCopy(["a@example.com", "b@example.com"])))),
    );
    expect(outcomes.filter((o) => o === "stored")).toHaveLength(1);
    expect(outcomes.filter((o) => o instanceof ItipCopyError)).toHaveLength(1);
    expect(await first.countByState()).toMatchObject({ queued: 2 });
  });

  test("recordResponse keeps the answer given", async () => {
    const store = await b.fresh();
    const { messageId } = await store.accept({ message: message(), deliveries: [], nowMs: T0 });
    await store.recordResponse({ messageId, status: 200, body: "<schedule-response/>" });
    const row = (await store.messageRow(messageId))!;
    expect([row.responseStatus, row.responseBody]).toEqual([200, "<schedule-response/>"]);
  });
  test("settings, and a capabilities serial that moves once per new fingerprint, also from two nodes", async () => {
    const store = await b.fresh();
    const other = await b.another(store);
    expect(await store.getSetting("x")).toBeUndefined();
    await store.setSetting("x", "1");
    await other.setSetting("x", "2");
    expect(await store.getSetting("x")).toBe("2");
    expect(await store.capabilitiesSerial("fp-1")).toBe(1);
    expect(await store.capabilitiesSerial("fp-1")).toBe(1);
    expect(await Promise.all([store.capabilitiesSerial("fp-2"), other.capabilitiesSerial("fp-2")])).toEqual([
      2, 2,
    ]);
  });

  test("console sessions, and setting the admin password ends them all", async () => {
    const store = await b.fresh();
    for (const [i, id] of ["s1", "s2", "s3"].entries()) await store.insertSession(id, T0 + i);
    await store.touchSession("s1", T0 + 10);
    expect(await store.session("s1")).toEqual({ idHash: "s1", createdAt: T0, lastSeenAt: T0 + 10 });
    await store.keepNewestSessions(2);
    expect(await store.session("s2")).toBeUndefined();
    expect(await store.countSessions()).toBe(2);
    await store.expireSessions({ seenBefore: T0 + 5, createdBefore: 0 });
    expect(await store.countSessions()).toBe(1);
    await store.setSetting("console.setup-token", "t");
    await store.setAdminPassword({
      setting: "console.password",
      hash: "h",
      voidSettings: ["console.setup-token"],
    });
    expect([
      await store.getSetting("console.password"),
      await store.getSetting("console.setup-token"),
    ]).toEqual(["h", undefined]);
    expect(await store.countSessions()).toBe(0);
  });

  test("peer policies and peer facts: upserts, and a fact's learned time kept while its value is", async () => {
    const store = await b.fresh();
    const policy = {
      domain: "peer.example",
      trust: "dkim" as const,
      allowFrom: null,
      signers: "a.example",
      note: "n",
      updatedAt: T0,
    };
    await store.setPeerPolicy(policy);
    await store.setPeerPolicy({ ...policy, trust: "unsigned", allowFrom: "192.0.2.0/24", updatedAt: T0 + 1 });
    await store.setPeerPolicy({ ...policy, domain: "a.example" });
    expect(await store.peerPolicy("peer.example")).toEqual({
      ...policy,
      trust: "unsigned",
      allowFrom: "192.0.2.0/24",
      updatedAt: T0 + 1,
    });
    expect((await store.peerPolicies()).map((p) => p.domain)).toEqual(["a.example", "peer.example"]);
    expect([await store.removePeerPolicy("a.example"), await store.removePeerPolicy("a.example")]).toEqual([
      true,
      false,
    ]);
    const fact = {
      domain: "peer.example",
      kind: "key" as const,
      name: "s1",
      value: "{}",
      source: "traffic" as const,
    };
    await store.recordPeerFact({ ...fact, atMs: T0 });
    await store.recordPeerFact({ ...fact, atMs: T0 + 10 });
    expect((await store.peerFactsOf("peer.example")).map((f) => [f.learnedAt, f.confirmedAt])).toEqual([
      [T0, T0 + 10],
    ]);
    await store.recordPeerFact({ ...fact, value: '{"v":1}', atMs: T0 + 20 });
    expect((await store.peerFactsOf("peer.example")).map((f) => [f.learnedAt, f.confirmedAt])).toEqual([
      [T0 + 20, T0 + 20],
    ]);
  });

  test("keys: activation retires the domain's active key, in one step", async () => {
    const store = await b.fresh();
    const key = {
      domain: "example.com",
      algorithm: "ed25519-sha256",
      bits: 256,
      privateKeyPem: "PEM",
      record: "v=DKIM1",
    };
    await store.insertKey({ ...key, selector: "s1", state: "active", createdAt: T0, activatedAt: T0 });
    await store.insertKey({ ...key, selector: "s2", state: "pending", createdAt: T0 + 1, activatedAt: null });
    const s2 = (await store.keys({ domain: "example.com" })).find((k) => k.selector === "s2")!;
    expect(await store.activateKey({ id: s2.id, nowMs: T0 + 5, retireAfter: T0 + 100 })).toEqual({
      retiring: ["s1"],
    });
    expect((await store.keys()).map((k) => [k.selector, k.state, k.activatedAt, k.retireAfter])).toEqual([
      ["s1", "retiring", T0, T0 + 100],
      ["s2", "active", T0 + 5, null],
    ]);
    const s1 = (await store.keys()).find((k) => k.selector === "s1")!;
    await store.setKeyState({ id: s1.id, state: "retired" });
    expect((await store.keys({ domain: "example.com" }))[0]!.state).toBe("retired");
  });

  test("monitoring: queue depth and oldest queued delivery, a probe write, the database's size", async () => {
    const store = await b.fresh();
    expect(await store.queueFacts()).toEqual({ depth: 0, oldestCreatedAtMs: undefined });
    await store.accept({
      message: message(),
      deliveries: [queued("a@example.com"), queued("b@example.com")],
      nowMs: T0 + 3,
    });
    await store.lease({ owner: "n", nowMs: T0 + 10, leaseExpiresAt: T0 + 20, limit: 1 });
    expect(await store.queueFacts()).toEqual({ depth: 2, oldestCreatedAtMs: T0 + 3 });
    await store.probeWrite(T0 + 30);
    expect(await store.getSetting("health.probed-at")).toBe(String(T0 + 30));
    const space = await store.databaseSpace();
    expect(space.bytes).toBeGreaterThan(0);
    expect(space.freeBytes).toBeGreaterThanOrEqual(0);
  });

  test("refusals are stored without a body and pruned oldest first past the limits, in one step", async () => {
    const store = await b.fresh();
    const refusal = (i: number) => {
      const { body: _, ...m } = message({ receivedAt: T0 + i });
      return { ...m, refusal: `no key for selector s${i}`, bodySize: 5000 + i };
    };
    const limits = { maxCount: 3, maxBytes: 1_000_000 };
    let totals = await store.refusalTotals();
    expect(totals).toEqual({ count: 0, bytes: 0 });
    totals = await store.insertRefusals({ rows: [refusal(1), refusal(2)], totals, limits });
    expect(totals).toEqual(await store.refusalTotals());
    expect(totals.count).toBe(2);
    totals = await store.insertRefusals({ rows: [refusal(3), refusal(4)], totals, limits });
    // Past 3 rows: pruned to 90% of the limit (2 rows), the oldest first.
    expect(totals).toEqual(await store.refusalTotals());
    expect(totals.count).toBe(2);
    const page = await store.accept({ message: message(), deliveries: [], nowMs: T0 });
    const kept = [];
    for (let id = 1; id < page.messageId; id++) {
      const row = await store.messageRow(id);
      if (row) kept.push([row.refusal, row.body.length, row.bodySize]);
    }
    expect(kept).toEqual([
      ["no key for selector s3", 0, 5003],
      ["no key for selector s4", 0, 5004],
    ]);
  });
});
