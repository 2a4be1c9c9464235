/** The filter language: parsing with precise errors, and the SQL it becomes over a real database. */
import { afterEach, describe, expect, test } from "bun:test";
import { FilterError, parseFilter, parseTime } from "../../src/console/filter.ts";
import { quoteValue } from "../../src/console/filter-help.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import type { Store } from "../../src/store/store.ts";
import { invitation, queueOptions, TestClock } from "../queue/_fixtures.ts";
import { removeTempDirs } from "../store/_temp-dir.ts";
import { onBothBackends } from "../support/store-backends.ts";

afterEach(removeTempDirs);

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

function errorOf(q: string): FilterError {
  try {
    parseFilter(q, NOW);
  } catch (e) {
    if (e instanceof FilterError) return e;
    throw e;
  }
  throw new Error(`"${q}" parsed`);
}

describe("parseFilter", () => {
  test("reads keys, negation, value lists, quotes and aliases", () => {
    expect(
      parseFilter(
        ' peer:Example.ORG  -status:delivered method:request,cancel uid:"a b\\"c" to:bob@x.org ',
        NOW,
      ),
    ).toEqual([
      { key: "peer", negated: false, values: ["example.org"] },
      { key: "status", negated: true, values: ["delivered"] },
      { key: "method", negated: false, values: ["REQUEST", "CANCEL"] },
      { key: "uid", negated: false, values: ['a b"c'] },
      { key: "recipient", negated: false, values: ["mailto:bob@x.org"] },
    ]);
    expect(parseFilter("", NOW)).toEqual([]);
  });

  test("reads times as UTC dates, date-times, or a duration ago", () => {
    expect(parseTime("2026-11-01", NOW)).toBe(Date.UTC(2026, 10, 1));
    expect(parseTime("2026-11-01T14:30", NOW)).toBe(Date.UTC(2026, 10, 1, 14, 30));
    expect(parseTime("2h", NOW)).toBe(NOW - 2 * 3_600_000);
    expect(parseTime("2026-02-31", NOW)).toBeUndefined();
    expect(parseFilter("after:3d", NOW)).toEqual([
      { key: "after", negated: false, atMs: NOW - 3 * 86_400_000 },
    ]);
  });

  test("names the mistake and where it is", () => {
    expect(errorOf("status:failed colour:red").message).toContain('unknown key "colour:"');
    expect(errorOf("status:failed colour:red").position).toBe(14);
    expect(errorOf("status:lost").message).toContain("status:lost is not one of queued");
    expect(errorOf("peer:not_a_domain!").message).toContain("is not a domain name");
    expect(errorOf("after:yesterday").message).toContain("is not a time");
    expect(errorOf("hello").message).toContain('"hello" is not a term');
    expect(errorOf("status:").message).toContain("needs a value");
  });

  test("a mistyped key gets the nearest key, and the query with it", () => {
    const e = errorOf("peer:example.org -stauts:failed");
    expect(e.message).toStartWith('unknown key "stauts:" (did you mean status?); use one of peer, status');
    expect(e.suggestion).toBe("peer:example.org -status:failed");
    expect(errorOf("colour:red").suggestion).toBeUndefined();
  });

  test("quoteValue quotes what would not read back", () => {
    expect(quoteValue("abc@x")).toBe("abc@x");
    expect(quoteValue("a b")).toBe('"a b"');
    expect(quoteValue('a"b')).toBe('"a\\"b"');
    const q = `uid:${quoteValue('x "y", z')}`;
    expect(parseFilter(q, NOW)).toEqual([{ key: "uid", negated: false, values: ['x "y", z'] }]);
  });
});

