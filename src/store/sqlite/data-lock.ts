/**
 * The data lock: at most one isched process uses a database at a time. Two processes would each
 * run start-up recovery and take over the other's in-flight deliveries, sending them twice.
 *
 * The lock is a file beside the database holding the owner's pid, host, process start time and a
 * random token. It is created atomically (written to a private file, then hard-linked into place, so
 * nobody ever reads a half-written lock). A lock whose process is gone is stale and is taken over: a
 * kill -9 leaves the file behind, and the next start must not need an operator. The process start
 * time (Linux /proc) catches a pid that was reused after a reboot or in a container. The same process
 * may open the database more than once (a second connection); the lock is counted and released when
 * the last connection closes, or at process exit.
 */
import { randomUUID } from "node:crypto";
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { StoreError } from "../errors.ts";

export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** /proc/PID/stat field 22 (start time in clock ticks since boot), where the system has it. */
  readonly startTime?: string;
  readonly token: string;
  readonly acquiredAt: string;
}

export interface DataLock {
  readonly path: string;
  /** Gives up this handle; the file goes when the process's last handle does. Safe to call twice. */
  release(): void;
}

/** The lock file of a database file. */
export function lockPathFor(databasePath: string): string {
  return `${databasePath}.lock`;
}

interface Held {
  count: number;
  token: string;
}

/** Locks this process holds, by absolute path. */
const held = new Map<string, Held>();
let exitHookInstalled = false;

/** Takes the lock at `lockPath` or throws a StoreError naming the process that holds it. */
export function acquireDataLock(lockPath: string): DataLock {
  const path = resolve(lockPath);
  const mine = held.get(path);
  if (mine) {
    mine.count++;
    return handle(path);
  }
  installExitHook();
  const holder: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    startTime: processStartTime(process.pid),
    token: randomUUID(),
    acquiredAt: new Date().toISOString(),
  };
  // A few rounds: each lost race (another process created or took over the lock between our steps)
  // costs one round.
  for (let round = 0; round < 5; round++) {
    if (tryCreate(path, holder)) {
      held.set(path, { count: 1, token: holder.token });
      return handle(path);
    }
    const current = readHolder(path);
    if (current === "missing") continue;
    if (current !== "unreadable" && isThisProcess(current)) {
      // Another thread of this process (a Worker has its own `held`) took it: share it, never delete it.
      return { path, release() {} };
    }
    if (current !== "unreadable") refuseIfAlive(path, current);
    takeOverStale(path, current === "unreadable" ? undefined : current.token);
  }
  throw new StoreError(`another process keeps creating the lock file ${path}; is a second isched starting?`);
}

/**
 * Who holds the lock at `lockPath` now, without taking it: the holder when its process is alive (or
 * runs on another host, which cannot be checked), undefined when nobody does or the holder is gone.
 */
export function lockHolder(lockPath: string): LockHolder | undefined {
  const current = readHolder(resolve(lockPath));
  if (typeof current !== "object") return undefined;
  if (current.hostname !== hostname() || isThisProcess(current) || isAlive(current)) return current;
  return undefined;
}

function handle(path: string): DataLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      const entry = held.get(path);
      if (!entry) return;
      entry.count--;
      if (entry.count > 0) return;
      held.delete(path);
      removeIfOurs(path, entry.token);
    },
  };
}

/** Creates the lock file with its full content in one step; false when a lock file already exists. */
function tryCreate(path: string, holder: LockHolder): boolean {
  const staging = `${path}.${process.pid}.${holder.token}.tmp`;
  try {
    writeFileSync(staging, `${JSON.stringify(holder)}\n`, { mode: 0o644 });
  } catch (e) {
    throw new StoreError(`cannot create the lock file ${path} (${errorText(e)})`, { cause: e });
  }
  try {
    linkSync(staging, path);
    return true;
  } catch (e) {
    if (errorCode(e) === "EEXIST") return false;
    throw new StoreError(`cannot create the lock file ${path} (${errorText(e)})`, { cause: e });
  } finally {
    unlinkQuietly(staging);
  }
}

function readHolder(path: string): LockHolder | "missing" | "unreadable" {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return "missing";
    throw new StoreError(`cannot read the lock file ${path} (${errorText(e)})`, { cause: e });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (isHolder(value)) return value;
  } catch {
    // Left by something else, or truncated by a power loss: nobody can be shown to hold it.
  }
  return "unreadable";
}

function isHolder(v: unknown): v is LockHolder {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return Number.isInteger(o.pid) && typeof o.hostname === "string" && typeof o.token === "string";
}

function refuseIfAlive(path: string, holder: LockHolder): void {
  if (holder.hostname !== hostname()) {
    // A process on another host cannot be checked: only the operator knows whether it is gone.
    throw new StoreError(
      `it is in use by isched process ${holder.pid} on host ${holder.hostname} since ${holder.acquiredAt}; ` +
        `if that process is gone, delete ${path}`,
    );
  }
  if (isAlive(holder)) {
    throw new StoreError(
      `it is in use by another isched process (pid ${holder.pid}, since ${holder.acquiredAt}, lock file ${path})`,
    );
  }
}

function isThisProcess(holder: LockHolder): boolean {
  return (
    holder.pid === process.pid &&
    holder.hostname === hostname() &&
    holder.startTime !== undefined &&
    holder.startTime === processStartTime(process.pid)
  );
}

function isAlive(holder: LockHolder): boolean {
  // Not this process (isThisProcess said so), so a lock naming our pid was left by an earlier process
  // that had the same pid: after a reboot, or in a container where isched is always pid 1.
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if (errorCode(e) !== "EPERM") return false;
  }
  const now = processStartTime(holder.pid);
  return holder.startTime === undefined || now === undefined || now === holder.startTime;
}

/**
 * Moves a stale lock aside, but only if it is still the one judged stale: a rename is atomic, so of
 * two processes taking over at once, one moves the stale file and the other finds the winner's lock
 * (and puts it back).
 */
function takeOverStale(path: string, staleToken: string | undefined): void {
  const aside = `${path}.stale.${process.pid}.${randomUUID()}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return;
    throw new StoreError(`cannot remove the stale lock file ${path} (${errorText(e)})`, { cause: e });
  }
  const moved = readHolder(aside);
  const movedToken = typeof moved === "object" ? moved.token : undefined;
  if (movedToken !== staleToken) {
    try {
      linkSync(aside, path);
    } catch {
      // Someone else already holds a newer lock; the one we moved lost anyway.
    }
  }
  unlinkQuietly(aside);
}

function removeIfOurs(path: string, token: string): void {
  const current = readHolder(path);
  if (typeof current === "object" && current.token === token) unlinkQuietly(path);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [path, entry] of held) removeIfOurs(path, entry.token);
    held.clear();
  });
}

/** Field 22 of /proc/PID/stat; undefined where there is no /proc. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

function errorCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String(e.code) : undefined;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
