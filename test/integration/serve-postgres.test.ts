/**
 * `isched serve --database postgres://…` (ISCHED_DATABASE): the compiled binary keeps its messages
 * and queue in a real PostgreSQL (test/support/postgres.ts) instead of DATA/isched.db, says so in
 * its start-up summary with the password redacted, and refuses to start, in one line naming
 * --database and with the password never printed, when the URL is not a PostgreSQL URL (usage, 2)
 * or the server cannot be used (unreachable, wrong password: 1). `isched help serve` and
 * `isched validate` list --database and --node-id.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { runIsched } from "../support/binary-run.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { freePort } from "../support/ports.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { rawExchange } from "../support/raw-http.ts";
import { running, serveProcess } from "../support/serve-process.ts";
import { signedPostBytes } from "../support/signed-post.ts";

const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
let dir: string;
let pg: RunningPostgres;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-serve-pg-"));
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

const baseArgs = (data: string) => [
  "--domain",
  "a.test",
  "--listen",
  "127.0.0.1:0",
  "--console",
  "127.0.0.1:0",
  "--data",
  join(dir, data),
  "--peer-key",
  `peer.test:s1=${join(dir, "peer.pub.pem")}`,
  "--sign-unpublished",
];

describe("serve --database", () => {
  test("keeps messages in PostgreSQL, not in DATA/isched.db; the summary names the database without its password", async () => {
    const s = running(
      await serveProcess([...baseArgs("d1"), "--database", pg.url, "--node-id", "node-a"], {
        timeoutMs: 30_000,
      }),
    );
    try {
      const out = s.stdout();
      expect(out).toContain(
        `database      postgres://${pg.user}:***@127.0.0.1:${pg.port}/${pg.database} (PostgreSQL; this node is node-a)`,
      );
      expect(out).toContain("--database");
      expect(out + s.stderr()).not.toContain(pg.password);
      const body = invitation({
        uid: "pg-serve-1",
        organizer: "mailto:bernard@peer.test",
        attendees: ["mailto:ann@a.test"],
      });
      const answer = await rawExchange({
        port: s.port,
        request: signedPostBytes({
          key: peerKey,
          originator: "mailto:bernard@peer.test",
          recipients: ["mailto:ann@a.test"],
          body,
        }),
        timeoutMs: 10_000,
      });
      expect(answer.status).toBe(200);
      expect(statuses(answer.text)["mailto:ann@a.test"]).toMatch(/^2\.0/);
      expect(await pg.admin("SELECT uid FROM messages", pg.database)).toBe("pg-serve-1");
      expect(await pg.admin("SELECT state FROM deliveries", pg.database)).toBe("delivered");
      expect(existsSync(join(dir, "d1", "isched.db"))).toBe(false);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    expect(s.stdout() + s.stderr()).not.toContain(pg.password);
  }, 60_000);

  test("ISCHED_DATABASE that is not a PostgreSQL URL: one line naming it, exit 2, no password", async () => {
    const r = await runIsched(["serve", ...baseArgs("d2")], {
      env: { ISCHED_DATABASE: "mysql://isched:hunter2secret@127.0.0.1/isched" },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("ISCHED_DATABASE");
    expect(r.stderr).toContain("mysql:// is not a PostgreSQL URL");
    expect(r.stdout + r.stderr).not.toContain("hunter2secret");
  });

  test("a database nobody answers on: one line naming --database, exit 1, no password", async () => {
    const url = `postgres://isched:hunter2secret@127.0.0.1:${await freePort()}/isched`;
    const r = await runIsched(["serve", ...baseArgs("d3"), "--database", url]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^isched: --database: cannot use postgres:\/\/isched:\*\*\*@127\.0\.0\.1:\d+\/isched: /,
    );
    expect(r.stdout + r.stderr).not.toContain("hunter2secret");
    expect(existsSync(join(dir, "d3", "isched.db"))).toBe(false);
  });

  test("a wrong password: one line naming --database, exit 1, neither password printed", async () => {
    const url = pg.url.replace(pg.password, "wrong-password-0123");
    const r = await runIsched(["serve", ...baseArgs("d4"), "--database", url]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("--database: cannot use");
    expect(r.stdout + r.stderr).not.toContain("wrong-password-0123");
  });

  test("help serve and validate list --database and --node-id; validate redacts the password", async () => {
    const help = await runIsched(["help", "serve"]);
    expect(help.stdout).toMatch(/--database URL/);
    expect(help.stdout).toMatch(/--node-id NAME/);
    const v = await runIsched(["validate", ...baseArgs("d5"), "--database", pg.url, "--node-id", "node-b"]);
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain(`postgres://${pg.user}:***@`);
    expect(v.stdout).toMatch(/node-id\s.*node-b/);
    expect(v.stdout + v.stderr).not.toContain(pg.password);
  });
});
