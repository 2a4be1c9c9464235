/**
 * `bin/isched`, the command package.json names: after `npm install`, `npx isched ...` must work on a
 * machine with only Node.js and npm (Bun comes as a dev dependency). Run as a user runs it: npx in a
 * real process.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };

const ROOT = join(import.meta.dir, "..", "..");
const temp: string[] = [];
afterAll(() => {
  for (const dir of temp) rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string[], cwd: string) {
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env } });
  return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test("npx isched help prints the commands, and --version the package's version", () => {
  const help = run(["npx", "isched", "help"], ROOT);
  expect(help.stderr).toBe("");
  expect(help.exitCode).toBe(0);
  expect(help.stdout).toContain("Usage: isched COMMAND [FLAGS]");
  expect(help.stdout).toContain("serve");
  const version = run(["npx", "isched", "--version"], ROOT);
  expect(version.stdout.trim()).toBe(`isched ${pkg.version}`);
});

test("npx isched passes the exit code and the one-line error through", () => {
  const r = run(["npx", "isched", "kegen"], ROOT);
  expect(r.exitCode).toBe(2);
  expect(r.stderr.trim()).toBe("isched: unknown command 'kegen' (did you mean 'keygen'?)");
});

test("bin/isched works through a symlink from another folder, with the data folder relative to where it is run", () => {
  const elsewhere = mkdtempSync(join(tmpdir(), "isched-bin-"));
  temp.push(elsewhere);
  symlinkSync(join(ROOT, "bin", "isched"), join(elsewhere, "isched"));
  const r = run(["./isched", "queue", "list", "--data", "nowhere"], elsewhere);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("cannot read the API token nowhere/api-token");
});

test("without bun's postinstall (its placeholder), bin/isched runs the platform package's bun", () => {
  // A clone's layout: bin/isched, src/main.ts, and node_modules as npm leaves it with scripts off.
  const clone = mkdtempSync(join(tmpdir(), "isched-clone-"));
  temp.push(clone);
  mkdirSync(join(clone, "bin"));
  copyFileSync(join(ROOT, "bin", "isched"), join(clone, "bin", "isched"));
  chmodSync(join(clone, "bin", "isched"), 0o755);
  mkdirSync(join(clone, "src"));
  writeFileSync(
    join(clone, "src", "main.ts"),
    "console.log(['main', ...process.argv.slice(2)].join(' '));\n",
  );
  mkdirSync(join(clone, "node_modules", "bun", "bin"), { recursive: true });
  const placeholder = join(clone, "node_modules", "bun", "bin", "bun.exe");
  writeFileSync(placeholder, `echo "Error: Bun's postinstall script was not run." >&2\nexit 1\n`);
  chmodSync(placeholder, 0o755);
  mkdirSync(join(clone, "node_modules", "@oven", "bun-test-platform", "bin"), { recursive: true });
  symlinkSync(process.execPath, join(clone, "node_modules", "@oven", "bun-test-platform", "bin", "bun"));
  const r = run([join(clone, "bin", "isched"), "help", "me"], tmpdir());
  expect(r.stderr).toBe("");
  expect(r.stdout.trim()).toBe("main help me");

  rmSync(join(clone, "node_modules", "@oven"), { recursive: true });
  const none = run([join(clone, "bin", "isched"), "help"], tmpdir());
  expect(none.exitCode).toBe(1);
  expect(none.stderr.trim()).toBe(
    `isched: Bun is not installed in ${clone}/node_modules: run 'npm install' there first`,
  );
});
