/**
 * Runs one command of the compiled binary (test/support/binary.ts) as an operator would: a real
 * process, without blocking the test's own servers (asynchronous), with its output and exit code.
 */
import { ischedBinary } from "./binary.ts";

export interface BinaryResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runIsched(
  args: readonly string[],
  o: { env?: Record<string, string>; stdin?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<BinaryResult> {
  const proc = Bun.spawn([ischedBinary(), ...args], {
    cwd: o.cwd,
    stdin: o.stdin === undefined ? "ignore" : new Blob([o.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...o.env },
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), o.timeoutMs ?? 60_000);
  try {
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { stdout, stderr, exitCode };
  } finally {
    clearTimeout(timer);
  }
}
