/** The type checker and the formatter/linter are part of the suite, so CI fails when they do. */
import { expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

function run(cmd: string[]): { code: number; output: string } {
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, output: `${r.stdout.toString()}${r.stderr.toString()}` };
}

test("tsc --noEmit finds no type errors", () => {
  const r = run([bin("tsc"), "--noEmit", "-p", "."]);
  expect(r.output).toBe("");
  expect(r.code).toBe(0);
});

test("biome check (format and lint) passes", () => {
  const r = run([bin("biome"), "check", "."]);
  if (r.code !== 0) console.error(r.output);
  expect(r.code).toBe(0);
});
