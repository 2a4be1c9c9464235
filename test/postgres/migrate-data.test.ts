/**
 * `isched migrate-data` with the compiled binary, as an operator moves an installation to
 * PostgreSQL: an isched that served real traffic (signed inbound requests delivered to a webhook and
 * others queued while it refused, a refused request, a cancelled delivery, its own DKIM key, a peer
 * policy, a console password and session) is stopped, copied into the real PostgreSQL, and the
 * PostgreSQL store then answers the console's reads exactly as the SQLite store does, bodies byte
 * for byte. Then the refusals: a target holding data (and --replace), a data folder being served,
 * schemas of another version on either side, a wrong password; the password never printed.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { PASSWORD_SETTING } from "../../src/console/auth.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres/migrations.ts";
import { openPostgresStore, type PostgresStore } from "../../src/store/postgres/store.ts";
import { SCHEMA_VERSION } from "../../src/store/sqlite/migrations.ts";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite/store.ts";
import type { Store } from "../../src/store/store.ts";
import { runIsched } from "../support/binary-run.ts";
import { ED_PRIVATE, ED_PUBLIC, RSA_PRIVATE } from "../support/dkim-fixtures.ts";
import { invitation } from "../support/isched.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { signedPostBytes } from "../support/signed-post.ts";

const START_MS = 120_000;
const key = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
const stranger = loadSigningKey(RSA_PRIVATE, "peer.test", "s1");
const ANN = "mailto:ann@org.test";
const PASSWORD = "migrate data password 123";

let pg: RunningPostgres;
let dir: string;
let data: string;
let webhook: RecordingWebhook;
/** The database the first test copied into. */
let copiedUrl: string;

const serveArgs = () => [
  "--domain",
  "org.test",
  "--listen",
  "127.0.0.1:0",
  "--console",
  "127.0.0.1:0",
  "--data",
  data,
  "--peer-key",
  `peer.test:s1=${join(dir, "peer.pub.pem")}`,
  "--sign-unpublished",
  "--deliver",
  `webhook:${webhook.url}`,
  "--webhook-secret-file",
  join(dir, "webhook-secret"),
  "--admin-password-file",
  join(dir, "admin-password"),
  "--delivery-deadline",
  "500ms",
  "--retry",
  "200ms,1h",
];

