/**
 * Two nodes of the compiled binary on one PostgreSQL database (test/support/postgres.ts), serving
 * the same domain a.test with one DKIM key (published by dnsmasq) and delivering to one webhook; a
 * remote peer, isched B (another binary on SQLite, found by SRV), for outbound. What an operator of
 * two gateways expects:
 * - an invitation POSTed to node 1 and another to node 2 are both stored (one database) and each
 *   delivered to the webhook once;
 * - the same signed request (same iSchedule-Message-ID) sent to both nodes at once becomes one
 *   message, delivered once;
 * - a submission queued on one node reaches the remote peer once;
 * - a node (re)starting while the other has deliveries in flight does not take them (each is
 *   delivered once);
 * - the console's live view on node 2 shows a message node 1 accepted, and a cancel made on node
 *   2's console stops the delivery node 1 holds (node 1's live view and API show it cancelled);
 * - kill -9 of a node with deliveries in flight: the other node does not touch them before the
 *   lease time (--lease-time 3s), then takes them over and delivers each; one message and one
 *   delivery per recipient in the store, all delivered.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ClusterWorld, startClusterWorld } from "../support/cluster.ts";
import { invitation, statuses } from "../support/isched.ts";
import type { RunningPostgres } from "../support/postgres.ts";
import { rawExchange } from "../support/raw-http.ts";
import type { RecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

const LEASE_S = 3;
const ANN = "mailto:ann@a.test";
const BOB = "mailto:bob@a.test";

let world: ClusterWorld;
let dir: string;
let pg: RunningPostgres;
let hook: RecordingWebhook;
let hookB: RecordingWebhook;
const nodes: Record<string, ServeProcess | undefined> = {};

function nodeArgs(name: string): string[] {
  return world.nodeArgs(name, { leaseSeconds: LEASE_S });
}

async function startNode(name: string): Promise<ServeProcess> {
  const node = running(await serveProcess(nodeArgs(name), { timeoutMs: 30_000 }));
  nodes[name] = node;
  return node;
}

function signedInvite(uid: string, attendees = [ANN]): Buffer {
  return world.signedInvite(uid, attendees);
}

async function post(node: ServeProcess, request: Buffer) {
  return rawExchange({ port: node.port, request, timeoutMs: 10_000 });
}

/** The webhook's deliveries of `uid`: message ids by recipient. */
function atHook(h: RecordingWebhook, uid: string): string[] {
  return h.deliveries
    .filter((d) => d.uid === uid)
    .flatMap((d) => d.recipients.map((r) => `${r} ${d.messageId}`));
}

/** One line per delivery of the messages with this UID: "state recipient". */
async function stored(uid: string): Promise<string[]> {
  const out = await pg.admin(
    `SELECT d.state || ' ' || d.recipient FROM deliveries d JOIN messages m ON m.id = d.message_id
      WHERE m.uid = '${uid}' ORDER BY d.recipient`,
    pg.database,
  );
  return out === "" ? [] : out.split("\n");
}

async function messagesWith(uid: string): Promise<number> {
  return Number(await pg.admin(`SELECT count(*) FROM messages WHERE uid = '${uid}'`, pg.database));
}

/** A console API request to `node` with its API token. */
function api(node: ServeProcess, name: string, path: string, init: RequestInit = {}): Promise<Response> {
  const token = readFileSync(join(dir, `data-${name}`, "api-token"), "utf8").trim();
  return fetch(`${node.consoleUrl}${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
}

/** What the live view's `messages` events carry of a message. */
interface LiveMessage {
  id: number;
  uid: string | null;
  deliveryStates: Record<string, number>;
}

/** One message with its deliveries, as `node`'s console API shows it. */
async function messageOn(
  node: ServeProcess,
  name: string,
  id: number,
): Promise<{ deliveries: { id: number; recipient: string; state: string }[] }> {
  const res = await api(node, name, `/api/v1/messages/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { deliveries: { id: number; recipient: string; state: string }[] };
}

/** `node`'s live view (GET /api/v1/events?q=): the messages its events carried so far. */
async function liveEvents(node: ServeProcess, name: string, q: string) {
  const controller = new AbortController();
  const res = await api(node, name, `/api/v1/events?q=${encodeURIComponent(q)}`, {
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const seen: LiveMessage[] = [];
  let text = "";
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += value;
        let end = text.indexOf("\n\n");
        while (end >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          if (event.startsWith("event: messages\n")) {
            const data = event.slice(event.indexOf("data: ") + 6);
            seen.push(...(JSON.parse(data) as { messages: LiveMessage[] }).messages);
          }
          end = text.indexOf("\n\n");
        }
      }
    } catch {
      // Aborted: the test closed the stream.
    }
  })();
  return {
    /** The first message the stream carried that passes `check`, waiting up to `timeoutMs`. */
    async message(check: (m: LiveMessage) => boolean, timeoutMs: number): Promise<LiveMessage> {
      await until(async () => seen.some(check), timeoutMs, `a live event on ${name}'s console`);
      return seen.find(check)!;
    },
    close: () => controller.abort(),
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await Bun.sleep(50);
  }
}

