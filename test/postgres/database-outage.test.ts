/**
 * The PostgreSQL database lost while isched runs, and back: the whole server in this process on
 * PostgreSQL (the configuration's `database`, as serve --database gives it), with real sockets all round: signed iSchedule requests
 * from a peer delivered to a webhook, the SMTP intake taking iMIP mail from the calendar server for
 * a remote iSchedule receiver (a second isched, on SQLite, over HTTPS) and relaying the rest to an SMTP server.
 *
 * While the real PostgreSQL is stopped (`pg_ctl stop -m fast`: every session is ended, new ones are
 * refused): an inbound request is answered 503 with an iSchedule error element and Retry-After
 * (never a 500), the SMTP intake answers 451 4.3.0, the dispatcher logs the outage once and backs
 * off. Once PostgreSQL is started again, without restarting isched: the same requests are accepted,
 * the queue drains, and what was accepted before the outage is delivered, each once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePeerKey } from "../../src/config/rules.ts";
import type { ServeConfig } from "../../src/config/serve-config.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { createLogger } from "../../src/log/logger.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { parsePeerFlag } from "../../src/outbound/static-routes.ts";
import { type RunningServer, startServer } from "../../src/server/app.ts";
import type { PostgresStore } from "../../src/store/postgres/store.ts";
import { sendThrough } from "../smtp-intake/_harness.ts";
import { cyrusMail, itipRequest } from "../smtp-intake/_messages.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

const START_MS = 120_000;
const key = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
const ANN = "mailto:ann@example.com";

let pg: RunningPostgres;
let dir: string;
let webhook: RecordingWebhook;
let relay: RunningSmtpServer;
let remote: TestServer;
let ca: TestCa;
let isched: RunningServer;
let store: PostgresStore;
const logs: string[] = [];

function inbound(uid: string): Buffer {
  return signedPostBytes({
    key,
    originator: "mailto:bernard@peer.test",
    recipients: [ANN],
    body: invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: [ANN] }),
  });
}

const send = (bytes: Buffer) =>
  rawExchange({ port: Number(new URL(isched.url).port), request: bytes, timeoutMs: 15_000 });

/** An iMIP invitation from alice@example.com to bob at the remote iSchedule receiver. */
const mail = (uid: string) =>
  sendThrough(smtpPort(), {
    from: "alice@example.com",
    to: ["bob@ischedule.example"],
    raw: cyrusMail({
      to: ["bob@ischedule.example"],
      itip: itipRequest({ uid, attendees: ["bob@ischedule.example"] }),
    }),
  });

const smtpPort = () => isched.smtpPort!;
const lines = (pattern: RegExp) => logs.filter((l) => pattern.test(l));

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Messages the remote isched stored, by UID. */
const remoteUids = () =>
  remote.db
    .query<{ uid: string }, []>("SELECT uid FROM messages WHERE direction = 'inbound' ORDER BY id")
    .all()
    .map((r) => r.uid);

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "isched-pg-outage-"));
  webhook = startRecordingWebhook();
  relay = await startSmtpServer();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  // The remote receiver trusts example.com's unsigned requests from loopback (no DNS here).
  ca = createTestCa();
  const cert = ca.issue(["127.0.0.1"]);
  remote = await startIsched({
    domains: ["ischedule.example"],
    tls: { cert: cert.certPem, key: cert.keyPem, certFile: cert.certFile },
    trust: [{ domain: "example.com", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
  });
  const config: ServeConfig = {
    domains: ["example.com"],
    listen: { host: "127.0.0.1", port: 0 },
    dataDir: join(dir, "data"),
    deliver: [
      {
        domain: "example.com",
        target: { kind: "webhook", url: webhook.url },
      },
    ],
    paths: [],
    trust: [],
    limits: DEFAULT_LIMITS,
    administrator: "mailto:postmaster@example.com",
    deliveryDeadlineMs: 2000,
    retryScheduleMs: [300, 300, 300, 300, 300, 300, 300, 300],
    allowPrivatePeers: true,
    allowSha1: false,
    webhookSecret: webhook.secret,
    peerKeys: [parsePeerKey(`peer.test:s1=${join(dir, "peer.pub.pem")}`)],
    peers: [parsePeerFlag(`ischedule.example=${remote.url}/.well-known/ischedule,sign=no`)],
    ca: ca.caCertPem,
    console: { host: "127.0.0.1", port: 0 },
    sync: "normal",
    smtpIntake: {
      listen: { host: "127.0.0.1", port: 0 },
      allow: parseCidrList("127.0.0.1"),
      relay: `smtp://127.0.0.1:${relay.port}`,
      maxSizeBytes: 1024 * 1024,
    },
  };
  const log = createLogger({ level: "info", write: (line) => logs.push(line) });
  isched = await startServer({ config: { ...config, database: pg.url, nodeId: "outage" }, log });
  store = isched.store as PostgresStore;
}, START_MS);