function request(uid: string, signWith = key): Buffer {
  // Bytes of every value, CR LF and non-ASCII text among them: the copy must keep them all.
  const body = invitation({
    uid,
    organizer: "mailto:bernard@peer.test",
    attendees: [ANN, "mailto:zoe@org.test"],
    summary: `Réunion ${uid} ${"x".repeat(3000)}`,
  });
  return signedPostBytes({
    key: signWith,
    originator: "mailto:bernard@peer.test",
    recipients: [ANN, "mailto:zoe@org.test"],
    body,
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Every console read of the installation, through the Store interface alone. */
async function reads(store: Store) {
  const page = await store.searchMessages({ filter: [], limit: 100 });
  const ids = page.messages.map((m) => m.id);
  return {
    page,
    details: await Promise.all(ids.map((id) => store.messageDetail(id))),
    counts: await store.deliveryStateCounts(),
    nextDue: await store.nextDueAt(),
    refusals: await store.refusalTotals(),
    keys: await store.keys(),
    policies: await store.peerPolicies(),
    facts: await store.peerFactsOf("peer.test"),
    sessions: await store.countSessions(),
    password: await store.getSetting(PASSWORD_SETTING),
    failures: await store.recentFailures(50),
    inbound: await store.inboundPeerStats(0),
    outbound: await store.outboundPeerStats(0),
    inbox: await store.inbox({ recipient: ANN, limit: 50 }),
  };
}

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "isched-migrate-data-"));
  data = join(dir, "data");
  webhook = startRecordingWebhook();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "webhook-secret"), `${webhook.secret}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "admin-password"), `${PASSWORD}\n`, { mode: 0o600 });

  // An installation with real traffic.
  const s: ServeProcess = running(await serveProcess(serveArgs()));
  try {
    const send = (bytes: Buffer) => rawExchange({ port: s.port, request: bytes, timeoutMs: 15_000 });
    for (const uid of ["delivered-1", "delivered-2", "delivered-3"])
      expect((await send(request(uid))).status).toBe(200);
    await webhook.waitFor((d) => d.length >= 3, 20_000);
    // Queued: the webhook refuses for a while, the first retry fails too, the next is an hour away.
    webhook.refuse(true);
    for (const uid of ["queued-1", "queued-2"]) expect((await send(request(uid))).status).toBe(200);
    // A refused request (a signature by a key the receiver does not know) keeps its metadata.
    expect((await send(request("refused-1", stranger))).status).toBe(403);
    const token = readFileSync(join(data, "api-token"), "utf8").trim();
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${s.consoleUrl}/api/v1${path}`, {
        ...init,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      });
    expect(
      (
        await api("/peers/peer.test/policy", {
          method: "PUT",
          body: JSON.stringify({ trust: "dkim", note: "our partner" }),
        })
      ).status,
    ).toBe(200);
    // A console session: signing in with the password, once isched has stored its hash (a sign-in
    // before that is a 409, counted as a guess).
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      const res = await fetch(`${s.consoleUrl}/api/v1/session`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password: PASSWORD }),
      });
      status = res.status;
      if (status !== 200) await Bun.sleep(100 + Number(res.headers.get("retry-after") ?? 0) * 1000);
    }
    expect(status).toBe(200);
    // Wait until both queued messages have made their two attempts (the second an hour from now).
    const db = new Database(join(data, "isched.db"), { readonly: true });
    try {
      await waitFor(
        () =>
          db
            .query<{ n: number }, []>(
              "SELECT count(*) AS n FROM deliveries WHERE state = 'queued' AND attempts >= 2",
            )
            .get()!.n === 4,
        "the queued deliveries' second attempts",
      );
      const queued = db
        .query<{ id: number }, []>("SELECT id FROM deliveries WHERE state = 'queued' ORDER BY id LIMIT 1")
        .all()
        .map((r) => r.id);
      expect(
        (await api("/deliveries/cancel", { method: "POST", body: JSON.stringify({ ids: queued }) })).status,
      ).toBe(200);
    } finally {
      db.close();
    }
  } finally {
    await s.stop();
  }
}, START_MS);

