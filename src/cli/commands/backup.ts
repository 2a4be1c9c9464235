/**
 * `isched backup FILE` and `isched restore FILE`: the whole database (messages, queue, peer policies,
 * the console's password hash, and the DKIM private keys) as one file, taken while isched runs; and
 * put back while it does not. See src/store/backup.ts for how the copy is made.
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  openSync,
  renameSync,
  rmSync,
} from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { prepareDataFolder } from "../../server/data-folder.ts";
import { StoreError } from "../../store/errors.ts";
import { backupDatabase, checkBackup, type DatabaseFacts } from "../../store/sqlite/backup.ts";
import { acquireDataLock, lockPathFor } from "../../store/sqlite/data-lock.ts";
import { SCHEMA_VERSION } from "../../store/sqlite/migrations.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { databasePathOf } from "../running-server.ts";

const dataFlag = () =>
  flag.stringWithDefault({ help: "isched's data folder", placeholder: "DIR", defaultValue: "data" });

function describe(f: DatabaseFacts): string {
  const size =
    f.bytes >= 1024 * 1024 ? `${(f.bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(f.bytes / 1024)} kB`;
  return (
    `${f.messages} messages, ${f.deliveries} deliveries, ${f.keys} DKIM keys with their private keys; ` +
    `schema ${f.schema}${f.writtenBy ? ` (isched ${f.writtenBy})` : ""}, ${size}`
  );
}

export const backupCommand = defineCommand({
  name: "backup",
  summary: "Copy the database, DKIM private keys included, to FILE (mode 0600), while isched runs",
  usage: "backup FILE [--data DIR]",
  description: [
    "Copies DATA/isched.db as it is at one instant (SQLite VACUUM INTO: the last committed state,",
    "without stopping or slowing the running isched) to FILE, which must not exist, then checks the",
    "copy. FILE holds your DKIM private keys and the console's password hash: keep it as a secret.",
    "Not in it: DATA/api-token (a restored isched makes a new one) and files named by flags",
    "(--dkim-key, --tls-key, ...). Put it back with 'isched restore FILE'.",
  ].join("\n"),
  flags: { data: dataFlag() },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    // The copy holds the keys: private from its first byte (backupDatabase creates it 0600).
    process.umask(0o077);
    const from = databasePathOf(flags.data);
    const to = positionals[0]!;
    if (!existsSync(from))
      throw new CommandError(`no database at ${from} (give --data, isched's data folder)`);
    const t0 = performance.now();
    let facts: DatabaseFacts;
    try {
      facts = backupDatabase({ from, to });
    } catch (e) {
      if (e instanceof StoreError) throw new CommandError(`cannot back up ${from}: ${e.message}`);
      throw e;
    }
    const ms = Math.round(performance.now() - t0);
    process.stdout.write(
      `Backed up ${from} to ${to} in ${ms} ms: ${describe(facts)}.\n${to} is mode 0600: it holds secrets.\n`,
    );
    return 0;
  },
});

export const restoreCommand = defineCommand({
  name: "restore",
  summary: "Put a backup back as the database (refused while isched runs on the data folder)",
  usage: "restore FILE [--data DIR]",
  description: [
    "Checks FILE (a whole, undamaged isched database this isched can read), takes the data folder's",
    "lock (so it is refused while an isched runs there), moves the current database aside to",
    "DATA/isched.db.before-restore-TIME (nothing is deleted) and puts FILE in its place. Deliveries",
    "that were queued when the backup was made are attempted again at the next start.",
  ].join("\n"),
  flags: { data: dataFlag() },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    // What is written into the data folder is for isched's user alone, as at every start.
    process.umask(0o077);
    const file = positionals[0]!;
    const target = databasePathOf(flags.data);
    let facts: DatabaseFacts;
    try {
      facts = checkBackup(file);
    } catch (e) {
      if (e instanceof StoreError) throw new CommandError(`cannot restore ${file}: ${e.message}`);
      throw e;
    }
    if (facts.schema > SCHEMA_VERSION)
      throw new CommandError(
        `cannot restore ${file}: it has schema ${facts.schema}${facts.writtenBy ? ` (isched ${facts.writtenBy})` : ""}, and this isched knows schema ${SCHEMA_VERSION} at most`,
      );
    try {
      prepareDataFolder(flags.data);
    } catch (e) {
      if (e instanceof ConfigError) throw new CommandError(e.message);
      throw e;
    }
    let lock: ReturnType<typeof acquireDataLock>;
    try {
      lock = acquireDataLock(lockPathFor(target));
    } catch (e) {
      if (e instanceof StoreError)
        throw new CommandError(
          `refusing to restore into ${flags.data}: ${e.message}; stop that isched first`,
        );
      throw e;
    }
    try {
      const aside = moveAside(target);
      putInPlace(file, target);
      process.stdout.write(
        [
          `Restored ${file} as ${target}: ${describe(facts)}.`,
          aside
            ? `The database it replaced is ${aside} (with its -wal file, if it had one).`
            : "There was no database before.",
          "Start isched to use it; deliveries queued at the time of the backup will be attempted again.",
          "",
        ].join("\n"),
      );
    } finally {
      lock.release();
    }
    return 0;
  },
});

/** Renames the database and its WAL and shared-memory files together (a WAL belongs to its file). */
function moveAside(target: string): string | undefined {
  if (!existsSync(target)) return undefined;
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const aside = `${target}.before-restore-${stamp}`;
  try {
    for (const suffix of ["-wal", "-shm"])
      if (existsSync(`${target}${suffix}`)) renameSync(`${target}${suffix}`, `${aside}${suffix}`);
    renameSync(target, aside);
  } catch (e) {
    throw new CommandError(
      `cannot move ${target} aside: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return aside;
}

/** Copies under a temporary name, syncs, and renames: a crash leaves either nothing or the whole file. */
function putInPlace(file: string, target: string): void {
  const partial = `${target}.restoring`;
  try {
    rmSync(partial, { force: true });
    copyFileSync(file, partial);
    // copyFile keeps the backup's mode; the database is isched's alone whatever the backup's was.
    chmodSync(partial, 0o600);
    syncPath(partial, "r");
    renameSync(partial, target);
    syncPath(dirname(target), "r");
  } catch (e) {
    rmSync(partial, { force: true });
    throw new CommandError(
      `cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

function syncPath(path: string, mode: string): void {
  const fd = openSync(path, mode);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
