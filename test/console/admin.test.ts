/**
 * Console access from the command line: `isched serve` prints a setup token that sets the first
 * password, `--admin-password-file` sets it at start, a console on a network address needs TLS or
 * --console-insecure, and `isched admin set-password` writes the hash (directly, or through the
 * running server's API).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adminPasswordMatches, hasAdminPassword } from "../../src/console/auth.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { createSqliteStore } from "../../src/store/sqlite/store.ts";
import { freePort } from "../support/ports.ts";
import { startConsoleServer } from "./_console.ts";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "isched-admin-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function run(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, MAIN, ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, out, err };
}

/** Starts `isched serve`, returns once it printed `until`, with what it printed. */
async function serve(args: string[], until: RegExp): Promise<{ out: string; stop: () => Promise<void> }> {
  const p = Bun.spawn([process.execPath, MAIN, "serve", ...args], { stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 20_000;
  while (!until.test(out) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  return {
    out,
    stop: async () => {
      p.kill("SIGTERM");
      await p.exited;
    },
  };
}

// SQLite only: `serve --data` without --database, read back from the data folder's database file.
describe("isched serve and console access", () => {
  test("without a password it prints a one-time setup token, which sets the first password", async () => {
    const data = tempDir();
    const [listen, consolePort] = [await freePort(), await freePort()];
    const s = await serve(
      [
        "--data",
        data,
        "--domain",
        "example.com",
        "--listen",
        `127.0.0.1:${listen}`,
        "--console",
        `127.0.0.1:${consolePort}`,
      ],
      /setup token[^\n]*\n[^\n]*\n {2}\S+\n/,
    );
    try {
      const token = /setup token[^\n]*\n[^\n]*\n {2}(\S+)\n/.exec(s.out)?.[1];
      expect(token).toBeDefined();
      const res = await fetch(`http://127.0.0.1:${consolePort}/api/v1/setup`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token, password: "a good long password" }),
      });
      expect(res.status).toBe(201);
    } finally {
      await s.stop();
    }
    const db = openDatabase(join(data, "isched.db"));
    expect(await adminPasswordMatches(createSqliteStore(db), "a good long password")).toBe(true);
    db.close();
  });

  test("--admin-password-file sets the password, and no token is printed", async () => {
    const data = tempDir();
    const file = join(data, "..", `${data.split("/").pop()}-pw`);
    writeFileSync(file, "from the file 123\n");
    dirs.push(file);
    const [listen, consolePort] = [await freePort(), await freePort()];
    const s = await serve(
      [
        "--data",
        data,
        "--listen",
        `127.0.0.1:${listen}`,
        "--console",
        `127.0.0.1:${consolePort}`,
        "--admin-password-file",
        file,
      ],
      /console\/API/,
    );
    // Signing in with it works once isched has stored the hash (right after it printed its summary).
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      const res = await fetch(`http://127.0.0.1:${consolePort}/api/v1/session`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password: "from the file 123" }),
      });
      status = res.status;
      if (status !== 200) await Bun.sleep(100 + Number(res.headers.get("retry-after") ?? 0) * 1000);
    }
    await s.stop();
    expect(status).toBe(200);
    expect(s.out).not.toContain("setup token");
    const db = openDatabase(join(data, "isched.db"));
    expect(await adminPasswordMatches(createSqliteStore(db), "from the file 123")).toBe(true);
    db.close();
  });

  test("a console on a network address needs TLS or --console-insecure; a weak password file is refused", async () => {
    const data = tempDir();
    const open = await run(["serve", "--data", data, "--console", "0.0.0.0:0"]);
    expect(open.code).toBe(2);
    expect(open.err).toContain(
      "a console on a network address needs TLS (--tls-cert/--tls-key), or --console-insecure",
    );
    const weak = join(data, "weak");
    writeFileSync(weak, "short\n");
    const w = await run(["serve", "--data", data, "--admin-password-file", weak]);
    expect(w.code).toBe(2);
    expect(w.err).toContain("--admin-password-file: the password needs at least 10 characters");
  });
});

// SQLite only: `admin set-password --data` writes the data folder's database file (it has no --database).
describe("isched admin set-password", () => {
  test("writes the hash into the database when isched is not running", async () => {
    const data = tempDir();
    openDatabase(join(data, "isched.db")).close();
    const r = await run(["admin", "set-password", "--data", data], "typed on stdin 42\n");
    expect(r.code).toBe(0);
    const db = openDatabase(join(data, "isched.db"));
    expect(await hasAdminPassword(createSqliteStore(db))).toBe(true);
    expect(await adminPasswordMatches(createSqliteStore(db), "typed on stdin 42")).toBe(true);
    db.close();
    const weak = await run(["admin", "set-password", "--data", data], "short\n");
    expect(weak.code).toBe(2);
  });

  test("goes through the API with the token while isched runs", async () => {
    const c = await startConsoleServer();
    try {
      const s = await c.signIn();
      const r = await run(
        ["admin", "set-password", "--data", c.isched.dataDir, "--server", c.base],
        "changed by the CLI 1\n",
      );
      expect(r.code).toBe(0);
      expect(r.out).toContain("everyone was signed out");
      expect(await adminPasswordMatches(c.isched.store, "changed by the CLI 1")).toBe(true);
      expect((await c.session(s, "/api/v1/overview")).status).toBe(401);
    } finally {
      await c.close();
    }
  });
});
