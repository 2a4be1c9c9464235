/**
 * A small file system of the test's own (a tmpfs mounted in a temporary folder), to run isched on a
 * disk that fills up: fill() writes a filler file until the kernel answers ENOSPC, makeRoom() deletes
 * it. Mounting needs root (CI runs the suite as root); without it mountSmallFilesystem() throws an
 * error that says so, and the test fails loudly instead of passing without having run.
 * A mount left by a test that failed before unmount() is detached (lazily) when the process exits.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SmallFilesystem {
  /** The mount point. */
  readonly path: string;
  /** Writes a filler file until the file system is full; resolves with the bytes written. */
  fill(): number;
  /** Deletes the filler file. */
  makeRoom(): void;
  /** Bytes free now. */
  freeBytes(): number;
  /** Unmounts and removes the mount point (also after a failure). */
  unmount(): void;
}

const mounted = new Set<string>();
process.on("exit", () => {
  for (const path of mounted) spawnSync("umount", ["-l", path]);
});

/** A tmpfs of `sizeBytes`, or an error naming why it cannot be made (not root, no mount). */
export function mountSmallFilesystem(sizeBytes: number): SmallFilesystem {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "this test mounts a small tmpfs to fill the disk under isched and must run as root " +
        "(CI does; locally: sudo npm test -- test/integration/fault-disk-full.test.ts)",
    );
  }
  const base = mkdtempSync(join(tmpdir(), "isched-smallfs-"));
  const path = join(base, "mnt");
  mkdirSync(path);
  const run = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes},mode=0755`, "tmpfs", path], {
    encoding: "utf8",
  });
  if (run.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${run.stderr.trim() || `exit ${run.status}`}`);
  }
  mounted.add(path);
  const filler = join(path, "filler");
  return {
    path,
    fill() {
      const fd = openSync(filler, "a");
      let written = 0;
      try {
        // Ever smaller writes, so that the last free blocks are taken too.
        for (let size = 1024 * 1024; size >= 512; size /= 2) {
          const chunk = Buffer.alloc(size, 0x2e);
          for (;;) {
            try {
              written += writeSync(fd, chunk);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
              break;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    makeRoom() {
      rmSync(filler, { force: true });
    },
    freeBytes() {
      const s = statfsSync(path);
      return s.bavail * s.bsize;
    },
    unmount() {
      if (!mounted.has(path)) return;
      const run = spawnSync("umount", [path], { encoding: "utf8" });
      // A process that still has files open there (it failed to stop) must not keep the mount.
      if (run.status !== 0) spawnSync("umount", ["-l", path]);
      mounted.delete(path);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
