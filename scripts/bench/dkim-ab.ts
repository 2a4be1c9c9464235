/**
 * The DKIM engine of this tree against another revision's (main by default), in one invocation:
 * dkim.ts runs alternately on each tree's src/ (the other one extracted with git archive into a
 * temporary folder), in the order A B B A A B ..., so drift on the machine falls on both alike.
 *
 *   npx bun scripts/bench/dkim-ab.ts [--baseline main] [--runs 4] [--seconds 4]
 *
 * Pin it to one core with taskset (the runs inherit it). Prints each run's rows and, per algorithm
 * and operation, the median engine / primitive ratio and engine rate of each tree.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Row } from "./dkim.ts";

const { values: args } = parseArgs({
  options: {
    baseline: { type: "string", default: "main" },
    runs: { type: "string", default: "4" },
    seconds: { type: "string", default: "4" },
  },
});
const REPO = resolve(import.meta.dir, "../..");
const commit = execFileSync("git", ["-C", REPO, "rev-parse", "--short", args.baseline], {
  encoding: "utf8",
}).trim();
const dir = mkdtempSync(join(tmpdir(), "isched-dkim-ab-"));
execFileSync("sh", ["-c", `git -C "${REPO}" archive "${commit}" src | tar -x -C "${dir}"`]);

const trees = [
  { name: `baseline ${args.baseline} (${commit})`, src: join(dir, "src") },
  { name: "this tree", src: join(REPO, "src") },
];
const results = new Map<string, Row[][]>(trees.map((t) => [t.name, []]));
try {
  for (let run = 0; run < Number(args.runs); run++) {
    const order = run % 2 === 0 ? trees : [...trees].reverse();
    for (const tree of order) {
      const out = spawnSync(
        process.execPath,
        [join(import.meta.dir, "dkim.ts"), "--seconds", args.seconds, "--src", tree.src, "--json"],
        { encoding: "utf8" },
      );
      if (out.status !== 0) throw new Error(`${tree.name}: ${out.stderr}`);
      const rows = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as Row[];
      results.get(tree.name)!.push(rows);
      const line = rows
        .map((r) => `${r.algorithm} ${r.operation} ${((r.engine / r.primitive) * 100).toFixed(0)}%`)
        .join(", ");
      console.log(`run ${run + 1}, ${tree.name}: ${line}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`\nmedians over ${args.runs} runs of ${args.seconds} s each:\n`);
console.log("| algorithm | operation | tree | primitive ops/s | engine ops/s | engine / primitive (range) |");
console.log("|---|---|---|---:|---:|---:|");
const first = results.get(trees[0]!.name)![0]!;
for (let i = 0; i < first.length; i++) {
  for (const tree of trees) {
    const rows = results.get(tree.name)!.map((r) => r[i]!);
    const ratios = rows.map((r) => (r.engine / r.primitive) * 100);
    console.log(
      `| ${first[i]!.algorithm} | ${first[i]!.operation} | ${tree.name} | ${Math.round(median(rows.map((r) => r.primitive)))} | ${Math.round(median(rows.map((r) => r.engine)))} | ${median(ratios).toFixed(0)}% (${Math.min(...ratios).toFixed(0)}-${Math.max(...ratios).toFixed(0)}%) |`,
    );
  }
}
