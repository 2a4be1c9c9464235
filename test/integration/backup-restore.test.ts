/**
 * `isched backup` while the gateway serves, `isched restore` refused while it runs and done when it
 * does not, and a database newer than the binary refused at start: all with the compiled binary, as
 * an operator runs them.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SCHEMA_VERSION } from "../../src/store/sqlite/migrations.ts";
import { runIsched } from "../support/binary-run.ts";
import { invitation } from "../support/isched.ts";
import { printed, running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-backup-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const serveArgs = (data: string) => [
  "--domain",
  "home.test",
  "--listen",
  "127.0.0.1:0",
  "--console",
  "127.0.0.1:0",
  "--data",
  data,
];

async function submit(s: ServeProcess, data: string, uid: string): Promise<void> {
  const token = readFileSync(join(data, "api-token"), "utf8").trim();
  const res = await fetch(`${s.consoleUrl}/api/v1/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      calendar: invitation({ uid, organizer: "mailto:alice@home.test", attendees: ["mailto:bob@home.test"] }),
    }),
  });
  expect(res.status).toBe(202);
}

function keyRecords(path: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .query<{ record: string }, []>("SELECT record FROM dkim_keys ORDER BY id")
      .all()
      .map((r) => r.record);
  } finally {
    db.close();
  }
}

test("backup while serving, restore refused while serving, restore after: the keys and messages come back", async () => {
  const data = join(dir, "data");
  const first = running(await serveProcess(serveArgs(data)));
  let backupFile: string;
  let keys: string[];
  try {
    // The new key's records follow the summary: wait for them rather than read what is there.
    expect(await printed(first, /New DKIM key for home\.test/)).toContain("New DKIM key for home.test");
    await submit(first, data, "before-backup");
    keys = keyRecords(join(data, "isched.db"));
    expect(keys.length).toBe(1);

    backupFile = join(dir, "isched-backup.db");
    const b = await runIsched(["backup", backupFile, "--data", data]);
    expect(b.stderr).toBe("");
    expect(b.exitCode).toBe(0);
    expect(b.stdout).toMatch(
      /^Backed up \S+isched\.db to \S+isched-backup\.db in \d+ ms: 1 messages, 1 deliveries, 1 DKIM keys with their private keys; schema \d+ \(isched [^)]+\), \d+ kB\./,
    );
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(keyRecords(backupFile)).toEqual(keys);

    // A second backup to the same name is refused: a backup never overwrites a file.
    const again = await runIsched(["backup", backupFile, "--data", data]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toBe(
      `isched: cannot back up ${join(data, "isched.db")}: ${backupFile} exists: give a new name (a backup never overwrites a file)\n`,
    );

    await submit(first, data, "after-backup");
    const refused = await runIsched(["restore", backupFile, "--data", data]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^isched: refusing to restore into ${data}: it is in use by another isched process \\(pid ${first.process.pid}, .*\\); stop that isched first\\n$`,
      ),
    );
  } finally {
    await first.stop();
  }

  const restored = await runIsched(["restore", backupFile, "--data", data]);
  expect(restored.stderr).toBe("");
  expect(restored.exitCode).toBe(0);
  expect(restored.stdout).toContain(`Restored ${backupFile} as ${join(data, "isched.db")}: 1 messages`);
  const aside = readdirSync(data).filter((f) => /^isched\.db\.before-restore-\d{8}T\d{6}Z$/.test(f));
  expect(aside.length).toBe(1);
  expect(statSync(join(data, "isched.db")).mode & 0o777).toBe(0o600);

  const second = running(await serveProcess(serveArgs(data)));
  try {
    // The same key: nothing new to publish.
    expect(second.stdout()).not.toContain("New DKIM key");
    expect(keyRecords(join(data, "isched.db"))).toEqual(keys);
    const token = readFileSync(join(data, "api-token"), "utf8").trim();
    const page = (await (
      await fetch(`${second.consoleUrl}/api/v1/messages?q=`, {
        headers: { Authorization: `Bearer ${token}` },
      })
    ).json()) as { messages: { uid: string }[] };
    expect(page.messages.map((m) => m.uid)).toEqual(["before-backup"]);
  } finally {
    await second.stop();
  }
});

test("restore refuses a file that is not an isched database, and a damaged one, changing nothing", async () => {
  const data = join(dir, "untouched");
  const notes = join(dir, "notes.txt");
  writeFileSync(notes, "not a database\n".repeat(100));
  const r = await runIsched(["restore", notes, "--data", data]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toBe(
    `isched: cannot restore ${notes}: ${notes} is not an isched database (not an SQLite file)\n`,
  );
  expect(existsSync(data)).toBe(false);

  const source = join(dir, "source");
  const s = running(await serveProcess(serveArgs(source)));
  await s.stop();
  const good = join(dir, "good.db");
  expect((await runIsched(["backup", good, "--data", source])).exitCode).toBe(0);
  const damaged = join(dir, "damaged.db");
  const bytes = readFileSync(good);
  // Overwrite the middle of the file's pages (the header stays, so SQLite opens it).
  bytes.fill(0x55, 4096 + 100, bytes.length - 100);
  writeFileSync(damaged, bytes);
  const d = await runIsched(["restore", damaged, "--data", data]);
  expect(d.exitCode).toBe(1);
  expect(d.stderr).toMatch(
    /^isched: cannot restore \S+damaged\.db: \S+damaged\.db is (damaged|not an isched database)/,
  );
  expect(existsSync(join(data, "isched.db"))).toBe(false);
});

test("a binary older than its data refuses to start, naming the isched that wrote it and the way back", async () => {
  const data = join(dir, "newer");
  const s = running(await serveProcess(serveArgs(data)));
  await s.stop();
  const db = new Database(join(data, "isched.db"));
  db.run("PRAGMA user_version = 99");
  db.run("UPDATE settings SET value = '7.0.0' WHERE key = 'schema.written-by'");
  db.close();
  const refused = await serveProcess(serveArgs(data));
  expect("exitCode" in refused).toBe(true);
  if (!("exitCode" in refused)) return;
  expect(refused.exitCode).toBe(1);
  expect(refused.stderr).toMatch(
    new RegExp(
      `^isched: Cannot open the database ${join(data, "isched.db")}: it was written by isched 7\\.0\\.0 \\(schema 99\\), and this isched \\S+ knows schema ${SCHEMA_VERSION} at most: run isched 7\\.0\\.0 or later, or restore the backup made before the upgrade \\(isched restore FILE\\)\\n$`,
    ),
  );
});
