/** Runs the isched command line as a user would (a real process), capturing its output. */
import { join } from "node:path";
import { ischedBinary } from "./binary.ts";

export const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function isched(
  args: string[],
  o: { cwd?: string; stdin?: Uint8Array | string; env?: Record<string, string> } = {},
): CliResult {
  const run = Bun.spawnSync([process.execPath, MAIN, ...args], {
    cwd: o.cwd,
    stdin: o.stdin === undefined ? "ignore" : Buffer.from(o.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...o.env },
  });
  return { exitCode: run.exitCode ?? -1, stdout: run.stdout.toString(), stderr: run.stderr.toString() };
}

/**
 * The compiled binary as a user runs it, spawned asynchronously so that an isched running in the
 * test's own process keeps answering.
 */
export async function runBinary(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([ischedBinary(), ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, out, err };
}