onBothBackends("searchMessages", (b) => {
  async function seed() {
    const store = await b.fresh();
    const clock = new TestClock(NOW - 10 * 3_600_000);
    const queue = new DeliveryQueue(store, queueOptions(clock));
    const ids: number[] = [];
    const add = async (
      extra: Parameters<typeof invitation>[0],
      recipients: { r: string; state?: "delivered" | "failed" }[],
    ) => {
      clock.advance(3_600_000);
      ids.push(
        (
          await queue.accept(
            invitation(extra),
            recipients.map(({ r, state }) => ({
              recipient: r,
              domain: r.split("@")[1]!,
              route: "ischedule",
              state,
            })),
          )
        ).messageId,
      );
    };
    await add({ uid: "u1", organizer: "mailto:alice@example.com" }, [
      { r: "mailto:bob@peer.example", state: "delivered" },
    ]);
    await add({ uid: "u2", method: "CANCEL" }, [
      { r: "mailto:bob@peer.example", state: "failed" },
      { r: "mailto:carl@other.example", state: "delivered" },
    ]);
    await add(
      {
        uid: "u3",
        direction: "inbound",
        intake: "ischedule",
        peerDomain: "peer.example",
        dkimResult: "pass",
        organizer: "mailto:dan@peer.example",
        refusal: "METHOD:REQUEST needs an ORGANIZER that is the Originator",
      },
      [],
    );
    await add({ uid: "u4" }, [{ r: "mailto:eve@other.example" }]);
    return { store, queue, ids };
  }
  const find = async (store: Store, q: string) =>
    (await store.searchMessages({ filter: parseFilter(q, NOW), limit: 50 })).messages.map((m) => m.uid);

  test("each key matches what it says, newest first", async () => {
    const { store } = await seed();
    expect(await find(store, "")).toEqual(["u4", "u3", "u2", "u1"]);
    expect(await find(store, "peer:peer.example")).toEqual(["u3", "u2", "u1"]);
    expect(await find(store, "peer:other.example")).toEqual(["u4", "u2"]);
    expect(await find(store, "status:failed")).toEqual(["u2"]);
    expect(await find(store, "status:queued,failed")).toEqual(["u4", "u2"]);
    expect(await find(store, "-status:delivered")).toEqual(["u4", "u3"]);
    expect(await find(store, "status:refused")).toEqual(["u3"]);
    expect(await find(store, "method:CANCEL")).toEqual(["u2"]);
    expect(await find(store, "-method:cancel")).toEqual(["u4", "u3", "u1"]);
    expect(await find(store, "uid:u3")).toEqual(["u3"]);
    expect(await find(store, "organizer:ALICE@example.com")).toEqual(["u4", "u2", "u1"]);
    expect(await find(store, "recipient:carl@other.example")).toEqual(["u2"]);
    expect(await find(store, "dkim:pass direction:in")).toEqual(["u3"]);
    expect(await find(store, "direction:out -uid:u4")).toEqual(["u2", "u1"]);
    expect(
      await find(store, `after:${new Date(NOW - 8 * 3_600_000 + 60_000).toISOString().slice(0, 16)}`),
    ).toEqual(["u4", "u3"]);
    expect(await find(store, `before:${new Date(NOW - 7 * 3_600_000).toISOString().slice(0, 16)}`)).toEqual([
      "u2",
      "u1",
    ]);
  });

  test("pages by id: the next page starts below the last id, with no gap or repeat", async () => {
    const { store } = await seed();
    const first = await store.searchMessages({ filter: [], limit: 3 });
    expect(first.messages.map((m) => m.uid)).toEqual(["u4", "u3", "u2"]);
    const second = await store.searchMessages({ filter: [], limit: 3, beforeId: first.nextBeforeId });
    expect(second.messages.map((m) => m.uid)).toEqual(["u1"]);
    expect(second.nextBeforeId).toBeUndefined();
  });

  test("a page that ends with the last match has no next page", async () => {
    const { store } = await seed();
    const all = await store.searchMessages({ filter: [], limit: 4 });
    expect(all.messages).toHaveLength(4);
    expect(all.nextBeforeId).toBeUndefined();
    expect((await store.searchMessages({ filter: [], limit: 3 })).nextBeforeId).toBeDefined();
  });

  test("summaries carry the delivery states and the peers an outbound message went to", async () => {
    const { store, ids } = await seed();
    const [m] = await store.summariesOf([ids[1]!], []);
    expect(m!.deliveryStates).toEqual({ failed: 1, delivered: 1 });
    expect(m!.domains.sort()).toEqual(["other.example", "peer.example"]);
    expect(
      (await store.summariesOf([ids[1]!, ids[0]!], parseFilter("status:failed", NOW))).map((x) => x.id),
    ).toEqual([ids[1]!]);
  });

  test("a bulk action takes only the deliveries the filter names, in states it applies to", async () => {
    const { store } = await seed();
    const ids = async (q: string, action: "retryNow" | "cancel" | "requestImip") =>
      (await store.deliveriesForAction({ filter: parseFilter(q, NOW), action, max: 100 })).length;
    // u2 has a failed delivery to peer.example and a delivered one to other.example: only the first.
    expect(await ids("status:failed", "retryNow")).toBe(1);
    expect(await ids("uid:u2", "retryNow")).toBe(1);
    expect(await ids("peer:other.example", "retryNow")).toBe(1); // u4's queued one; u2's is delivered
    expect(await ids("peer:other.example", "cancel")).toBe(1);
    expect(await ids("", "retryNow")).toBe(2);
  });
});
