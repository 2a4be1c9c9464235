/**
 * The message log through the API and `isched queue`, on a real isched whose local calendar server
 * (a webhook) first refuses and then accepts: messages come in over iSchedule and the submission
 * API, show up in the list, the filter and the live stream; a failed delivery is retried by id and a
 * filtered set in bulk, with the count confirmed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseDeliverRule, parseTrustRule } from "../../src/config/rules.ts";
import { type MessageView, planOf } from "../../src/console/message-view.ts";
import type { LogPage } from "../../src/store/sqlite/message-search.ts";
import { invitation, postAsPeer } from "../support/isched.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { type ConsoleServer, startConsoleServer } from "./_console.ts";
import { eventually, startWebhook, type TestWebhook } from "./_webhook.ts";

let c: ConsoleServer;
let hook: TestWebhook;

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");

async function sendInvitation(uid: string, summary = "Planning"): Promise<void> {
  const res = await postAsPeer({
    url: `${c.isched.url}/.well-known/ischedule`,
    originator: "mailto:alice@example.org",
    recipients: ["mailto:bob@example.com"],
    body: invitation({
      uid,
      summary,
      organizer: "mailto:alice@example.org",
      attendees: ["mailto:bob@example.com"],
    }),
  });
  expect(res.status).toBe(200);
}

async function list(q: string): Promise<LogPage> {
  const res = await c.token(`/api/v1/messages?q=${encodeURIComponent(q)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as LogPage;
}

async function detail(id: number): Promise<MessageView> {
  return (await (await c.token(`/api/v1/messages/${id}`)).json()) as MessageView;
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(
    [
      process.execPath,
      MAIN,
      ...args,
      "--server",
      c.base,
      "--token-file",
      join(c.isched.dataDir, "api-token"),
    ],
    {
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, out, err };
}

onBothBackends("console messages", (b) => {
  beforeAll(async () => {
    hook = startWebhook("3.7;Invalid calendar user");
    c = await startConsoleServer({
      database: await b.serverDatabase(),
      domains: ["example.com"],
      deliver: [parseDeliverRule(`webhook:${hook.url}`)],
      webhookSecret: "test-webhook-secret",
      trust: [parseTrustRule("example.org=unsigned:127.0.0.1")],
    });
  });

  afterAll(async () => {
    await c.close();
    hook.stop();
  });

  describe("messages", () => {
    let id: number;

    test("an invitation the calendar server refuses is listed as failed, and the filter finds it", async () => {
      await sendInvitation("inv-1@example.org", "Design review");
      const page = await eventually(async () => {
        const p = await list("status:failed");
        return p.messages.length > 0 ? p : undefined;
      });
      const m = page.messages[0]!;
      id = m.id;
      expect(m).toMatchObject({
        uid: "inv-1@example.org",
        direction: "inbound",
        peerDomain: "example.org",
        dkimResult: "trusted",
      });
      expect(m.deliveryStates).toEqual({ failed: 1 });
      expect((await list("peer:example.org uid:inv-1@example.org")).messages.map((x) => x.id)).toEqual([id]);
      expect((await list("-status:failed")).messages.map((x) => x.id)).not.toContain(id);
      const bad = await c.token(`/api/v1/messages?q=${encodeURIComponent("status:failed size:big")}`);
      expect(bad.status).toBe(400);
      expect((await bad.json()) as object).toMatchObject({ position: 14 });
    });

    test("the detail renders the invitation and shows the attempt, what happens next, and the actions", async () => {
      const m = await detail(id);
      expect(m.itip).toMatchObject({ ok: true, view: { title: "Invitation: Design review" } });
      expect(m.dkim.result).toBe("trusted");
      const d = m.deliveries[0]!;
      expect(d).toMatchObject({
        recipient: "mailto:bob@example.com",
        state: "failed",
        requestStatus: "3.7;Invalid calendar user",
      });
      expect(d.attemptList).toHaveLength(1);
      expect(d.attemptList[0]).toMatchObject({ target: hook.url, httpStatus: 200, outcome: "permanent" });
      expect(d.plan).toMatchObject({
        nextAttempt: 2,
        maxAttempts: null,
        nextAttemptAt: null,
        attemptsText: "1 made",
      });
      expect(d.plan.next).toBe(
        "nothing until an operator acts (the answer 3.7;Invalid calendar user is final): Retry now queues it again",
      );
      expect(d.actions).toEqual([
        { action: "retry", allowed: true, command: `isched queue retry ${d.id}` },
        { action: "cancel", allowed: false, command: `isched queue cancel ${d.id}` },
        { action: "imip", allowed: false, command: `isched queue imip ${d.id}` },
      ]);
      expect((await c.token("/api/v1/messages/999999")).status).toBe(404);
      expect((await c.token(`/api/v1/messages/${m.uuid}`)).status).toBe(200);
    });

    test("retry now by delivery id delivers once the calendar server accepts", async () => {
      hook.status = "2.0;Success";
      const d = (await detail(id)).deliveries[0]!;
      const res = await c.token("/api/v1/deliveries/retry", { method: "POST", json: { ids: [d.id] } });
      expect(await res.json()).toEqual({ action: "retry", count: 1, changed: 1 });
      const after = await eventually(async () => {
        const m = await detail(id);
        return m.deliveries[0]!.state === "delivered" ? m : undefined;
      });
      expect(after.deliveries[0]!.attemptList.map((a) => a.outcome)).toEqual(["permanent", "delivered"]);
    });

    test("a filter-wide action needs the count confirmed, and is refused when the set changed", async () => {
      hook.status = "3.7;Invalid calendar user";
      await sendInvitation("bulk-1@example.org");
      await sendInvitation("bulk-2@example.org");
      await eventually(async () => (await list("status:failed")).messages.length === 2 || undefined);
      const q = "status:failed peer:example.org";
      const post = (body: object) =>
        c.token("/api/v1/deliveries/retry", { method: "POST", json: { q, ...body } });
      const dry = (await (await post({ dryRun: true })).json()) as { count: number };
      expect(dry.count).toBe(2);
      expect((await post({})).status).toBe(400);
      const stale = await post({ expect: 3 });
      expect(stale.status).toBe(409);
      expect(((await stale.json()) as { count: number }).count).toBe(2);
      hook.status = "2.0;Success";
      expect(await (await post({ expect: 2 })).json()).toEqual({ action: "retry", count: 2, changed: 2 });
      await eventually(async () => (await list("status:failed")).messages.length === 0 || undefined);
    });

    test("the live stream sends new messages that match its filter", async () => {
      const controller = new AbortController();
      const res = await c.token(`/api/v1/events?q=${encodeURIComponent("uid:live-1@example.org")}`, {
        signal: controller.signal,
      });
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const seen = (async () => {
        while (!text.includes("live-1@example.org")) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
      })();
      await sendInvitation("other@example.org");
      await sendInvitation("live-1@example.org");
      await Promise.race([seen, Bun.sleep(8000)]);
      controller.abort();
      expect(text).toContain("event: ready");
      expect(text).toContain("event: messages");
      expect(text).toContain("live-1@example.org");
      const events = text.split("\n\n").filter((e) => e.startsWith("event: messages"));
      // Only messages that match the filter are sent; other changes show up as ids alone.
      expect(events.join()).not.toContain('"uid":"other@example.org"');
    });

    test("the live stream starts with the queue's counts by state", async () => {
      await sendInvitation("live-counts@example.org");
      const controller = new AbortController();
      const res = await c.token("/api/v1/events?q=", { signal: controller.signal });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const first = (async () => {
        while (!/event: counts\ndata: .*\n\n/.test(text)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
        }
      })();
      await Promise.race([first, Bun.sleep(5000)]);
      controller.abort();
      const data = /event: counts\ndata: (.*)\n\n/.exec(text)?.[1];
      expect(data).toBeDefined();
      const counts = (JSON.parse(data!) as { counts: Record<string, number> }).counts;
      // At least the delivery of the invitation just sent (it was an empty object: a promise serialised).
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
    });

    test("the submission API (isched send) takes the API token, and the message is in the log", async () => {
      const res = await c.token("/api/v1/messages", {
        method: "POST",
        json: {
          calendar: invitation({
            uid: "sub-1@example.com",
            organizer: "mailto:carol@example.com",
            attendees: ["mailto:bob@example.com"],
          }),
        },
      });
      expect(res.status).toBe(202);
      const page = await list("uid:sub-1@example.com direction:out");
      expect(page.messages[0]).toMatchObject({ intake: "api", originator: "mailto:carol@example.com" });
    });

    test("the overview counts attempts by outcome and lists the latest failures", async () => {
      const o = (await (await c.token("/api/v1/overview")).json()) as {
        listeners: { name: string }[];
        targets: { label: string; last: { outcome: string } | null }[];
        hour: { counts: Record<string, number> }[];
        failures: { requestStatus: string }[];
      };
      const total = (k: string) => o.hour.reduce((n, b) => n + (b.counts[k] ?? 0), 0);
      expect(total("permanent")).toBeGreaterThanOrEqual(3);
      expect(total("delivered")).toBeGreaterThanOrEqual(3);
      expect(o.failures[0]!.requestStatus).toBe("3.7;Invalid calendar user");
      expect(o.listeners.map((l) => l.name)).toEqual(["iSchedule endpoint", "Console and API"]);
      expect(o.targets[0]).toMatchObject({ label: `webhook:${hook.url}`, last: { outcome: "delivered" } });
    });
  });

  describe("isched queue", () => {
    test("list and show read the log; a bad filter is a usage error", async () => {
      const l = await cli("queue", "list", "uid:inv-1@example.org");
      expect(l.code).toBe(0);
      expect(l.out).toMatch(/^ID\s+RECEIVED \(UTC\)\s+DIR\s+PEER/);
      expect(l.out).toContain("example.org");
      expect(l.out).toContain("delivered:1");
      const id = /^(\d+)\s/m.exec(l.out.split("\n")[1]!)![1]!;
      const s = await cli("queue", "show", id);
      expect(s.code).toBe(0);
      expect(s.out).toContain("Invitation: Design review");
      expect(s.out).toContain("#2");
      const bad = await cli("queue", "list", "colour:red");
      expect(bad.code).toBe(2);
      expect(bad.err).toContain('unknown key "colour:"');
    });

    test("retry by filter counts first and acts only with --yes", async () => {
      hook.status = "3.7;Invalid calendar user";
      await sendInvitation("cli-1@example.org");
      await eventually(
        async () => (await list("uid:cli-1@example.org status:failed")).messages.length === 1 || undefined,
      );
      hook.status = "2.0;Success";
      const dry = await cli("queue", "retry", "--filter", "uid:cli-1@example.org");
      expect(dry.out).toBe("1 deliveries would be retried now; add --yes to do it\n");
      expect((await list("uid:cli-1@example.org status:failed")).messages).toHaveLength(1);
      const done = await cli("queue", "retry", "--filter", "uid:cli-1@example.org", "--yes");
      expect(done.out).toBe("1 of 1 deliveries retried now\n");
      await eventually(
        async () => (await list("uid:cli-1@example.org status:delivered")).messages.length === 1 || undefined,
      );
    });

    test("a wrong token is one line and exit code 1", async () => {
      const p = Bun.spawn(
        [process.execPath, MAIN, "queue", "list", "--server", c.base, "--token-file", "/dev/null"],
        {
          stdout: "pipe",
          stderr: "pipe",
        },
      );
      expect(await p.exited).toBe(1);
      expect(await new Response(p.stderr).text()).toContain("is empty");
    });
  });
});

// Pure: the plan of a delivery, the same whatever the store.
describe("what happens next", () => {
  const base = {
    id: 1,
    messageId: 1,
    recipient: "mailto:x@peer.example",
    domain: "peer.example",
    target: null,
    attempts: 2,
    nextAttemptAt: 5000,
    leaseOwner: null,
    leaseExpiresAt: null,
    leaseBreaks: 0,
    requestStatus: null,
    lastError: null,
    fallbackAt: null,
    createdAt: 0,
    updatedAt: 0,
    finalAt: null,
  };
  const schedule = { scheduleMs: [60_000, 300_000, 900_000], imipAvailable: true };

  test("a remote delivery shows attempt n of max and when iMIP takes over", () => {
    const p = planOf(
      { ...base, route: "ischedule", state: "queued", fallbackAt: Date.UTC(2026, 0, 1) },
      schedule,
    );
    expect(p).toMatchObject({
      nextAttempt: 3,
      maxAttempts: 4,
      nextAttemptAt: 5000,
      attemptsText: "2 of 4",
    });
    expect(p.next).toBe("attempt 3 of 4 at 1970-01-01T00:00:05.000Z (retry schedule 1m,5m,15m)");
    expect(p.fallback).toBe(
      "by iMIP after attempt 4 or at 2026-01-01T00:00:00.000Z (--fallback-after), whichever comes first; at once if the peer has no iSchedule service (5.2/5.3)",
    );
    expect(
      planOf({ ...base, route: "ischedule", state: "queued" }, { ...schedule, imipAvailable: false })
        .fallback,
    ).toBe("never: iMIP is off (no --smtp), so the delivery fails after attempt 4");
  });

  test("local, iMIP and finished deliveries say so", () => {
    expect(planOf({ ...base, route: "local", state: "queued" }, schedule)).toMatchObject({
      maxAttempts: null,
      attemptsText: "2 made",
      next: "attempt 3 at 1970-01-01T00:00:05.000Z; our own calendar server is retried every 15m at most, until 1970-01-31T00:00:00.000Z",
      fallback: "none: deliveries to our own calendar server are not e-mailed",
    });
    expect(planOf({ ...base, route: "imip", state: "queued" }, schedule).fallback).toBe(
      "this delivery goes by iMIP (e-mail); it fails after attempt 4",
    );
    expect(planOf({ ...base, route: "ischedule", state: "delivered" }, schedule)).toMatchObject({
      nextAttemptAt: null,
    });
  });
});
