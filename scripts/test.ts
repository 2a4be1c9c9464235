/**
 * The whole test suite: installs the system packages the integration tests need (when missing and
 * allowed), builds dist/isched, runs `bun test`, and ends with one line `N passed, N failed`.
 *
 *   npm test                 everything
 *   npm test -- test/dkim    a subset (arguments go to `bun test`)
 */
import { spawn, spawnSync } from "node:child_process";

const args = process.argv.slice(2);

const install = spawnSync("bash", ["scripts/install-test-deps.sh"], { stdio: "inherit" });
if (install.status !== 0) {
  console.error("test: installing the system packages the tests need failed (see above)");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// The end-to-end and crash tests run the compiled binary, as users do: build it once per run.
const build = spawnSync("npm", ["run", "--silent", "build"], { stdio: ["ignore", "ignore", "inherit"] });
if (build.status !== 0) {
  console.error("test: npm run build failed (see above)");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const child = spawn(process.execPath, ["test", "--timeout", "120000", ...args], {
  stdio: ["inherit", "pipe", "pipe"],
  env: { ...process.env, FORCE_COLOR: "0" },
});
let passed = 0;
let failed = 0;
let sawSummary = false;
function scan(chunk: Buffer, out: NodeJS.WriteStream): void {
  out.write(chunk);
  for (const line of chunk.toString("utf8").split("\n")) {
    const p = /^\s*(\d+) pass$/.exec(line);
    const f = /^\s*(\d+) fail$/.exec(line);
    if (p) {
      passed = Number(p[1]);
      sawSummary = true;
    }
    if (f) failed = Number(f[1]);
  }
}
child.stdout.on("data", (c: Buffer) => scan(c, process.stdout));
child.stderr.on("data", (c: Buffer) => scan(c, process.stderr));
child.on("close", (code) => {
  // A crash of the runner itself counts as a failure even when no test reported one.
  if (code !== 0 && failed === 0) failed = 1;
  if (!sawSummary && failed === 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
});
