/** The type checker and the formatter/linter are part of the suite, so CI fails when they do. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
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
  const r = run([bin("biome"), "check", "--error-on-warnings", "."]);
  if (r.code !== 0) console.error(r.output);
  expect(r.code).toBe(0);
});

test("request bodies are read only through the capped, streaming reader (src/http/read-body.ts)", () => {
  // The listeners leave body sizes to that reader (maxRequestBodySize is uncapped so that every
  // refusal is a precise answer), so a route that read a body any other way would have no limit.
  const offenders: string[] = [];
  for (const file of new Bun.Glob("src/**/*.ts").scanSync(ROOT)) {
    if (file === "src/http/read-body.ts") continue;
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const m of text.matchAll(
      /\brequest\.(?:body\.getReader|text|json|arrayBuffer|formData|blob|bytes)\(/g,
    )) {
      offenders.push(`${file}: ${m[0]}`);
    }
  }
  expect(offenders).toEqual([]);
});
