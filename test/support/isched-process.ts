/**
 * The compiled `dist/isched serve` as its own process, on free ports with a temp data folder and an
 * API token file, for end-to-end tests that must run the product itself; and the `isched` command
 * line of the same binary, pointed at it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ischedBinary } from "./binary.ts";
import type { CliResult } from "./cli.ts";
import { freePort } from "./ports.ts";

export interface IschedProcess {
  readonly url: string;
  readonly consoleUrl: string;
  readonly dataDir: string;
  readonly tokenFile: string;
  readonly token: string;
  readonly pid: number;
  /** What the process printed on stderr so far. */
  stderr(): string;
  /** The console API with the token: `api("GET", "/messages")`. */
  api(method: string, path: string, json?: unknown): Promise<Response>;
  /** `isched ARGS... --server CONSOLE --token-file F` with the same binary. */
  cli(args: string[]): CliResult;
  /** Stops the process (SIGTERM) and removes the temp folder. */
  close(): Promise<void>;
}

export async function startIschedProcess(args: string[]): Promise<IschedProcess> {
  const dir = mkdtempSync(join(tmpdir(), "isched-proc-"));
  const dataDir = join(dir, "data");
  const tokenFile = join(dir, "api-token");
  const token = Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const [port, consolePort] = [await freePort(), await freePort()];
  const binary = ischedBinary();
  const child: Subprocess<"ignore", "ignore", "pipe"> = Bun.spawn(
    [
      binary,
      "serve",
      "--listen",
      `127.0.0.1:${port}`,
      "--console",
      `127.0.0.1:${consolePort}`,
      "--data",
      dataDir,
      "--api-token-file",
      tokenFile,
      "--log-level",
      "warn",
      ...args,
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  let stderr = "";
  void (async () => {
    for await (const chunk of child.stderr) stderr += Buffer.from(chunk).toString("utf8");
  })();
  const url = `http://127.0.0.1:${port}`;
  const consoleUrl = `http://127.0.0.1:${consolePort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`isched serve exited (${child.exitCode}): ${stderr}`);
    const up = await fetch(`${consoleUrl}/api/v1/health`, { headers: { Authorization: `Bearer ${token}` } })
      .then((r) => r.status === 200)
      .catch(() => false);
    if (up) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`isched serve did not answer within 20 s: ${stderr}`);
    }
    await Bun.sleep(50);
  }
  return {
    url,
    consoleUrl,
    dataDir,
    tokenFile,
    token,
    pid: child.pid,
    stderr: () => stderr,
    api: (method, path, json) =>
      fetch(`${consoleUrl}/api/v1${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(json === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: json === undefined ? undefined : JSON.stringify(json),
      }),
    cli(cliArgs) {
      const run = Bun.spawnSync([binary, ...cliArgs, "--server", consoleUrl, "--token-file", tokenFile], {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      return {
        exitCode: run.exitCode ?? -1,
        stdout: run.stdout.toString(),
        stderr: run.stderr.toString(),
      };
    },
    async close() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
