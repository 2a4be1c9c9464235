/**
 * What a drain commits over SQLite: the dispatcher leases as attempts finish, and the store's group
 * commit (src/store/sqlite/group-commit.ts) writes those leases in the transaction of the outcomes
 * recorded in the same turn, instead of one commit per lease on top of the outcomes' commits.
 */
import { afterEach, expect, test } from "bun:test";
import type { DeliveryTarget } from "../../src/delivery/target.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { removeTempDirs, tempDatabasePath } from "../store/_temp-dir.ts";
import { walCommits } from "../store/_wal.ts";
import { drained, fill, startDispatcher } from "./_dispatch.ts";

afterEach(removeTempDirs);

/**
 * A peer as a sender sees it: each attempt holds the event loop for a while (the RSA signature, about
 * half a millisecond) and is answered a few milliseconds later, unevenly.
 */
function signingPeer() {
  let calls = 0;
  const target: DeliveryTarget = {
    label: "peer",
    handles: [],
    async deliver(_m, recipients) {
      const n = calls++;
      const until = performance.now() + 0.5;
      while (performance.now() < until);
      await Bun.sleep(1 + (n % 3));
      return {
        outcomes: recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" })),
        target: "peer",
      };
    },
  };
  return { target, calls: () => calls };
}

test("a drain of 400 messages to a signing peer commits less than once per three messages: its leases ride with the outcomes", async () => {
  const path = tempDatabasePath();
  const db = openDatabase(path);
  db.run("PRAGMA wal_autocheckpoint = 0");
  let leases = 0;
  class CountingQueue extends DeliveryQueue {
    override leaseFitting(o: Parameters<DeliveryQueue["leaseFitting"]>[0]) {
      return super.leaseFitting(o).then((r) => {
        if (r.leased.length > 0) leases++;
        return r;
      });
    }
  }
  const queue = new CountingQueue(createSqliteStore(db));
  const messages = 400;
  await fill(queue, messages, "peer.test");
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  const peer = signingPeer();
  const d = startDispatcher(queue, () => peer.target, { maxConcurrent: 32, maxPerTarget: 8 });
  await drained(queue, messages);
  await d.stop();
  const commits = walCommits(path);
  expect((await queue.countByState()).delivered).toBe(messages);
  expect(peer.calls()).toBe(messages);
  // About 50 leases of 8 and 100 turns in which outcomes are recorded: with a commit of its own per
  // lease, 150-165 commits (0.38-0.41 per message); sharing them, 100-110.
  expect(leases).toBeGreaterThanOrEqual(messages / 16);
  expect(commits).toBeLessThan(messages / 3);
  db.close();
});
