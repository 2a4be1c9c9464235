/**
 * The PostgreSQL fixture against the real server: it runs unprivileged in its own folder on a free
 * loopback port, the role and database it made take a password login over TCP, its outages (clean
 * stop, crash, dropped sessions) look to a client as they would in production, committed data
 * survives them, and it leaves nothing behind. psql is the client here, so the fixture is proved
 * independently of any driver.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { POSTGRES_BIN, type RunningPostgres, startPostgres } from "../support/postgres.ts";

const START_MS = 60_000;

/** psql as a client over TCP with the URL's password, as a driver would connect. */
function psql(url: string, sql: string): { code: number; out: string; err: string } {
  const r = spawnSync(
    join(POSTGRES_BIN, "psql"),
    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
    {
      encoding: "utf8",
      env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
    },
  );
  return { code: r.status ?? -1, out: r.stdout.trim(), err: r.stderr.trim() };
}

function ownerOf(pid: number): string {
  return spawnSync("ps", ["-o", "user=", "-p", String(pid)], { encoding: "utf8" }).stdout.trim();
}

describe("startPostgres", () => {
  let pg: RunningPostgres;

  beforeAll(async () => {
    pg = await startPostgres();
  }, START_MS);

  afterAll(async () => {
    await pg?.stop();
  });

  test("serves PostgreSQL 15 on a loopback port, with a password login for the fixture's role", () => {
    expect(pg.url).toBe(`postgres://isched:${pg.password}@127.0.0.1:${pg.port}/isched`);
    const r = psql(
      pg.url,
      "SELECT current_user, current_database(), inet_server_addr(), current_setting('server_version_num')::int / 10000",
    );
    expect(r.err).toBe("");
    expect(r.out).toBe("isched|isched|127.0.0.1|15");
  });

  test("refuses a wrong password (scram-sha-256 over TCP, not trust)", () => {
    const r = psql(pg.url.replace(pg.password, "wrong"), "SELECT 1");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("password authentication failed");
    const method = spawnSync("grep", ["-E", "^host", join(pg.dir, "data", "pg_hba.conf")], {
      encoding: "utf8",
    });
    if (process.getuid?.() === 0) expect(method.stdout).toContain("scram-sha-256");
  });

  test("runs unprivileged, with durable commits (the server's defaults)", async () => {
    const postmaster = Number(readFileSync(join(pg.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);
    const owner = ownerOf(postmaster);
    expect(owner).not.toBe("root");
    if (process.getuid?.() === 0) {
      expect(owner).toBe("postgres");
      expect(statSync(join(pg.dir, "data")).uid).not.toBe(0);
    }
    expect(psql(pg.url, "SHOW synchronous_commit").out).toBe("on");
    expect(psql(pg.url, "SHOW fsync").out).toBe("on");
  });

  test("createDatabase() gives a separate, empty database owned by the role", async () => {
    psql(pg.url, "CREATE TABLE IF NOT EXISTS only_in_main (x int)");
    const other = await pg.createDatabase("second_db");
    expect(other).toBe(pg.urlFor("second_db"));
    expect(
      psql(other, "SELECT current_database(), count(*) FROM pg_tables WHERE tablename = 'only_in_main'").out,
    ).toBe("second_db|0");
    expect(psql(other, "CREATE TABLE mine (x int); SELECT 'ok'").out).toBe("ok");
  });

  test(
    "a clean stop closes connections and refuses new ones; start() brings the same data back on the same port",
    async () => {
      expect(
        psql(pg.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before stop'); SELECT 'ok'").out,
      ).toBe("ok");
      // A session that is open when the server goes away sees its connection end.
      const session = Bun.spawn(
        [join(POSTGRES_BIN, "psql"), "-X", "-q", "-A", "-t", pg.url, "-c", "SELECT pg_sleep(30)"],
        {
          stderr: "pipe",
          stdout: "pipe",
        },
      );
      const deadline = Date.now() + 10_000;
      while (
        Number(
          await pg.admin(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()",
          ),
        ) === 0
      ) {
        if (Date.now() > deadline) throw new Error("the sleeping session never showed up");
        await Bun.sleep(20);
      }
      const t0 = Date.now();
      await pg.stop({ keepData: true });
      expect(await session.exited).not.toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await new Response(session.stderr).text()).toMatch(/terminat|server closed the connection/);
      expect(pg.isReady()).toBe(false);
      const refused = psql(pg.url, "SELECT 1");
      expect(refused.code).not.toBe(0);
      expect(refused.err).toMatch(/Connection refused/);

      await pg.start();
      expect(pg.isReady()).toBe(true);
      expect(psql(pg.url, "SELECT v FROM kept").out).toBe("before stop");
    },
    START_MS,
  );

  test(
    "kill() is a crash: committed rows survive it, recovery replays the WAL",
    async () => {
      expect(psql(pg.url, "INSERT INTO kept VALUES ('committed before the crash'); SELECT 'ok'").out).toBe(
        "ok",
      );
      await pg.kill();
      expect(pg.isReady()).toBe(false);
      await pg.start();
      expect(psql(pg.url, "SELECT v FROM kept ORDER BY v").out).toBe(
        "before stop\ncommitted before the crash",
      );
      expect(pg.log()).toMatch(/database system was interrupted|not properly shut down/);
    },
    START_MS,
  );

  test(
    "terminateConnections() drops client sessions while the server stays up",
    async () => {
      const session = Bun.spawn(
        [join(POSTGRES_BIN, "psql"), "-X", "-q", "-A", "-t", pg.url, "-c", "SELECT pg_sleep(30)"],
        {
          stderr: "pipe",
          stdout: "pipe",
        },
      );
      const deadline = Date.now() + 10_000;
      let ended = 0;
      while (ended === 0) {
        if (Date.now() > deadline) throw new Error("the sleeping session never showed up");
        await Bun.sleep(20);
        ended = await pg.terminateConnections();
      }
      expect(ended).toBe(1);
      expect(await session.exited).not.toBe(0);
      expect(await new Response(session.stderr).text()).toContain(
        "terminating connection due to administrator command",
      );
      expect(pg.isReady()).toBe(true);
    },
    START_MS,
  );
});

test(
  "stop() removes the folder and leaves no server running",
  async () => {
    const pg = await startPostgres({ user: "other_role", database: "other_db" });
    expect(psql(pg.url, "SELECT current_user").out).toBe("other_role");
    const dir = pg.dir;
    await pg.stop();
    expect(existsSync(dir)).toBe(false);
    expect(pg.isReady()).toBe(false);
    await expect(pg.start()).rejects.toThrow("the data is gone");
  },
  START_MS,
);

test("startPostgres refuses role and database names that are not plain identifiers", async () => {
  await expect(startPostgres({ user: "x; DROP" })).rejects.toThrow('user "x; DROP"');
  await expect(startPostgres({ database: "Db" })).rejects.toThrow('database "Db"');
});
