/**
 * `isched serve` as a real process of the compiled binary (test/support/binary.ts), for tests that
 * must see what an operator sees: its output, its exit code, its files, its ports. The process is
 * ready when it prints its start-up summary; the endpoint's and console's addresses are read from it.
 */
import { existsSync } from "node:fs";
import type { Subprocess } from "bun";
import { ischedBinary } from "./binary.ts";

export interface ServeProcess {
  readonly process: Subprocess<"ignore", "pipe", "pipe">;
  /** `http://127.0.0.1:PORT` of the iSchedule endpoint. */
  readonly url: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` of the console and API. */
  readonly consoleUrl: string;
  /** Everything printed so far on standard output and standard error. */
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number>;
}

export interface ExitedServe {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

function collect(stream: ReadableStream<Uint8Array>, into: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  return (async () => {
    for await (const chunk of stream) into.text += decoder.decode(chunk, { stream: true });
  })();
}

/**
 * Debian's libfaketime, preloaded into the binary itself (not through the faketime wrapper, which
 * would be the process a test stops): the clock starts at `from` (UTC, "@2026-01-01 10:00:00") and
 * runs on from there, or runs this many seconds ahead (`+240`) or behind (`-360`) the real one.
 */
function fakeClock(faketime: string): Record<string, string> {
  const lib = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
  ].find((p) => existsSync(p));
  if (!lib) throw new Error("libfaketime is not installed (Debian package faketime)");
  return { LD_PRELOAD: lib, FAKETIME: faketime, TZ: "UTC" };
}

/**
 * Starts `isched serve ARGS` and resolves once it is serving, or with its exit (code and output) when
 * it stops before that.
 */
export async function serveProcess(
  args: readonly string[],
  o: {
    timeoutMs?: number;
    env?: Record<string, string>;
    /**
     * Run the binary with its clock starting at this UTC time (Debian's faketime, LD_PRELOAD): for
     * signed fixtures captured from other software, whose t= and x= are fixed.
     */
    clockFrom?: string;
    /** Run the binary on a clock this many seconds ahead (positive) or behind the real one. */
    clockOffsetSeconds?: number;
    /**
     * With clockOffsetSeconds: the binary's clock (its timers too) runs this many times faster than
     * the real one, so that a job due in a minute runs within seconds.
     */
    clockRate?: number;
  } = {},
): Promise<ServeProcess | ExitedServe> {
  const faketime =
    o.clockFrom !== undefined
      ? `@${o.clockFrom}`
      : o.clockOffsetSeconds !== undefined
        ? `${o.clockOffsetSeconds < 0 ? "-" : "+"}${Math.abs(o.clockOffsetSeconds)}${o.clockRate ? ` x${o.clockRate}` : ""}`
        : undefined;
  const proc = Bun.spawn([ischedBinary(), "serve", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...(faketime ? fakeClock(faketime) : {}), ...o.env },
  });
  const out = { text: "" };
  const err = { text: "" };
  const done = Promise.all([collect(proc.stdout, out), collect(proc.stderr, err)]);
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    const endpoint = /endpoint\s+(https?:\/\/[^\s/]+:(\d+))\//.exec(out.text);
    const console_ = /console\/API\s+(https?:\/\/[^\s/]+:\d+)\//.exec(out.text);
    if (endpoint && console_) {
      return {
        process: proc,
        url: endpoint[1]!,
        port: Number(endpoint[2]),
        consoleUrl: console_[1]!,
        stdout: () => out.text,
        stderr: () => err.text,
        async stop() {
          proc.kill("SIGTERM");
          const code = await proc.exited;
          await done;
          return code;
        },
      };
    }
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const exitCode = await proc.exited;
      await done;
      return { exitCode, stdout: out.text, stderr: err.text };
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      await done;
      throw new Error(`isched serve did not start within the time:\n${out.text}\n${err.text}`);
    }
    await Bun.sleep(25);
  }
}

/** Waits until the process has printed `pattern` on standard output; fails the test after `timeoutMs`. */
export async function printed(s: ServeProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(s.stdout())) {
    if (Date.now() > deadline)
      throw new Error(`isched serve did not print ${pattern}:\n${s.stdout()}\n${s.stderr()}`);
    await Bun.sleep(20);
  }
  return s.stdout();
}

/** The running server, or a test failure that shows why it stopped. */
export function running(s: ServeProcess | ExitedServe): ServeProcess {
  if ("exitCode" in s) throw new Error(`isched serve exited with ${s.exitCode}:\n${s.stdout}\n${s.stderr}`);
  return s;
}
