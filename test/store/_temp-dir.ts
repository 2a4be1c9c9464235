/**
 * Fresh temporary directories for tests. Each test file that uses them calls
 * `afterEach(removeTempDirs)`: a hook registered here would only apply to the first file importing it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "isched-test-"));
  made.push(dir);
  return dir;
}

export function tempDatabasePath(): string {
  return join(tempDir(), "isched.db");
}