afterAll(async () => {
  webhook?.release();
  await isched?.stop();
  await remote?.close();
  await webhook?.stop();
  await relay?.stop();
  await pg?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "PostgreSQL stopped and started again: temporary failures only (503 with Retry-After, 451 4.3.0), the dispatcher logs once, and everything resumes without a restart, nothing lost",
  async () => {
    // Before: accepted and delivered, inbound and by SMTP.
    const before = await send(inbound("before-in"));
    expect(before.status).toBe(200);
    expect(statuses(before.text)[ANN]).toStartWith("2.0");
    const mailed = await mail("before-smtp");
    expect(mailed.ok).toBe(true);
    await waitFor(() => remoteUids().includes("before-smtp"), "the SMTP intake's message at the remote peer");

    // Accepted but not yet delivered when the database goes: the webhook holds its answer.
    webhook.hold();
    const held = await send(inbound("held-in"));
    expect(held.status).toBe(200);
    expect(statuses(held.text)[ANN]).toStartWith("1.1");

    const logsBefore = logs.length;
    await pg.stop({ keepData: true });
    try {
      const outageStarted = Date.now();
      // The held attempt finishes during the outage: its outcome waits for the database.
      webhook.release();
      const during = await send(inbound("during-in"));
      expect(during.status).toBe(503);
      expect(Number(during.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(errorElement(during.text)).toBe("invalid-scheduling-message");
      expect(during.text).toContain("try again later");
      expect(during.text).not.toMatch(/at .+\.ts:\d+|Error:/);

      const smtpDuring = await mail("during-smtp");
      expect(smtpDuring.ok).toBe(false);
      if (!smtpDuring.ok) {
        expect(smtpDuring.code).toBe(451);
        expect(smtpDuring.response).toContain("4.3.0");
      }
      // The console's API says the same: try again later, not an internal error.
      const consoleRead = await fetch(`${isched.consoleUrl}/api/v1/messages`, {
        headers: { Authorization: `Bearer ${isched.apiToken}` },
      });
      expect(consoleRead.status).toBe(503);
      expect(consoleRead.headers.get("retry-after")).toMatch(/^\d+$/);

      // Nothing of the refused mail went to the smarthost either.
      expect(relay.messages.some((m) => Buffer.from(m.raw).includes("during-smtp"))).toBe(false);

      // Several seconds of outage: the dispatcher tries again, and says so once.
      while (Date.now() - outageStarted < 6000) await Bun.sleep(200);
      const queueErrors = logs.slice(logsBefore).filter((l) => /delivery queue: /.test(l));
      expect(queueErrors).toHaveLength(1);
      expect(queueErrors[0]).toContain("error delivery queue: cannot");
      expect(logs.slice(logsBefore).some((l) => /inbound request failed|status=500/.test(l))).toBe(false);
    } finally {
      await pg.start();
    }

    // Back, without restarting isched: the same requests are taken, and all is delivered once.
    await waitFor(
      async () => (await send(inbound("after-in"))).status === 200,
      "an inbound request accepted again",
    );
    const again = await send(inbound("during-in"));
    expect(again.status).toBe(200);
    await waitFor(async () => (await mail("during-smtp")).ok, "the SMTP intake accepting again");
    await waitFor(
      () =>
        ["held-in", "during-in", "after-in"].every((uid) => webhook.deliveries.some((d) => d.uid === uid)),
      "every inbound message delivered",
    );
    await waitFor(() => remoteUids().includes("during-smtp"), "the SMTP intake's message at the remote peer");
    const counts = (uid: string) => webhook.deliveries.filter((d) => d.uid === uid).length;
    expect(counts("before-in")).toBe(1);
    expect(counts("held-in")).toBe(1);
    expect(remoteUids().filter((u) => u === "before-smtp")).toHaveLength(1);
    await waitFor(async () => {
      const c = await store.deliveryStateCounts();
      return c.queued === 0 && c["in-flight"] === 0;
    }, "the queue drained");
    const states = await store.deliveryStateCounts();
    expect(states["in-flight"]).toBe(0);
    expect(states.failed).toBe(0);
    // The dispatcher said that the queue works again.
    expect(lines(/delivery queue works again/)).toHaveLength(1);
  },
  START_MS,
);

test(
  "PostgreSQL crashes (immediate shutdown) under a stream of inbound requests: each is answered 200 or 503, never 500, and every one answered 200 is delivered once after the restart",
  async () => {
    const answers = new Map<string, number>();
    let sending = true;
    const stream = (async () => {
      for (let i = 0; sending; i++) {
        const uid = `stream-${i}`;
        answers.set(uid, (await send(inbound(uid))).status);
        await Bun.sleep(30);
      }
    })();
    try {
      await Bun.sleep(1500);
      await pg.kill();
      await Bun.sleep(2500);
    } finally {
      await pg.start();
    }
    // Until a request sent after the restart has been accepted.
    const restartedAt = answers.size;
    await waitFor(
      () => [...answers].slice(restartedAt).some(([, status]) => status === 200),
      "a request accepted after the restart",
    );
    sending = false;
    await stream;

    const codes = [...answers.values()];
    expect(codes.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(codes.filter((s) => s === 503).length).toBeGreaterThan(0);
    const accepted = [...answers].filter(([, s]) => s === 200).map(([uid]) => uid);
    expect(accepted.length).toBeGreaterThan(10);
    await waitFor(
      () => accepted.every((uid) => webhook.deliveries.some((d) => d.uid === uid)),
      "every accepted request delivered",
    );
    for (const uid of answers.keys())
      expect(webhook.deliveries.filter((d) => d.uid === uid).length).toBeLessThanOrEqual(1);
  },
  START_MS,
);