beforeAll(async () => {
  world = await startClusterWorld();
  ({ dir, pg, hook, hookB } = world);
  // One after the other: the first migrates the database, the second finds it current.
  await startNode("n1");
  await startNode("n2");
}, 90_000);

afterAll(async () => {
  for (const n of Object.values(nodes)) {
    n?.process.kill("SIGKILL");
    await n?.process.exited;
  }
  await world?.stop();
}, 30_000);

describe("two nodes on one PostgreSQL", () => {
  test("an invitation to each node: both stored in the one database, each delivered once", async () => {
    const [one, two] = await Promise.all([
      post(nodes.n1!, signedInvite("both-1")),
      post(nodes.n2!, signedInvite("both-2")),
    ]);
    expect([one.status, two.status]).toEqual([200, 200]);
    expect(statuses(one.text)[ANN]).toMatch(/^2\.0/);
    expect(statuses(two.text)[ANN]).toMatch(/^2\.0/);
    expect(await stored("both-1")).toEqual([`delivered ${ANN}`]);
    expect(await stored("both-2")).toEqual([`delivered ${ANN}`]);
    expect(atHook(hook, "both-1")).toHaveLength(1);
    expect(atHook(hook, "both-2")).toHaveLength(1);
    const seen = await pg.admin("SELECT id || ' ' || version FROM nodes ORDER BY id", pg.database);
    expect(seen.split("\n").map((l) => l.split(" ")[0])).toEqual(["n1", "n2"]);
  }, 30_000);

  test("the same request sent to both nodes at once becomes one message, delivered once", async () => {
    const bytes = signedInvite("twice-1", [ANN, BOB]);
    const answers = await Promise.all([post(nodes.n1!, bytes), post(nodes.n2!, bytes)]);
    for (const a of answers) {
      expect(a.status).toBe(200);
      for (const r of [ANN, BOB]) expect(statuses(a.text)[r]).toMatch(/^(2\.0|1\.1|1\.2);/);
    }
    await hook.waitFor((d) => d.some((x) => x.uid === "twice-1"), 10_000);
    await Bun.sleep(1000);
    expect(await messagesWith("twice-1")).toBe(1);
    expect(await stored("twice-1")).toEqual([`delivered ${ANN}`, `delivered ${BOB}`]);
    expect(atHook(hook, "twice-1").sort()).toHaveLength(2);
    expect(new Set(atHook(hook, "twice-1").map((l) => l.split(" ")[0]))).toEqual(new Set([ANN, BOB]));
  }, 30_000);

  test("twenty invitations at once from a peer whose key is configured (--peer-key): each accepted, none told to try again", async () => {
    // Each request stays open through its PostgreSQL commit: many are open at once, more than the
    // eight key lookups per peer that may wait on the network; none of them needs the network.
    const uids = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    const answers = await Promise.all(uids.map((uid) => post(nodes.n1!, signedInvite(uid))));
    expect(answers.map((a) => `${a.status} ${statuses(a.text)[ANN]}`)).toEqual(
      uids.map(() => "200 2.0;Success"),
    );
    const stored = await pg.admin("SELECT count(*) FROM messages WHERE uid LIKE 'burst-%'", pg.database);
    expect(Number(stored)).toBe(20);
  }, 30_000);

  test("a submission queued on node 2 reaches the remote peer once", async () => {
    const token = readFileSync(join(dir, "data-n2", "api-token"), "utf8").trim();
    const answer = await fetch(`${nodes.n2!.consoleUrl}/api/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "text/calendar" },
      body: invitation({
        uid: "out-1",
        organizer: "mailto:alice@a.test",
        attendees: ["mailto:carol@b.test"],
      }),
    });
    expect(answer.status).toBe(202);
    await hookB.waitFor((d) => d.some((x) => x.uid === "out-1"), 20_000);
    await until(
      async () => (await stored("out-1"))[0] === "delivered mailto:carol@b.test",
      10_000,
      "delivered",
    );
    await Bun.sleep(1000);
    expect(atHook(hookB, "out-1")).toHaveLength(1);
    expect(await messagesWith("out-1")).toBe(1);
  }, 40_000);

  test("a node restarting while the other has deliveries in flight leaves them to it: each delivered once", async () => {
    hook.hold();
    try {
      const answer = await post(nodes.n1!, signedInvite("held-1", [ANN, BOB]));
      expect(answer.status).toBe(200);
      await until(async () => hook.waiting() > 0, 10_000, "node 1 attempting");
      const owners = await pg.admin(
        "SELECT DISTINCT split_part(lease_owner, ':', 1) FROM deliveries WHERE state = 'in-flight'",
        pg.database,
      );
      expect(owners).toBe("n1");
      // Node 2 restarts (stopped cleanly, started again): its start-up recovery leaves node 1's leases.
      expect(await nodes.n2!.stop()).toBe(0);
      await startNode("n2");
      expect(
        await pg.admin(
          "SELECT count(*) FROM deliveries WHERE state = 'in-flight' AND lease_owner LIKE 'n1:%'",
          pg.database,
        ),
      ).toBe("2");
    } finally {
      hook.release();
    }
    await until(
      async () => (await stored("held-1")).every((l) => l.startsWith("delivered")),
      10_000,
      "delivered",
    );
    await Bun.sleep(LEASE_S * 1000 + 500);
    expect(atHook(hook, "held-1").sort()).toHaveLength(2);
    expect(await stored("held-1")).toEqual([`delivered ${ANN}`, `delivered ${BOB}`]);
  }, 40_000);

  test("the Overview on either node lists both nodes with their last heartbeat and what each holds in flight", async () => {
    hook.hold();
    try {
      expect((await post(nodes.n1!, signedInvite("overview-1", [ANN, BOB]))).status).toBe(200);
      await until(async () => hook.waiting() > 0, 10_000, "node 1 attempting");
      const token = readFileSync(join(dir, "data-n2", "api-token"), "utf8").trim();
      const res = await fetch(`${nodes.n2!.consoleUrl}/api/v1/overview`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const overview = (await res.json()) as {
        nowMs: number;
        nodes: { id: string; version: string; seenAt: number; stoppedAt: number | null; inFlight: number }[];
      };
      const version = (await Bun.file(join(import.meta.dir, "..", "..", "package.json")).json()).version;
      expect(overview.nodes.map((n) => [n.id, n.version, n.stoppedAt, n.inFlight])).toEqual([
        ["n1", version, null, 2],
        ["n2", version, null, 0],
      ]);
      for (const n of overview.nodes) expect(overview.nowMs - n.seenAt).toBeLessThan(LEASE_S * 1000);
    } finally {
      hook.release();
    }
    await until(
      async () => (await stored("overview-1")).every((l) => l.startsWith("delivered")),
      10_000,
      "delivered",
    );
  }, 30_000);

  test("live updates on one node's console show a message accepted by the other node, and a cancel made on one node's console stops a delivery the other node holds", async () => {
    // Node 2's live view, filtered to this UID: the poller behind it reads the shared database,
    // so a message node 1 accepts shows up here although node 2 never saw the request.
    const uid = "live-cross-1";
    const feed2 = await liveEvents(nodes.n2!, "n2", `uid:${uid}`);
    const feed1 = await liveEvents(nodes.n1!, "n1", `uid:${uid}`);
    let messageId = 0;
    hook.hold();
    try {
      const postedAt = Date.now();
      expect((await post(nodes.n1!, signedInvite(uid))).status).toBe(200);
      const shown = await feed2.message((m) => m.uid === uid, 5000);
      const shownAfterMs = Date.now() - postedAt;
      messageId = shown.id;
      console.log(`node 2's live view showed node 1's message ${shownAfterMs} ms after node 1 accepted it`);
      // Node 1 holds its delivery (the webhook answers nothing yet); node 2's operator cancels it.
      await until(async () => hook.waiting() > 0, 10_000, "node 1 attempting");
      const held = await messageOn(nodes.n1!, "n1", shown.id);
      expect(held.deliveries.map((d) => [d.recipient, d.state])).toEqual([[ANN, "in-flight"]]);
      expect(
        await pg.admin(
          `SELECT split_part(lease_owner, ':', 1) FROM deliveries WHERE id = ${held.deliveries[0]!.id}`,
          pg.database,
        ),
      ).toBe("n1");
      const cancel = await api(nodes.n2!, "n2", "/api/v1/deliveries/cancel", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messageId: shown.id }),
      });
      expect(cancel.status).toBe(200);
      expect(((await cancel.json()) as { changed: number }).changed).toBe(1);
      // Node 1's own live view shows the cancel node 2 made.
      await feed1.message((m) => m.id === shown.id && m.deliveryStates.cancelled === 1, 5000);
    } finally {
      hook.release();
      feed1.close();
      feed2.close();
    }
    // Node 1's attempt comes back after the cancel: the delivery stays cancelled, as node 1's API says.
    await until(async () => hook.deliveries.some((d) => d.uid === uid), 10_000, "node 1's attempt answered");
    await Bun.sleep(500);
    const after = await messageOn(nodes.n1!, "n1", messageId);
    expect(after.deliveries.map((d) => [d.recipient, d.state])).toEqual([[ANN, "cancelled"]]);
    expect(await stored(uid)).toEqual([`cancelled ${ANN}`]);
  }, 30_000);

  test("a node that stops with attempts under way gives them back and wakes the other node, which delivers them at once", async () => {
    hook.hold();
    let exitedAt = 0;
    try {
      expect((await post(nodes.n2!, signedInvite("handoff-1", [ANN, BOB]))).status).toBe(200);
      await until(async () => hook.waiting() > 0, 10_000, "node 2 attempting");
      // Node 1 has nothing to do: its dispatcher sleeps (it looks at the queue every 5 s when idle).
      await Bun.sleep(300);
      expect(await nodes.n2!.stop()).toBe(0);
      exitedAt = Date.now();
      await until(
        async () =>
          (await pg.admin(
            `SELECT count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id
              WHERE m.uid = 'handoff-1' AND d.state = 'in-flight' AND d.lease_owner LIKE 'n1:%'`,
            pg.database,
          )) === "2",
        10_000,
        "node 1 leasing what node 2 gave back",
      );
    } finally {
      hook.release();
    }
    const pickedUpMs = Date.now() - exitedAt;
    console.log(`node 1 leased what node 2 gave back ${pickedUpMs} ms after node 2 exited`);
    // Announced (NOTIFY), node 1 takes them within moments, not at its next look up to 5 s later.
    expect(pickedUpMs).toBeLessThan(700);
    await until(
      async () => (await stored("handoff-1")).every((l) => l.startsWith("delivered")),
      10_000,
      "delivered",
    );
    await startNode("n2");
  }, 40_000);

  test("kill -9 of a node with deliveries in flight: the other takes them over after the lease time and delivers each", async () => {
    hook.hold();
    const uids = ["kill-1", "kill-2", "kill-3"];
    let killedAt = 0;
    try {
      for (const uid of uids) expect((await post(nodes.n1!, signedInvite(uid))).status).toBe(200);
      await until(
        async () =>
          Number(
            await pg.admin(
              "SELECT count(*) FROM deliveries WHERE state = 'in-flight' AND lease_owner LIKE 'n1:%'",
              pg.database,
            ),
          ) === uids.length,
        10_000,
        "node 1 holding the three deliveries",
      );
      nodes.n1!.process.kill("SIGKILL");
      await nodes.n1!.process.exited;
      killedAt = Date.now();
    } finally {
      hook.release();
    }
    // Before the lease time, node 2 leaves them alone (node 1 might only be slow).
    await Bun.sleep(1000);
    const early = await pg.admin(
      "SELECT count(*) FROM deliveries WHERE state = 'in-flight' AND lease_owner LIKE 'n1:%'",
      pg.database,
    );
    if (Date.now() - killedAt < LEASE_S * 1000 - 500) expect(early).toBe(String(uids.length));
    // After it, node 2 takes them over and delivers each.
    for (const uid of uids)
      await until(async () => (await stored(uid))[0] === `delivered ${ANN}`, 20_000, `${uid} delivered`);
    const takenAfterMs = Date.now() - killedAt;
    expect(takenAfterMs).toBeGreaterThanOrEqual(LEASE_S * 1000 - 100);
    for (const uid of uids) {
      expect(atHook(hook, uid).length).toBeGreaterThanOrEqual(1);
      expect(await messagesWith(uid)).toBe(1);
      expect(await stored(uid)).toEqual([`delivered ${ANN}`]);
    }
    expect(nodes.n2!.stderr()).toContain("took over deliveries whose lease expired");
  }, 60_000);
});

describe("node names", () => {
  test("a second process under a live node's name is refused in one line; a killed node's name is free again on its host", async () => {
    // n1 was killed above (its process is gone, its heartbeat recent): on the same host it restarts at once.
    const again = await startNode("n1");
    expect(again.stdout()).toContain("this node is n1");
    const r = await serveProcess(nodeArgs("n2"), { timeoutMs: 30_000 });
    expect("exitCode" in r).toBe(true);
    if (!("exitCode" in r)) return;
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^isched: --node-id: node "n2" runs already on \S+ \(pid \d+, heartbeat \d+ s ago\)/,
    );
    // Both nodes still serve.
    const answer = await post(nodes.n1!, signedInvite("after-1"));
    expect(statuses(answer.text)[ANN]).toMatch(/^2\.0/);
    expect(await stored("after-1")).toEqual([`delivered ${ANN}`]);
  }, 40_000);
});