afterAll(async () => {
  webhook?.release();
  await webhook?.stop();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "an installation with traffic, copied: every table's count printed and equal, and the PostgreSQL store reads back what SQLite held",
  async () => {
    const url = await pg.createDatabase("copied");
    copiedUrl = url;
    const r = await runIsched(["migrate-data", "--from", data, "--to", url]);
    expect(r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain(pg.password);
    expect(r.stdout).toContain(`postgres://${pg.user}:***@127.0.0.1:${pg.port}/copied`);
    expect(r.stdout).toContain("Made isched's schema in the PostgreSQL database");
    expect(r.stdout).toContain("Every table holds the same number of rows on both sides.");

    const sqlite: SqliteStore = openSqliteStore(join(data, "isched.db"));
    const postgres: PostgresStore = await openPostgresStore(url);
    try {
      // The printed counts are the real ones, table by table.
      for (const table of ["messages", "deliveries", "attempts", "replay_keys", "itip_keys", "dkim_keys"]) {
        const n = sqlite.db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
        expect(n).toBeGreaterThan(0);
        expect(r.stdout).toMatch(new RegExp(`\\n  ${table} +${n} +${n}\\n`));
      }
      const before = await reads(sqlite);
      const after = await reads(postgres);
      // What the installation held: 6 messages (one refused), delivered, queued and cancelled
      // deliveries, a key, a policy, a session, the password.
      expect(before.page.messages.length).toBe(6);
      expect(before.counts.delivered).toBe(6);
      expect(before.counts.queued).toBe(3);
      expect(before.counts.cancelled).toBe(1);
      expect(before.refusals.count).toBe(1);
      expect(before.keys.length).toBe(1);
      expect(before.policies.map((p) => p.note)).toEqual(["our partner"]);
      expect(before.sessions).toBe(1);
      expect(before.password).toStartWith("$");
      expect(after).toEqual(before);
      // Bodies byte for byte.
      for (const d of before.details) {
        const copy = await postgres.messageRow(d!.message.uuid);
        expect(Buffer.from(copy!.body).equals(Buffer.from(d!.message.body))).toBe(true);
      }
      // The copy goes on where SQLite stopped: a new message gets an id after the copied ones.
      const nowMs = Date.now();
      const stored = await postgres.accept({
        message: {
          uuid: crypto.randomUUID(),
          receivedAt: nowMs,
          direction: "outbound",
          intake: "api",
          originator: "mailto:ann@org.test",
          method: "REQUEST",
          component: "VEVENT",
          contentType: "text/calendar",
          body: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        },
        deliveries: [],
        nowMs,
      });
      expect(stored.messageId).toBeGreaterThan(Math.max(...before.page.messages.map((m) => m.id)));
    } finally {
      sqlite.close();
      await postgres.close();
    }
  },
  START_MS,
);

test(
  "serve --database on the copy: it keeps the copied DKIM key (makes no new one), the copied console password signs in, and the API lists the copied messages",
  async () => {
    const s = running(
      // Without --admin-password-file: the password that signs in is the one copied.
      await serveProcess(
        [
          ...serveArgs().filter(
            (a, i, all) => a !== "--admin-password-file" && all[i - 1] !== "--admin-password-file",
          ),
          "--database",
          copiedUrl,
          "--node-id",
          "moved",
        ],
        { timeoutMs: 30_000 },
      ),
    );
    try {
      expect(s.stdout()).not.toContain("New DKIM key");
      expect(s.stdout()).not.toContain("setup token");
      expect(s.stdout() + s.stderr()).not.toContain(pg.password);
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        const res = await fetch(`${s.consoleUrl}/api/v1/session`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ password: PASSWORD }),
        });
        status = res.status;
        if (status !== 200) await Bun.sleep(100 + Number(res.headers.get("retry-after") ?? 0) * 1000);
      }
      expect(status).toBe(200);
      const token = readFileSync(join(data, "api-token"), "utf8").trim();
      const res = await fetch(`${s.consoleUrl}/api/v1/messages?limit=100`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const page = (await res.json()) as { messages: { uid: string | null }[] };
      // The six copied (the refused one keeps no UID) and the one the first test stored after the copy.
      expect(page.messages).toHaveLength(7);
      expect(page.messages.flatMap((m) => (m.uid === null ? [] : [m.uid])).sort()).toEqual([
        "delivered-1",
        "delivered-2",
        "delivered-3",
        "queued-1",
        "queued-2",
      ]);
      expect(await pg.admin("SELECT count(*) FROM dkim_keys", "copied")).toBe("1");
    } finally {
      expect(await s.stop()).toBe(0);
    }
  },
  START_MS,
);

