/**
 * Disk use under load, in the compiled binary: a sustained stream of unique, signed invitations (each
 * one stored as a new message) keeps the database's WAL file under 256 MB while the database file
 * itself grows, and the WAL is emptied once the load stops. Each accepted message writes about 70 KB
 * of WAL, so the run writes about 700 MB of WAL in all: without checkpoints that complete (and
 * restart the WAL) it passes the bound within seconds.
 *
 * And when checkpoints cannot complete (here: another program keeps a read transaction open), isched
 * says so in its log and on the console's Overview, and again when they work again.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation } from "../support/isched.ts";
import { runLoad } from "../support/load.ts";
import { requestBytes } from "../support/raw-http.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

const MB = 1024 * 1024;
const WAL_BOUND = 256 * MB;
/** Enough messages that their WAL, never checkpointed, would be several times the bound. */
const MESSAGES = 10_000;
const MAX_LOAD_MS = 60_000;

const key = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
let dir: string;
let isched: ServeProcess;

const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

function signedInvitation(n: number): Uint8Array {
  const id = `wal-${n}-${crypto.randomUUID()}`;
  const body = Buffer.from(
    invitation({ uid: id, organizer: "mailto:bernard@peer.test", attendees: ["mailto:ann@org.test"] }),
  );
  const fields: [string, string][] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", id],
    ["Originator", "mailto:bernard@peer.test"],
    ["Recipient", "mailto:ann@org.test"],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
    ["Cache-Control", "no-cache, no-transform"],
  ];
  fields.unshift(["DKIM-Signature", signRequest({ key, fields, body, nowMs: Date.now() })]);
  return requestBytes({ path: "/.well-known/ischedule", fields: [["Host", "127.0.0.1"], ...fields], body });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-wal-"));
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  isched = running(
    await serveProcess([
      "--domain",
      "org.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--data",
      join(dir, "data"),
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      // Its key is in no DNS and it sends nothing: the Overview's problems stay the checkpoints'.
      "--sign-unpublished",
      "--log-level",
      "warn",
    ]),
  );
});

afterAll(async () => {
  await isched?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("under a sustained load of unique messages the WAL stays under 256 MB and the database grows", async () => {
  const db = join(dir, "data", "isched.db");
  const wal = `${db}-wal`;
  const dbBefore = size(db);
  let walMax = 0;
  const sampler = setInterval(() => {
    walMax = Math.max(walMax, size(wal));
  }, 50);
  let sent = 0;
  const started = Date.now();
  const result = await runLoad({
    port: isched.port,
    connections: 8,
    next: () => (sent < MESSAGES ? signedInvitation(sent++) : undefined),
    stop: () => Date.now() - started > MAX_LOAD_MS,
  });
  const dbAfterLoad = size(db);
  // Once the load stops the WAL is folded back and emptied.
  const quietUntil = Date.now() + 10_000;
  while (size(wal) > 0 && Date.now() < quietUntil) await Bun.sleep(100);
  clearInterval(sampler);
  const walAfter = size(wal);
  console.log(
    `accepted ${result.statuses[200] ?? 0} of ${sent} in ${Math.round(result.elapsedMs)} ms; ` +
      `WAL max ${(walMax / MB).toFixed(1)} MB, after ${(walAfter / MB).toFixed(1)} MB; ` +
      `database ${(dbBefore / MB).toFixed(1)} -> ${(dbAfterLoad / MB).toFixed(1)} MB`,
  );
  expect(result.statuses[200]).toBe(MESSAGES);
  expect(walMax).toBeLessThan(WAL_BOUND);
  // Every stored message is in the database file, not only in the WAL: at least 1 KB each.
  expect(dbAfterLoad - dbBefore).toBeGreaterThan(MESSAGES * 1024);
  expect(walAfter).toBe(0);
}, 120_000);

async function problems(): Promise<{ id: string; text: string }[]> {
  const token = readFileSync(join(dir, "data", "api-token"), "utf8").trim();
  const res = await fetch(`${isched.consoleUrl}/api/v1/overview`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  return ((await res.json()) as { problems: { id: string; text: string }[] }).problems;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out");
    await Bun.sleep(100);
  }
}

test("checkpoints that cannot complete are reported in the log and on the console, and so is the recovery", async () => {
  const path = join(dir, "data", "isched.db");
  expect(await problems()).toEqual([]);
  // A reader (a backup, a long query in another program) keeps a snapshot open...
  const reader = new Database(path, { readonly: true });
  reader.run("BEGIN");
  reader.query("SELECT count(*) FROM messages").get();
  // ...while isched keeps writing.
  let n = 0;
  await runLoad({
    port: isched.port,
    connections: 2,
    next: () => (n < 200 ? signedInvitation(MESSAGES + n++) : undefined),
    stop: () => false,
  });
  await waitFor(() => isched.stderr().includes("WAL checkpoints cannot complete"), 30_000);
  expect(isched.stderr()).toMatch(
    / error WAL checkpoints cannot complete: a reader keeps an old snapshot .* problem=checkpoints/,
  );
  const shown = await problems();
  expect(shown.map((p) => p.id)).toEqual(["checkpoints"]);
  expect(shown[0]!.text).toContain("the WAL file is");
  reader.run("COMMIT");
  reader.close();
  await waitFor(() => isched.stderr().includes("WAL checkpoints complete again"), 30_000);
  expect(await problems()).toEqual([]);
  await waitFor(() => size(`${path}-wal`) === 0, 10_000);
}, 90_000);
