/**
 * Console sessions are kept in the database, so restarting isched (an upgrade) signs nobody out;
 * only the SHA-256 of a session's cookie is stored, and sessions still end when idle for 12 hours,
 * after 7 days, on sign-out and with a new password.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { SESSION_IDLE_MS, SESSION_MAX_MS, SessionStore } from "../../src/console/auth.ts";
import { removeTempDirs } from "../store/_temp-dir.ts";
import { runBinary } from "../support/cli.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { type ConsoleServer, startConsoleServer } from "./_console.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  removeTempDirs();
});

onBothBackends("console sessions", (b) => {
  describe("a restart", () => {
    test("keeps everyone signed in, with the same CSRF token; the database holds no cookie", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "isched-sessions-"));
      dirs.push(dataDir);
      const database = await b.serverDatabase();
      let c: ConsoleServer = await startConsoleServer({ dataDir, database });
      const s = await c.signIn();
      const gone = await c.signIn();
      expect((await c.session(gone, "/api/v1/session", { method: "DELETE" })).status).toBe(200);
      await c.close();

      c = await startConsoleServer({ dataDir, database }, { password: null });
      try {
        const who = await c.session(s, "/api/v1/session");
        expect(await who.json()).toEqual({ signedIn: true, via: "session", csrfToken: s.csrf });
        // A change, with the CSRF token the page got before the restart.
        const put = await c.session(s, "/api/v1/peers/example.org/policy", {
          method: "PUT",
          json: { trust: "deny" },
        });
        expect(put.status).toBe(200);
        // Signed out before the restart: still signed out.
        expect((await c.session(gone, "/api/v1/overview")).status).toBe(401);
      } finally {
        await c.close();
      }
      const secret = s.cookie.split("=")[1]!;
      expect(secret.length).toBeGreaterThan(30);
      if (database !== undefined) {
        const sql = new SQL(database);
        const rows = await sql`SELECT t::text AS row FROM console_sessions t`;
        await sql.close();
        expect(rows.length).toBeGreaterThan(0);
        for (const { row } of rows as { row: string }[]) {
          expect(row.includes(secret)).toBe(false);
          expect(row.includes(s.csrf)).toBe(false);
        }
      }
      for (const f of ["isched.db", "isched.db-wal"]) {
        let bytes = "";
        try {
          bytes = readFileSync(join(dataDir, f), "latin1");
        } catch {
          continue;
        }
        expect(bytes.includes(secret)).toBe(false);
        expect(bytes.includes(s.csrf)).toBe(false);
      }
    });
  });

  describe("SessionStore", () => {
    test("ends a session idle for 12 hours, or 7 days old however busy, and forgets it", async () => {
      let now = 1_000_000;
      const store = new SessionStore(await b.fresh(), () => now);
      const idle = await store.create();
      const busy = await store.create();
      now += SESSION_IDLE_MS - 60_000;
      expect(await store.get(busy.cookieValue)).toBeDefined();
      now += 120_000;
      expect(await store.get(idle.cookieValue)).toBeUndefined();
      // Kept busy, it still ends 7 days after sign-in.
      while (now < 1_000_000 + SESSION_MAX_MS - SESSION_IDLE_MS) {
        now += SESSION_IDLE_MS / 2;
        expect(await store.alive(busy.cookieValue)).toBe(true);
        expect((await store.get(busy.cookieValue))?.csrfToken).toBe(busy.session.csrfToken);
      }
      now = 1_000_000 + SESSION_MAX_MS + 1;
      expect(await store.get(busy.cookieValue)).toBeUndefined();
      expect(await store.size()).toBe(0);
    });

    test("a new password (clear) ends every session, in this process and the next", async () => {
      const first = await b.fresh();
      const store = new SessionStore(first);
      const a = await store.create();
      await store.clear();
      expect(await store.get(a.cookieValue)).toBeUndefined();
      expect(await new SessionStore(await b.another(first)).get(a.cookieValue)).toBeUndefined();
    });
  });
});

// SQLite only: `isched admin set-password --data` writes the data folder's database file.
describe("a password set while isched is stopped", () => {
  test("ends every session (isched admin set-password --data)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "isched-sessions-"));
    dirs.push(dataDir);
    let c = await startConsoleServer({ dataDir });
    const s = await c.signIn();
    await c.close();
    writeFileSync(join(dataDir, "new-password"), "a brand new password\n");
    const r = await runBinary([
      "admin",
      "set-password",
      "--data",
      dataDir,
      "--password-file",
      join(dataDir, "new-password"),
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    c = await startConsoleServer({ dataDir }, { password: null });
    try {
      expect((await c.session(s, "/api/v1/overview")).status).toBe(401);
      expect((await c.signIn("a brand new password")).cookie).toContain("isched_session=");
    } finally {
      await c.close();
    }
  });
});
