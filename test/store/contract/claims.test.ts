/**
 * The store contract, key claims and configuration: the same cases against SQLite and PostgreSQL
 * (_stores.ts). A replay key and a recipient's iTIP key are held by one message at a time, also
 * when two nodes accept copies at once (on PostgreSQL the second claim waits on the primary key,
 * then finds it in force); the capabilities serial moves once per change of fingerprint; sessions
 * and the admin password. On PostgreSQL, the methods not built yet say so rather than answer.
 */
import { expect, test } from "bun:test";
import { ItipCopyError, ReplayConflictError } from "../../../src/store/errors.ts";
import { NOT_YET, NotImplementedOnPostgres } from "../../../src/store/postgres/store.ts";
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

  test.if(b.name === "PostgreSQL")("every method not built on PostgreSQL yet says so, by name", async () => {
    const store = await b.fresh();
    for (const method of NOT_YET) {
      const call = (store[method] as (...a: unknown[]) => Promise<unknown>).bind(store);
      const e = await settled(call({}));
      expect(e).toBeInstanceOf(NotImplementedOnPostgres);
      expect((e as Error).message).toBe(`Store.${method} is not implemented on PostgreSQL yet`);
    }
  });
});
