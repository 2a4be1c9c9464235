/**
 * Profiling helpers for the scripts in this folder: CPU time per thread from /proc, and Linux `perf`,
 * which records a Bun process with call stacks, names the samples
 * that fall in JIT code after their JavaScript function (JSC writes a JITDump file when the process
 * runs with BUN_JSC_useJITDump=1 and BUN_JSC_jitDumpDirectory=DIR; Bun's own native code has no
 * symbols), and sorts the main thread's samples into stages by the innermost function on the stack
 * that a stage table names. Kernel time is sorted by system call.
 *
 * perf needs the linux-perf package and a kernel that lets root profile (perf_event_paranoid <= 2
 * is enough for root); a virtual machine without hardware counters is fine: this uses the
 * cpu-clock software event.
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** JSC's environment switches for a process whose JIT code perf should name. */
export function jitDumpEnv(dir: string): Record<string, string> {
  return { BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: dir };
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/**
 * CPU ms per thread name (threads of one name added up) of the threads `pid` has now; a thread that
 * ended is missing (processCpuMs counts it).
 */
export function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
      const key = tid === String(pid) ? "main thread" : name.replace(/[0-9]+$/, "").trim() || name;
      out.set(key, (out.get(key) ?? 0) + ms);
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU ms a process has used so far, all threads, those that have ended included; 0 once it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Busy CPU time (ms) of the whole machine so far, from /proc/stat. */
export function machineBusyMs(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
    .split("\n")[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / CLOCK_TICKS;
}

export function perfAvailable(): boolean {
  return spawnSync("perf", ["--version"], { stdio: "ignore" }).status === 0;
}

/** `perf record -g` of every thread of `pid` for `seconds`, at 1999 Hz, into `out`. */
export async function recordPerf(o: { pid: number; seconds: number; out: string }): Promise<void> {
  const perf = spawn(
    "perf",
    [
      "record",
      "-k",
      "1",
      "-F",
      "1999",
      "-g",
      "-p",
      String(o.pid),
      "-o",
      o.out,
      "--",
      "sleep",
      String(o.seconds),
    ],
    { stdio: "ignore" },
  );
  await new Promise((r) => perf.once("exit", r));
}

interface JitCode {
  start: number;
  end: number;
  timestampNs: number;
  name: string;
}

/** JIT_CODE_LOAD records of a JITDump file (the format of perf's jitdump specification). */
function readJitDump(path: string): JitCode[] {
  const d = readFileSync(path);
  const headerSize = d.readUInt32LE(8);
  const out: JitCode[] = [];
  for (let at = headerSize; at + 16 <= d.length; ) {
    const id = d.readUInt32LE(at);
    const size = d.readUInt32LE(at + 4);
    if (size === 0) break;
    if (id === 0) {
      // record header (16) + pid, tid (8) + vma (8), then code_addr, code_size, code_index, name
      const codeAddr = Number(d.readBigUInt64LE(at + 32));
      const codeSize = Number(d.readBigUInt64LE(at + 40));
      const nameEnd = d.indexOf(0, at + 56);
      out.push({
        start: codeAddr,
        end: codeAddr + codeSize,
        timestampNs: Number(d.readBigUInt64LE(at + 8)),
        name: d.toString("utf8", at + 56, nameEnd),
      });
    }
    at += size;
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The JavaScript function whose JIT code held `address` at `timeNs` ("JSC-FTL: f#AbC" -> "f"). */
function jitName(codes: readonly JitCode[], address: number, timeNs: number): string | undefined {
  let lo = 0;
  let hi = codes.length - 1;
  let last = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (codes[mid]!.start <= address) {
      last = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // Code memory is reused: the latest code loaded at this address before the sample wins.
  let best: JitCode | undefined;
  for (let i = last; i >= 0 && i > last - 200; i--) {
    const c = codes[i]!;
    if (address < c.end && c.timestampNs <= timeNs && (!best || c.timestampNs > best.timestampNs)) best = c;
  }
  return best?.name.replace(/^JSC-[A-Za-z]+: /, "").replace(/#.*$/, "");
}

/** Kernel time by what the program asked for (frames innermost first). */
function kernelCategory(frames: readonly string[]): string {
  const sys = frames.find((f) => f.startsWith("__x64_sys_") || f.startsWith("__do_sys_"));
  if (sys) {
    const name = sys.replace(/^__x64_sys_|^__do_sys_/, "");
    const fileWrite = frames.some((f) => f.startsWith("ext4_") || f === "generic_perform_write");
    if (/pwrite|^write$|writev/.test(name)) return fileWrite ? "file write (WAL, log)" : "socket write";
    if (/sendto|sendmsg/.test(name)) return "socket write";
    if (/recv|^read/.test(name)) return "read (socket, file)";
    if (/fcntl|flock/.test(name)) return "fcntl locks (SQLite)";
    if (/epoll|poll|select/.test(name)) return "event loop wait";
    if (/fsync|fdatasync/.test(name)) return "fsync";
    if (/mmap|munmap|madvise|mprotect|brk/.test(name)) return "memory mapping";
    return name;
  }
  if (frames.some((f) => f.includes("page_fault"))) return "page faults";
  return "interrupts, scheduling";
}

export interface PerfSummary {
  totalSamples: number;
  /** Samples per thread ("main thread" for the process's first thread, else the thread's name). */
  byThread: Map<string, number>;
  /** Main-thread samples by stage, with how many of them were in the kernel. */
  byStage: Map<string, { samples: number; kernel: number }>;
  /** Main-thread kernel samples by system call. */
  byKernel: Map<string, number>;
  /** Main-thread samples by innermost frame: kernel function, JavaScript function or unnamed native code. */
  bySelf: Map<string, number>;
  /** Main-thread samples by JavaScript function anywhere on the stack (each counted once per sample). */
  byInclusive: Map<string, number>;
}

/**
 * Reads `perfData` (recorded with recordPerf from process `pid`, which wrote its JITDump into
 * `jitDir`) and sorts the main thread's samples by `stages`: the first pattern that matches the
 * innermost named frame decides, else the next frame out, and so on.
 */
export function analysePerf(o: {
  perfData: string;
  jitDir: string;
  pid: number;
  stages: readonly (readonly [RegExp, string])[];
}): PerfSummary {
  const dump = readdirSync(o.jitDir).find((f) => f.startsWith("jit-") && f.endsWith(".dump"));
  const codes = dump ? readJitDump(join(o.jitDir, dump)) : [];
  const script = spawnSync("perf", ["script", "-i", o.perfData, "-F", "comm,tid,time,ip,sym,dso"], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
  }).stdout;
  const summary: PerfSummary = {
    totalSamples: 0,
    byThread: new Map(),
    byStage: new Map(),
    byKernel: new Map(),
    bySelf: new Map(),
    byInclusive: new Map(),
  };
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const block of script.split("\n\n")) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    const head = lines.length > 0 ? /^\s*(.+?)\s+(\d+)\s+(\d+\.\d+):/.exec(lines[0]!) : null;
    if (!head) continue;
    summary.totalSamples++;
    const tid = Number(head[2]);
    add(summary.byThread, tid === o.pid ? "main thread" : head[1]!.trim());
    if (tid !== o.pid) continue;
    const timeNs = Math.round(Number(head[3]) * 1e9);
    const kernel: string[] = [];
    const named: string[] = [];
    let jitFrames = 0;
    let self: string | undefined;
    for (const l of lines.slice(1)) {
      const m = /^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)$/.exec(l);
      if (!m) continue;
      const [, ip, sym, dso] = m;
      if (dso === "[kernel.kallsyms]") {
        const k = sym!.replace(/\+0x[0-9a-f]+$/, "");
        kernel.push(k);
        self ??= `kernel: ${k}`;
        continue;
      }
      const name = jitName(codes, Number.parseInt(ip!, 16), timeNs);
      if (name) {
        jitFrames++;
        named.push(name);
        self ??= `JS: ${name}`;
      } else
        self ??= sym && sym !== "[unknown]" ? `${dso!.split("/").at(-1)}: ${sym}` : "native (no symbols)";
    }
    add(summary.bySelf, self ?? "?");
    for (const f of new Set(named)) add(summary.byInclusive, f);
    let stage =
      jitFrames > 0
        ? "JavaScript, other (framework, promises, streams, builtins)"
        : "native, no JIT code on the stack (HTTP, event loop, GC, interpreter)";
    for (const f of named) {
      const hit = o.stages.find(([re]) => re.test(f));
      if (hit) {
        stage = hit[1];
        break;
      }
    }
    if (kernel.length > 0) add(summary.byKernel, kernelCategory(kernel));
    const e = summary.byStage.get(stage) ?? { samples: 0, kernel: 0 };
    e.samples++;
    if (kernel.length > 0) e.kernel++;
    summary.byStage.set(stage, e);
  }
  return summary;
}

/** Markdown lines: threads, main-thread stages, main-thread kernel time. */
export function formatPerf(p: PerfSummary, title: string): string[] {
  const pct = (n: number, of: number) => `${((n / of) * 100).toFixed(1)}%`;
  const lines = [`${title}: ${p.totalSamples} samples of all its threads at 1999 Hz.`, ""];
  lines.push("| thread | share of all samples |", "|---|---:|");
  for (const [k, v] of [...p.byThread].sort((a, b) => b[1] - a[1]))
    lines.push(`| ${k} | ${pct(v, p.totalSamples)} |`);
  const main = p.byThread.get("main thread") ?? 1;
  lines.push(
    "",
    "| main thread: stage (innermost named function) | share of main thread | of which in the kernel |",
  );
  lines.push("|---|---:|---:|");
  for (const [k, v] of [...p.byStage].sort((a, b) => b[1].samples - a[1].samples))
    lines.push(`| ${k} | ${pct(v.samples, main)} | ${pct(v.kernel, main)} |`);
  lines.push("", "| main thread: kernel time by system call | share of main thread |", "|---|---:|");
  for (const [k, v] of [...p.byKernel].sort((a, b) => b[1] - a[1])) lines.push(`| ${k} | ${pct(v, main)} |`);
  lines.push(
    "",
    "| main thread: top 25 by self time (innermost frame) | share of main thread |",
    "|---|---:|",
  );
  for (const [k, v] of [...p.bySelf].sort((a, b) => b[1] - a[1]).slice(0, 25))
    lines.push(`| ${k} | ${pct(v, main)} |`);
  lines.push(
    "",
    "| main thread: top 25 JavaScript functions, inclusive | share of main thread |",
    "|---|---:|",
  );
  for (const [k, v] of [...p.byInclusive].sort((a, b) => b[1] - a[1]).slice(0, 25))
    lines.push(`| ${k} | ${pct(v, main)} |`);
  return lines;
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Top JavaScript functions of a `bun --cpu-prof` profile (JSC's sampler: each sample is the JS stack
 * at that moment; time in native code is charged to the JS function that called it, e.g. SQLite to
 * the statement's `run`), counting only samples taken between fromMs and toMs (epoch ms). Shares are
 * of the samples in that window, which leaves out time with no JavaScript on the stack.
 */
export function cpuProfileTop(o: { file: string; fromMs: number; toMs: number; top: number }): string[] {
  const p = JSON.parse(readFileSync(o.file, "utf8")) as {
    nodes: CpuProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: CpuProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").at(-1) || "(native)"}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let t = p.startTime;
  let counted = 0;
  for (const [i, id] of p.samples.entries()) {
    t += p.timeDeltas[i]!;
    if (t < o.fromMs * 1000 || t > o.toMs * 1000) continue;
    counted++;
    const leaf = nodes.get(id)!;
    self.set(label(leaf), (self.get(label(leaf)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const l = label(nodes.get(n)!);
      if (seen.has(l) || l.startsWith("(root)")) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + 1);
    }
  }
  const pct = (v: number) => `${((v / counted) * 100).toFixed(1)}%`;
  const table = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, o.top)
      .map(([k, v]) => `| ${k} | ${pct(v)} |`);
  return [
    `${counted} samples with JavaScript on the stack in the measured window.`,
    "",
    "| function (self) | share of samples |",
    "|---|---:|",
    ...table(self),
    "",
    "| function (inclusive) | share of samples |",
    "|---|---:|",
    ...table(inclusive),
  ];
}
