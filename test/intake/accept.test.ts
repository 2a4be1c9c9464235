/**
 * accept(), the one way into the queue: what each recipient is routed to, on both backends
 * (test/support/store-backends.ts), and what a message for the store target costs on a SQLite file
 * (one transaction: the message, its deliveries and the store's attempt, counted in the WAL's commit
 * frames).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Dispatcher } from "../../src/delivery/dispatcher.ts";
import { createIntake } from "../../src/intake/accept.ts";
import { IScheduleError } from "../../src/ischedule/errors.ts";
import { parseItip } from "../../src/itip/index.ts";
import { readSendFacts } from "../../src/outbound/message-facts.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { storeTarget } from "../../src/targets/store-target.ts";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { walCommits } from "../store/_wal.ts";
import { onBothBackends } from "../support/store-backends.ts";

afterEach(removeTempDirs);

const NOW = Date.UTC(2026, 11, 1, 12);
const HOUR = 3_600_000;

function invitation(organizer: string, attendees: readonly string[]): string {
  return [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    "UID:accept-1@example.com",
    "DTSTAMP:20261201T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SUMMARY:Planning",
    `ORGANIZER:${organizer}`,
    ...attendees.map((a) => `ATTENDEE:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
}

function setup(over: Store) {
  const queue = new DeliveryQueue(over, { nowMs: () => NOW });
  const store = storeTarget();
  const dispatcher = new Dispatcher({
    queue,
    targetFor: (d) => (d.route === "local" ? store : undefined),
    scheduleMs: [60_000],
    imipAvailable: false,
    owner: "test",
    nowMs: () => NOW,
  });
  const intake = createIntake({
    queue,
    dispatcher,
    routes: { local: new Map([["example.com", "store"]]), fallbackAfterMs: HOUR },
    nowMs: () => NOW,
  });
  const accept = (originator: string, recipients: readonly string[], attendees = recipients) =>
    intake.accept({
      source: "ischedule",
      itip: parseItip(invitation(originator, attendees)),
      originator,
      recipients,
      stored: { contentType: "text/calendar", body: invitation(originator, attendees), dkimResult: "pass" },
    });
  return { queue, accept };
}

/** setup() on a SQLite file, whose WAL counts the commits. */
function onSqliteFile() {
  const path = join(tempDir(), "isched.db");
  const db = openDatabase(path);
  return { path, db, ...setup(createSqliteStore(db)) };
}

onBothBackends("accept()", (b) => {
  test("a message for the store target is stored decided, with its attempt", async () => {
    const s = setup(await b.fresh());
    const result = await s.accept("mailto:org@peer.example", [
      "mailto:ann@example.com",
      "mailto:bob@example.com",
    ]);
    if (result.kind !== "accepted") throw new Error(result.kind);
    const detail = (await s.queue.getMessage(result.accepted.messageId))!;
    expect(detail.deliveries.map((d) => [d.recipient, d.state, d.attemptList.length])).toEqual([
      ["mailto:ann@example.com", "delivered", 1],
      ["mailto:bob@example.com", "delivered", 1],
    ]);
    expect(detail.deliveries[0]!.attemptList[0]).toMatchObject({ target: "store", outcome: "delivered" });
  });

  test("routes each recipient by the table: local target, iSchedule for our Originator, 3.7 otherwise", async () => {
    const s = setup(await b.fresh());
    const ours = await s.accept("mailto:ann@example.com", [
      "mailto:bob@example.com",
      "mailto:eve@far.example",
    ]);
    if (ours.kind !== "accepted") throw new Error(ours.kind);
    expect(ours.direction).toBe("outbound");
    expect(
      (await s.queue.getMessage(ours.accepted.messageId))!.deliveries.map((d) => [
        d.route,
        d.state,
        d.fallbackAt,
      ]),
    ).toEqual([
      ["local", "delivered", null],
      ["ischedule", "queued", NOW + HOUR],
    ]);
    // A stranger's message to someone elsewhere is not relayed.
    const theirs = await s.accept("mailto:org@peer.example", [
      "mailto:ann@example.com",
      "mailto:eve@far.example",
    ]);
    if (theirs.kind !== "accepted") throw new Error(theirs.kind);
    expect(theirs.direction).toBe("inbound");
    const refused = (await s.queue.getMessage(theirs.accepted.messageId))!.deliveries[1]!;
    expect([refused.state, refused.requestStatus, refused.lastError]).toEqual([
      "failed",
      "3.7;Invalid calendar user",
      "far.example is not a domain served here; isched does not relay",
    ]);
  });

  test("an outbound message keeps the facts a receiver's capabilities are checked against; inbound none", async () => {
    const s = setup(await b.fresh());
    const ours = await s.accept("mailto:ann@example.com", ["mailto:eve@far.example"]);
    if (ours.kind !== "accepted") throw new Error(ours.kind);
    const row = (await s.queue.messageRow(ours.accepted.messageId))!;
    // What the remote iSchedule target checks on each send instead of parsing the body again.
    expect(readSendFacts(row.sendFacts)).toEqual({
      inlineAttachment: false,
      externalAttachment: false,
      scheduled: { firstStart: "20261202T100000Z", lastEnd: "20261202T110000Z" },
      bounded: false,
    });
    const theirs = await s.accept("mailto:org@peer.example", ["mailto:ann@example.com"]);
    if (theirs.kind !== "accepted") throw new Error(theirs.kind);
    expect((await s.queue.messageRow(theirs.accepted.messageId))!.sendFacts).toBeNull();
  });

  test("a recipient the iTIP method does not allow is refused before anything is stored", async () => {
    const store = await b.fresh();
    const s = setup(store);
    const refused = s.accept(
      "mailto:org@peer.example",
      ["mailto:zed@example.com"],
      ["mailto:ann@example.com"],
    );
    expect(refused).rejects.toThrow(IScheduleError);
    await refused.catch(() => {});
    expect(await b.rows(store, "SELECT id FROM messages")).toEqual([]);
  });
});

// SQLite only: the WAL of a database file counts the transactions.
describe("accept() on a SQLite file", () => {
  test("a message for the store target is stored decided, with its attempt, in one transaction", async () => {
    const s = onSqliteFile();
    const before = walCommits(s.path);
    const result = await s.accept("mailto:org@peer.example", [
      "mailto:ann@example.com",
      "mailto:bob@example.com",
    ]);
    expect(walCommits(s.path) - before).toBe(1);
    if (result.kind !== "accepted") throw new Error(result.kind);
    const detail = (await s.queue.getMessage(result.accepted.messageId))!;
    expect(detail.deliveries.map((d) => [d.recipient, d.state, d.attemptList.length])).toEqual([
      ["mailto:ann@example.com", "delivered", 1],
      ["mailto:bob@example.com", "delivered", 1],
    ]);
    expect(detail.deliveries[0]!.attemptList[0]).toMatchObject({ target: "store", outcome: "delivered" });
    s.db.close();
  });

  test("a recipient the iTIP method does not allow is refused before anything is stored", async () => {
    const s = onSqliteFile();
    const before = walCommits(s.path);
    const refused = s.accept(
      "mailto:org@peer.example",
      ["mailto:zed@example.com"],
      ["mailto:ann@example.com"],
    );
    expect(refused).rejects.toThrow(IScheduleError);
    await refused.catch(() => {});
    expect(walCommits(s.path)).toBe(before);
    s.db.close();
  });
});
