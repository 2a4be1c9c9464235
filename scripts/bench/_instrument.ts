/**
 * Stage timers for the profiling scripts, without touching the work tree: a copy of src/ (in a
 * folder of the script's choosing) with `const t = __now()` and `__ip("stage", t)` inserted by exact
 * text replacement, and the probes those calls reach, installed in the process that runs the copy.
 *
 * Each probe notes the wall clock and this thread's CPU time (threadCpuClockUs: it leaves out the
 * time other processes and threads held the core) and adds both spans to the stage.
 * Only synchronous stretches may be timed: a span across an await would include other requests'
 * work. Patches whose anchor text is not found exactly once stop the copy with their files and first
 * lines, so a change in src/ shows up as an error, never as a silently missing stage.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One insertion of timers: `find` must occur exactly once in `file` (relative to src/). */
export interface Patch {
  file: string;
  find: string;
  replace: string;
  /** Skipped when `file` does not exist (a file only some of the measured trees have). */
  ifFileExists?: boolean;
}

/** The expression that starts a span, for use inside `replace` texts. */
export const T = "__now()";

export interface StageSums {
  [stage: string]: { cpuUs: number; wallUs: number; count: number };
}

const REPO = join(new URL(".", import.meta.url).pathname, "..", "..");

/**
 * Copies src/ and web/ (of this tree, or of the folder `from`, such as a baselineCopy) into `dir` with
 * the patches applied; returns the copy's src folder.
 */
export function instrumentedCopy(dir: string, patches: readonly Patch[], from = REPO): string {
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(from, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(from, "web"), join(dir, "web"), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  cpSync(join(from, "package.json"), join(dir, "package.json"));
  const texts = new Map<string, string>();
  const stale: string[] = [];
  for (const p of patches) {
    const path = join(dir, "src", p.file);
    if (p.ifFileExists && !existsSync(path)) continue;
    const text = texts.get(path) ?? readFileSync(path, "utf8");
    const at = text.indexOf(p.find);
    if (at === -1 || text.indexOf(p.find, at + 1) !== -1) {
      stale.push(`src/${p.file}: "${p.find.trim().split("\n")[0]}"`);
      continue;
    }
    texts.set(path, text.slice(0, at) + p.replace + text.slice(at + p.find.length));
  }
  if (stale.length > 0) {
    throw new Error(
      `these patches no longer match the source exactly once; update them:\n${stale.join("\n")}`,
    );
  }
  const declarations =
    "declare const __ip: (stage: string, t: number) => void;\ndeclare const __now: () => number;";
  for (const [path, text] of texts) writeFileSync(path, `${declarations}\n${text}`);
  return join(dir, "src");
}

/**
 * `ref`'s src/, web/ and package.json (git archive) in `dir`, with this tree's node_modules, for
 * measuring another commit (--baseline) in the same run; returns the folder.
 */
export function baselineCopy(dir: string, ref: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync(
    "sh",
    ["-c", `git -C "${REPO}" archive "${ref}" src web package.json | tar -x -C "${dir}"`],
    {
      encoding: "utf8",
    },
  );
  if (archive.status !== 0) throw new Error(`--baseline ${ref}: ${archive.stderr.trim()}`);
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/**
 * This thread's CPU time in µs: clock_gettime(CLOCK_THREAD_CPUTIME_ID) through bun:ffi, which the
 * kernel brings up to date on every call; process.threadCpuUsage() where libc cannot be loaded.
 */
export function threadCpuClockUs(): () => number {
  return cpuClockUs(3 /* CLOCK_THREAD_CPUTIME_ID */);
}

/**
 * This process's CPU time in µs, all its threads (garbage collector and JIT included) and no other
 * process's: clock_gettime(CLOCK_PROCESS_CPUTIME_ID); process.cpuUsage() where libc cannot be loaded.
 */
export function processCpuClockUs(): () => number {
  return cpuClockUs(2 /* CLOCK_PROCESS_CPUTIME_ID */);
}

function cpuClockUs(clock: 2 | 3): () => number {
  try {
    const { dlopen, FFIType, ptr } = require("bun:ffi") as typeof import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    });
    const timespec = new BigInt64Array(2);
    const at = ptr(timespec);
    return () => {
      libc.symbols.clock_gettime(clock, at);
      return Number(timespec[0]) * 1e6 + Number(timespec[1]) / 1000;
    };
  } catch {
    return () => {
      const u = clock === 3 ? process.threadCpuUsage() : process.cpuUsage();
      return u.user + u.system;
    };
  }
}

/**
 * Defines __now and __ip for an instrumented copy running in this process. SIGUSR1 empties the sums
 * (the end of a warm-up), SIGUSR2 prints them on standard output as one line `{"stages": {...}}`.
 */
export function installProbes(): StageSums {
  const sums: StageSums = {};
  // Timestamps live in a small ring: each is used within the synchronous stretch that took it.
  const wall = new Float64Array(256);
  const cpu = new Float64Array(256);
  let slot = 0;
  const cpuNow = threadCpuClockUs();
  const probes = globalThis as unknown as { __now: () => number; __ip: (s: string, t: number) => void };
  probes.__now = () => {
    slot = (slot + 1) & 255;
    wall[slot] = performance.now();
    cpu[slot] = cpuNow();
    return slot;
  };
  probes.__ip = (stage, t) => {
    const c = cpuNow() - cpu[t]!;
    const w = (performance.now() - wall[t]!) * 1000;
    const e = sums[stage];
    if (e) {
      e.cpuUs += c;
      e.wallUs += w;
      e.count++;
    } else sums[stage] = { cpuUs: c, wallUs: w, count: 1 };
  };
  process.on("SIGUSR1", () => {
    for (const k of Object.keys(sums)) delete sums[k];
  });
  process.on("SIGUSR2", () => console.log(JSON.stringify({ stages: sums })));
  return sums;
}
