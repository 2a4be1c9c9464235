/**
 * The product is the compiled `dist/isched`: end-to-end and crash tests run that binary, so that what
 * only works from source (a worker that never starts in the binary, a file not embedded) fails a test.
 *
 * `npm test` builds it once before `bun test` (scripts/test.ts). A test run on its own (`bun test
 * test/x.test.ts`) builds it here when it is missing or older than any file under src/ or web/, once
 * per process.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "isched");

let built = false;

function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const ms = entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs;
    if (ms > newest) newest = ms;
  }
  return newest;
}

/** The path of the compiled binary, built first when missing or stale. */
export function ischedBinary(): string {
  if (built) return BINARY;
  const stale =
    !existsSync(BINARY) ||
    statSync(BINARY).mtimeMs < Math.max(newestSourceMs(join(ROOT, "src")), newestSourceMs(join(ROOT, "web")));
  if (stale) {
    const run = spawnSync("npm", ["run", "--silent", "build"], { cwd: ROOT, encoding: "utf8" });
    if (run.status !== 0) throw new Error(`npm run build failed:\n${run.stdout}\n${run.stderr}`);
  }
  built = true;
  return BINARY;
}
