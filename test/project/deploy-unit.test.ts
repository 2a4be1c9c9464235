/**
 * The sample systemd unit in docs/deploy.md, as an administrator would copy it: systemd itself
 * (Debian's systemd-analyze) must find no mistake in it, and rate its exposure as the page says.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { ischedBinary } from "../support/binary.ts";

const ANALYZE = "/usr/bin/systemd-analyze";
const DOC = join(import.meta.dir, "..", "..", "docs", "deploy.md");

/** The unit between the page's markers, with ExecStart pointing at the binary built here. */
function unitFile(): string {
  const page = readFileSync(DOC, "utf8");
  const m = /<!-- unit:begin -->\n```ini\n([\s\S]*?)```\n<!-- unit:end -->/.exec(page);
  if (!m) throw new Error("docs/deploy.md has no unit between its markers");
  const path = join(tempDir(), "isched.service");
  writeFileSync(path, m[1]!.replace("/usr/local/bin/isched", ischedBinary()));
  return path;
}

function analyze(args: string[]): { status: number; out: string } {
  const r = Bun.spawnSync([ANALYZE, ...args], { stdout: "pipe", stderr: "pipe" });
  return { status: r.exitCode, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe.skipIf(!existsSync(ANALYZE))("the sample unit in docs/deploy.md", () => {
  test("systemd-analyze verify finds nothing to say", () => {
    const path = unitFile();
    try {
      // A misspelt key or value is only a warning (exit 0): no output at all is the test.
      expect(analyze(["verify", "--man=no", path])).toEqual({ status: 0, out: "" });
    } finally {
      removeTempDirs();
    }
  }, 120_000);

  test("systemd-analyze security rates it as the page says", () => {
    const path = unitFile();
    try {
      const r = analyze(["security", "--offline=yes", "--no-pager", path]);
      const level = /Overall exposure level for isched\.service: ([\d.]+) (\w+)/.exec(r.out);
      expect(level?.slice(1)).toEqual(["1.5", "OK"]);
      expect(readFileSync(DOC, "utf8")).toContain("rates it **1.5 OK**");
    } finally {
      removeTempDirs();
    }
  }, 120_000);

  test("verify does catch a mistake (so its silence above means something)", () => {
    const path = unitFile();
    try {
      writeFileSync(
        path,
        readFileSync(path, "utf8").replace("ProtectSystem=strict", "ProtectSystem=stricter"),
      );
      expect(analyze(["verify", "--man=no", path]).out).toContain("Failed to parse protect system value");
    } finally {
      removeTempDirs();
    }
  }, 120_000);
});
