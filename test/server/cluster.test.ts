/**
 * Who may run under a node's name (src/server/cluster.ts nameTaken): a live process elsewhere holds
 * it until its heartbeat is older than the lease time or it stopped cleanly; on the same host a
 * process that is gone (kill -9, a crash) holds nothing, so a restart is not kept waiting.
 */
import { expect, test } from "bun:test";
import { leaseOwnerOf, nameTaken, ownerPrefixOf } from "../../src/server/cluster.ts";
import type { NodeRow } from "../../src/store/postgres/nodes.ts";

const NOW = 1_800_000_000_000;
const LEASE_MS = 60_000;
const self = { id: "n1", host: "gw-a", pid: 200 };
const row = (o: Partial<NodeRow> = {}): NodeRow => ({
  id: "n1",
  host: "gw-b",
  pid: 100,
  version: "1.0.0",
  startedAt: NOW - 3_600_000,
  seenAt: NOW - 5_000,
  stoppedAt: null,
  ...o,
});
const taken = (previous: NodeRow | undefined, alive = true) =>
  nameTaken({ previous, self, nowMs: NOW, leaseMs: LEASE_MS, processAlive: () => alive });

test("a new name, a stopped node, or a heartbeat older than the lease time: the name is free", () => {
  expect(taken(undefined)).toBeUndefined();
  expect(taken(row({ stoppedAt: NOW - 1000 }))).toBeUndefined();
  expect(taken(row({ seenAt: NOW - LEASE_MS }))).toBeUndefined();
});

test("a live node on another host holds the name: the refusal names --node-id, the host and the pid", () => {
  expect(taken(row())).toBe(
    '--node-id: node "n1" runs already on gw-b (pid 100, heartbeat 5 s ago); give each node its own --node-id, or stop that one first',
  );
});

test("on the same host, a process that is gone holds nothing; one that lives does", () => {
  expect(taken(row({ host: "gw-a" }), false)).toBeUndefined();
  expect(taken(row({ host: "gw-a" }), true)).toContain("runs already on gw-a (pid 100");
});

test("leases carry NODE:PID, and a node's prefix is not another node's", () => {
  expect(leaseOwnerOf(self)).toBe("n1:200");
  expect(ownerPrefixOf("n1")).toBe("n1:");
  expect(leaseOwnerOf({ id: "n10", pid: 5 }).startsWith(ownerPrefixOf("n1"))).toBe(false);
});
