import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireDataLock, type LockHolder, lockPathFor } from "../../src/store/sqlite/data-lock.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { removeTempDirs, tempDatabasePath, tempDir } from "./_temp-dir.ts";

afterEach(removeTempDirs);

const HOLDER_SCRIPT = join(import.meta.dir, "hold-database.ts");
const hasProc = existsSync("/proc/self/stat");

function readLock(path: string): LockHolder {
  return JSON.parse(readFileSync(path, "utf8")) as LockHolder;
}

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = Bun.spawn([process.execPath, "-e", "0"]);
  await child.exited;
  return child.pid;
}

async function startHolder(path: string): Promise<Bun.Subprocess<"ignore", "pipe", "pipe">> {
  const child = Bun.spawn([process.execPath, HOLDER_SCRIPT, path], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the holder exited early: ${await new Response(child.stderr).text()}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  expect(text).toBe(`ready ${child.pid}\n`);
  return child;
}

describe("the data lock", () => {
  test("refuses a second process, then recovers the lock once that process is killed", async () => {
    const path = tempDatabasePath();
    const holder = await startHolder(path);
    try {
      expect(readLock(lockPathFor(path)).pid).toBe(holder.pid);
      expect(() => openDatabase(path)).toThrow(
        new RegExp(
          `^Cannot open the database ${path}: it is in use by another isched process \\(pid ${holder.pid}, since `,
        ),
      );
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
    // kill -9 left the lock file behind: it is stale now.
    expect(readLock(lockPathFor(path)).pid).toBe(holder.pid);
    const db = openDatabase(path);
    expect(readLock(lockPathFor(path)).pid).toBe(process.pid);
    db.close();
    expect(existsSync(lockPathFor(path))).toBe(false);
  });

  test("takes over a stale lock left by a process that no longer exists", async () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    const pid = await deadPid();
    writeFileSync(lockPath, JSON.stringify({ pid, hostname: hostname(), token: "old", acquiredAt: "then" }));
    const lock = acquireDataLock(lockPath);
    const now = readLock(lockPath);
    expect(now.pid).toBe(process.pid);
    expect(now.token).not.toBe("old");
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  test("takes over a lock file that is not a lock (truncated by a power loss)", () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    writeFileSync(lockPath, "");
    const lock = acquireDataLock(lockPath);
    expect(readLock(lockPath).pid).toBe(process.pid);
    lock.release();
  });

  test.skipIf(!hasProc)("a live pid with another start time is a reused pid, so its lock is stale", () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    const live = process.ppid;
    const stale = { pid: live, hostname: hostname(), startTime: "1", token: "old", acquiredAt: "then" };
    writeFileSync(lockPath, JSON.stringify(stale));
    const lock = acquireDataLock(lockPath);
    expect(readLock(lockPath).pid).toBe(process.pid);
    lock.release();
  });

  test.skipIf(!hasProc)("a live pid with its own start time holds the lock", () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    const live = process.ppid;
    const holder = {
      pid: live,
      hostname: hostname(),
      startTime: startTimeOf(live),
      token: "t",
      acquiredAt: "then",
    };
    writeFileSync(lockPath, JSON.stringify(holder));
    expect(() => acquireDataLock(lockPath)).toThrow(
      `it is in use by another isched process (pid ${live}, since then`,
    );
    expect(readLock(lockPath).token).toBe("t");
  });

  test("a lock held on another host is refused with the way out", () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    writeFileSync(
      lockPath,
      JSON.stringify({ pid: 42, hostname: "elsewhere", token: "t", acquiredAt: "then" }),
    );
    expect(() => acquireDataLock(lockPath)).toThrow(
      `it is in use by isched process 42 on host elsewhere since then; if that process is gone, delete ${lockPath}`,
    );
  });

  test("one process may open the database twice; the lock goes with its last connection", () => {
    const path = tempDatabasePath();
    const a = openDatabase(path);
    const b = openDatabase(path);
    const token = readLock(lockPathFor(path)).token;
    a.close();
    expect(readLock(lockPathFor(path)).token).toBe(token);
    b.close();
    expect(existsSync(lockPathFor(path))).toBe(false);
  });

  test("releasing a handle twice does not release another handle's share", () => {
    const lockPath = join(tempDir(), "isched.db.lock");
    const a = acquireDataLock(lockPath);
    const b = acquireDataLock(lockPath);
    a.release();
    a.release();
    expect(existsSync(lockPath)).toBe(true);
    b.release();
    expect(existsSync(lockPath)).toBe(false);
  });

  test("a database that fails to open gives its lock back", () => {
    const path = tempDatabasePath();
    writeFileSync(path, "not a database".repeat(100));
    expect(() => openDatabase(path)).toThrow("the file is not an SQLite database");
    expect(existsSync(lockPathFor(path))).toBe(false);
  });
});
