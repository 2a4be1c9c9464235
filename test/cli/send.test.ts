/** `isched send` against a running isched: each recipient's outcome, and refusals in one line. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isched } from "../support/cli.ts";
import { invitation, startIsched, type TestServer } from "../support/isched.ts";

let server: TestServer;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  server = await startIsched({ domains: ["home.test"] });
  dir = mkdtempSync(join(tmpdir(), "isched-send-"));
  tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${server.apiToken}\n`);
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** isched runs in this process, so the CLI must run without blocking it: spawn asynchronously. */
async function send(args: string[]) {
  const proc = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "..", "src", "main.ts"), "send", ...args],
    {
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}

test("sends an invitation and prints each recipient's outcome", async () => {
  const file = join(dir, "invite.ics");
  writeFileSync(
    file,
    invitation({ uid: "send-1", organizer: "mailto:alice@home.test", attendees: ["mailto:bob@home.test"] }),
  );
  const r = await send([file, "--server", server.consoleUrl, "--token-file", tokenFile]);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^message \S+ \(REQUEST VEVENT\) from mailto:alice@home\.test\n/);
  expect(r.stdout).toMatch(/mailto:bob@home\.test {2}2\.0;Success {2}\(delivered\)/);
  const stored = server.db
    .query<{ intake: string }, []>("SELECT intake FROM messages WHERE uid = 'send-1'")
    .get();
  expect(stored?.intake).toBe("api");
});

test("an Originator outside the hosted domains is refused in one line, exit 1", async () => {
  const file = join(dir, "foreign.ics");
  writeFileSync(
    file,
    invitation({
      uid: "send-2",
      organizer: "mailto:mallory@elsewhere.test",
      attendees: ["mailto:bob@home.test"],
    }),
  );
  const r = await send([file, "--server", server.consoleUrl, "--token-file", tokenFile]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toBe(
    "isched: the message was refused: elsewhere.test is not a domain served here; isched sends only for its own domains.\n",
  );
});

test("--data finds the API token in isched's data folder, as isched queue does", async () => {
  const file = join(dir, "invite-data.ics");
  writeFileSync(
    file,
    invitation({ uid: "send-3", organizer: "mailto:alice@home.test", attendees: ["mailto:bob@home.test"] }),
  );
  const r = await send([file, "--server", server.consoleUrl, "--data", server.dataDir]);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/mailto:bob@home\.test {2}2\.0;Success {2}\(delivered\)/);
});

test("a wrong token and a missing file are one-line failures", async () => {
  const bad = join(dir, "bad-token");
  writeFileSync(bad, "nope\n");
  const file = join(dir, "invite.ics");
  const wrong = await send([file, "--server", server.consoleUrl, "--token-file", bad]);
  expect(wrong.exitCode).toBe(1);
  expect(wrong.stderr).toBe("isched: the API token is wrong\n");
  const missing = isched(["send", join(dir, "none.ics"), "--token-file", tokenFile]);
  expect(missing.exitCode).toBe(1);
  expect(missing.stderr).toBe(
    `isched: cannot read the iCalendar file ${join(dir, "none.ics")}: no such file\n`,
  );
});
