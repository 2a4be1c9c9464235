import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createIschedMetrics, DEFAULT_MAX_PEERS } from "../../src/metrics/isched-metrics.ts";
import { DeliveryQueue } from "../../src/queue/queue.ts";
import { deliveryStateCounts } from "../../src/store/sqlite/console-stats.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { queueFacts } from "../../src/store/sqlite/queue-facts.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { invitation, queueOptions, recipients, T0, TestClock } from "../queue/_fixtures.ts";
import { type Family, parseExposition } from "./_exposition.ts";

const value = (families: Family[], name: string, labels: Record<string, string> = {}) =>
  families
    .flatMap((f) => f.samples)
    .find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe("isched's metrics", () => {
  test("every metric docs/metrics.md lists is defined, and no other", () => {
    const documented = [
      ...readFileSync("docs/metrics.md", "utf8").matchAll(/^\| `(isched_[a-z_]+)` \|/gm),
    ].map((m) => m[1]);
    const defined = parseExposition(createIschedMetrics({ version: "1.2.3" }).render()).map((f) => f.name);
    expect(documented.sort()).toEqual(defined.sort());
  });

  test("what the server counts comes out as series a strict reader takes", () => {
    const m = createIschedMetrics({ version: "1.2.3" });
    m.requests.inc({ intake: "ischedule", outcome: "accepted", error: "none" });
    m.requests.inc({ intake: "ischedule", outcome: "refused", error: "verification-failed" });
    m.dkim.inc({ result: "fail", reason: "body-hash-mismatch" });
    m.dkim.inc({ result: "pass" });
    m.deliveries.done({ route: "ischedule", state: "delivered" });
    m.attempts.observe({ route: "ischedule", outcome: "delivered", seconds: 0.3, peer: "Peer.Example" });
    m.attempts.observe({ route: "local", outcome: "temporary", seconds: 12 });
    m.pruned.add({ kind: "bodies", rows: 120 });
    const f = parseExposition(m.render());
    expect(value(f, "isched_build_info", { version: "1.2.3" })).toBe(1);
    expect(value(f, "isched_requests_total", { outcome: "refused", error: "verification-failed" })).toBe(1);
    expect(value(f, "isched_dkim_verdicts_total", { result: "fail", reason: "body-hash-mismatch" })).toBe(1);
    expect(value(f, "isched_dkim_verdicts_total", { result: "pass", reason: "none" })).toBe(1);
    expect(value(f, "isched_deliveries_total", { route: "ischedule", state: "delivered" })).toBe(1);
    expect(value(f, "isched_attempt_duration_seconds_bucket", { route: "ischedule", le: "0.5" })).toBe(1);
    expect(value(f, "isched_attempt_duration_seconds_bucket", { route: "local", le: "10" })).toBe(0);
    expect(value(f, "isched_peer_attempts_total", { peer: "peer.example", outcome: "delivered" })).toBe(1);
    expect(value(f, "isched_pruned_total", { kind: "bodies" })).toBe(120);
  });

  test(`per-peer series stop at ${DEFAULT_MAX_PEERS} peers; the others count as "other"`, () => {
    const m = createIschedMetrics({ version: "1" });
    for (let i = 0; i < 200; i++)
      m.attempts.observe({ route: "ischedule", outcome: "delivered", seconds: 1, peer: `p${i}.example` });
    const peers = parseExposition(m.render()).find((x) => x.name === "isched_peer_attempts_total")!.samples;
    expect(peers.length).toBe(DEFAULT_MAX_PEERS + 1);
    expect(peers.find((s) => s.labels.peer === "other")!.value).toBe(200 - DEFAULT_MAX_PEERS);
  });

  // SQLite only: the gauges' readers here are the SQLite store's synchronous queries.
  test("the queue's gauges read the database when scraped", async () => {
    const db = openDatabase(":memory:");
    const c = new TestClock(T0);
    const queue = new DeliveryQueue(createSqliteStore(db), queueOptions(c));
    const m = createIschedMetrics({
      version: "1",
      readers: {
        deliveryStates: () => deliveryStateCounts(db),
        queue: () => queueFacts(db),
        refusalLog: () => ({ rows: 3, bytes: 900 }),
        certificates: () => [{ listener: "--listen", notAfterMs: T0 + 86_400_000 }],
        database: () => ({ bytes: 4096, freeBytes: 0 }),
        nowMs: c.nowMs,
      },
    });
    let f = parseExposition(m.render());
    expect(value(f, "isched_queue_depth")).toBe(0);
    expect(value(f, "isched_queue_oldest_age_seconds")).toBe(0);
    await queue.accept(invitation({ uid: "first" }), recipients(2));
    c.advance(90_000);
    await queue.accept(invitation({ uid: "second" }), recipients(1));
    await queue.lease({ owner: "w", limit: 1 });
    c.advance(30_000);
    f = parseExposition(m.render());
    expect(value(f, "isched_queue_depth")).toBe(3);
    expect(value(f, "isched_queue_oldest_age_seconds")).toBe(120);
    expect(value(f, "isched_deliveries", { state: "queued" })).toBe(2);
    expect(value(f, "isched_deliveries", { state: "in-flight" })).toBe(1);
    expect(value(f, "isched_certificate_expiry_timestamp_seconds", { listener: "--listen" })).toBe(
      (T0 + 86_400_000) / 1000,
    );
    expect(value(f, "isched_refusal_log_bytes")).toBe(900);
    db.close();
  });
});
