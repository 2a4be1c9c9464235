/**
 * `isched admin set-password` as an operator runs it against a running gateway (the compiled binary)
 * whose console is not on the default port: on a terminal (a real pseudo-terminal, script(1)) it asks
 * twice without echo; from a pipe it takes the first line; it finds the console from the data folder
 * (and so does `isched queue`).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ischedBinary } from "../support/binary.ts";
import { runIsched } from "../support/binary-run.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

let dir: string;
let data: string;
let server: ServeProcess;
const password = "correct horse battery staple";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-admin-"));
  data = join(dir, "data");
  server = running(
    await serveProcess([
      "--domain",
      "example.org",
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--data",
      data,
    ]),
  );
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(password: string): Promise<number> {
  const res = await fetch(`${server.consoleUrl}/api/v1/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: server.consoleUrl },
    body: JSON.stringify({ password }),
  });
  return res.status;
}

/** Runs the command on a pseudo-terminal, typing each answer once its prompt is shown. */
async function onTerminal(args: string[], answers: string[]): Promise<{ exitCode: number; screen: string }> {
  const command = [ischedBinary(), ...args].join(" ");
  const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  let screen = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of proc.stdout) screen += decoder.decode(chunk, { stream: true });
  })();
  const prompts = [/New console password: $/, /The same console password again: $/];
  for (const [i, answer] of answers.entries()) {
    const deadline = Date.now() + 20_000;
    while (!prompts[i]!.test(screen)) {
      if (Date.now() > deadline) throw new Error(`no prompt ${i + 1}; the screen shows:\n${screen}`);
      await Bun.sleep(20);
    }
    proc.stdin.write(`${answer}\r`);
    proc.stdin.flush();
  }
  const exitCode = await proc.exited;
  await reading;
  return { exitCode, screen };
}

test("on a terminal it asks twice with echo off, and sets the password through the console it finds in the data folder", async () => {
  expect(server.consoleUrl).not.toBe("http://127.0.0.1:8081");
  const r = await onTerminal(["admin", "set-password", "--data", data], [password, password]);
  expect(r.screen).not.toContain("correct horse");
  expect(r.screen).toContain(
    `The console password is set (through ${server.consoleUrl}); everyone was signed out.`,
  );
  expect(r.exitCode).toBe(0);
  expect(await signIn(password)).toBe(200);
});

test("on a terminal, two different answers change nothing", async () => {
  const r = await onTerminal(
    ["admin", "set-password", "--data", data],
    ["first attempt at it", "second attempt at it"],
  );
  expect(r.screen).toContain("isched: the two console passwords differ; nothing was changed");
  expect(r.screen).not.toContain("attempt at it");
  expect(r.exitCode).toBe(1);
  // Unchanged: the password of the test before still signs in.
  expect(await signIn(password)).toBe(200);
});

test("from a pipe it takes the first line", async () => {
  const r = await runIsched(["admin", "set-password", "--data", data], {
    stdin: "piped password one\nsecond line\n",
  });
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe(
    `The console password is set (through ${server.consoleUrl}); everyone was signed out.\n`,
  );
  expect(await signIn("piped password one")).toBe(200);
  const empty = await runIsched(["admin", "set-password", "--data", data], { stdin: "" });
  expect(empty.exitCode).toBe(1);
  expect(empty.stderr).toBe("isched: no console password on standard input (give it as its first line)\n");
});

test("isched queue finds the console from the data folder too", async () => {
  const r = await runIsched(["queue", "list", "--data", data]);
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe("no message matches\n");
});