test(
  "a target that already holds data is refused in one line; --replace empties it and copies again, once no node runs there",
  async () => {
    const url = await pg.createDatabase("twice");
    expect((await runIsched(["migrate-data", "--from", data, "--to", url])).exitCode).toBe(0);
    const again = await runIsched(["migrate-data", "--from", data, "--to", url]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toContain("already holds data (6 messages");
    expect(again.stderr).toContain("--replace");
    expect(again.stderr + again.stdout).not.toContain(pg.password);
    // Not while a node may run on it: its heartbeat is recent and it has not stopped.
    await pg.admin(
      `INSERT INTO nodes (id, host, pid, version, started_at, seen_at) VALUES ('n1', 'h1', 1, '', ${Date.now()}, ${Date.now()})`,
      "twice",
    );
    const live = await runIsched(["migrate-data", "--from", data, "--to", url, "--replace"]);
    expect(live.exitCode).toBe(1);
    expect(live.stderr.trim().split("\n")).toHaveLength(1);
    expect(live.stderr).toContain("nodes may still run on the PostgreSQL database (n1 on h1, heartbeat");
    expect(await pg.admin("SELECT count(*) FROM messages", "twice")).toBe("6");
    await pg.admin(`UPDATE nodes SET stopped_at = ${Date.now()}`, "twice");
    const replaced = await runIsched(["migrate-data", "--from", data, "--to", url, "--replace"]);
    expect(replaced.stderr).toBe("");
    expect(replaced.exitCode).toBe(0);
    expect(replaced.stdout).toMatch(/\n {2}messages +6 +6\n/);
  },
  START_MS,
);

test(
  "a data folder being served is refused: the copy needs its data lock",
  async () => {
    const url = await pg.createDatabase("served");
    const s = running(await serveProcess(serveArgs()));
    try {
      const r = await runIsched(["migrate-data", "--from", data, "--to", url]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`refusing to copy ${data}`);
      expect(r.stderr).toContain("stop that isched first");
      expect(r.stdout).toBe("");
    } finally {
      await s.stop();
    }
    // Nothing was written to the target.
    const sql = new SQL({ url, max: 1 });
    try {
      const [row] = await sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
      expect(row.n).toBe(0);
    } finally {
      await sql.close();
    }
  },
  START_MS,
);

test(
  "a schema that is not this isched's, on either side, is refused in one line",
  async () => {
    // SQLite one migration behind.
    const old = join(dir, "old");
    rmSync(old, { recursive: true, force: true });
    Bun.spawnSync(["mkdir", "-p", old]);
    copyFileSync(join(data, "isched.db"), join(old, "isched.db"));
    const db = new Database(join(old, "isched.db"));
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION - 1}`);
    db.close();
    const r1 = await runIsched(["migrate-data", "--from", old, "--to", await pg.createDatabase("oldsqlite")]);
    expect(r1.exitCode).toBe(1);
    expect(r1.stderr.trim().split("\n")).toHaveLength(1);
    expect(r1.stderr).toContain(`its schema is older (schema ${SCHEMA_VERSION - 1}`);

    // PostgreSQL one migration behind, and one ahead.
    const writes = POSTGRES_MIGRATIONS.length;
    for (const [name, version, says] of [
      ["oldpg", writes - 1, `has schema ${writes - 1} and this isched writes schema ${writes}`],
      ["newpg", writes + 1, "written by isched 9.9.9"],
    ] as const) {
      const url = await pg.createDatabase(name);
      const store = await openPostgresStore(url);
      await store.close();
      await pg.admin(`UPDATE schema_meta SET version = ${version}, written_by = '9.9.9'`, name);
      const r = await runIsched(["migrate-data", "--from", data, "--to", url]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(says);
      expect(r.stderr + r.stdout).not.toContain(pg.password);
    }
  },
  START_MS,
);

test(
  "a wrong password or a server that is down: one line, exit 1, and no password printed",
  async () => {
    const url = await pg.createDatabase("wrongpw");
    const wrong = url.replace(pg.password, "not-the-password-42");
    const r = await runIsched(["migrate-data", "--from", data, "--to", wrong]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`postgres://${pg.user}:***@`);
    expect(r.stderr + r.stdout).not.toContain("not-the-password-42");

    const closed = url.replace(`:${pg.port}/`, ":1/");
    const down = await runIsched(["migrate-data", "--from", data, "--to", closed]);
    expect(down.exitCode).toBe(1);
    expect(down.stderr.trim().split("\n")).toHaveLength(1);
    expect(down.stderr).toContain("(connection refused)");
    expect(down.stderr + down.stdout).not.toContain(pg.password);

    const usage = await runIsched(["migrate-data", "--from", data]);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain("--to");
  },
  START_MS,
);

test("isched help lists migrate-data", async () => {
  const r = await runIsched(["help"]);
  expect(r.stdout).toContain("migrate-data");
  const h = await runIsched(["help", "migrate-data"]);
  expect(h.stdout).toContain("--replace");
});
