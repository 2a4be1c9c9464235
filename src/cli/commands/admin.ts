/**
 * `isched admin set-password`, and what `isched serve` does about console access: apply
 * --admin-password-file, or print the one-time setup token; refuse a console on a network address
 * without TLS unless --console-insecure says so.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, UsageError } from "../../config/errors.ts";
import { readSecretFile } from "../../config/files.ts";
import { flag } from "../../config/flags.ts";
import type { ServeConfig } from "../../config/serve-config.ts";
import { passwordProblem, prepareAdminAccess, setAdminPassword } from "../../console/auth.ts";
import { ClientError, createClient, DEFAULT_SERVER, readToken } from "../../console/client.ts";
import { isLoopbackHost } from "../../console/guard.ts";
import type { RunningServer } from "../../server/app.ts";
import { openSqliteStore, type SqliteStore } from "../../store/sqlite/store.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { describeFsError } from "../io.ts";
import { consoleUrlFor } from "../running-server.ts";
import { readNewSecret } from "../secret-input.ts";

export interface ConsoleAccess {
  password?: string;
}

/** Checked before the server starts: a mistake here is a usage error, not a half-started server. */
export function consoleAccessFromFlags(
  f: { adminPasswordFile?: string; consoleInsecure: boolean },
  c: ServeConfig,
): ConsoleAccess {
  if (!isLoopbackHost(c.console.host) && !c.tls && !f.consoleInsecure) {
    throw new UsageError(
      `--console ${c.console.host}: a console on a network address needs TLS (--tls-cert/--tls-key), or --console-insecure`,
    );
  }
  if (f.adminPasswordFile === undefined) return {};
  let password: string;
  try {
    password = readSecretFile("--admin-password-file", f.adminPasswordFile);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const problem = passwordProblem(password);
  if (problem) throw new UsageError(`--admin-password-file: ${problem}`);
  return { password };
}

/** After start: the password from the file, or the setup token to sign in the first time. */
export async function announceConsoleAccess(
  server: RunningServer,
  access: ConsoleAccess,
  write: (text: string) => void = (t) => process.stdout.write(t),
): Promise<void> {
  const { setupToken } = await prepareAdminAccess(server.store, access);
  if (setupToken) {
    write(
      `\nThe console has no password yet. Open ${server.consoleUrl}/ and enter this one-time setup token\n` +
        `(it changes at every start until a password is set; or run 'isched admin set-password'):\n  ${setupToken}\n`,
    );
  }
}

/** From --password-file (its first line), else the terminal (asked twice, echo off) or a pipe. */
async function readPassword(file: string | undefined): Promise<string> {
  let password: string;
  if (file === undefined || file === "-") password = await readNewSecret("console password");
  else {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new CommandError(`cannot read the password from ${file}: ${describeFsError(e)}`);
    }
    password = text.split(/\r?\n/)[0]!;
  }
  const problem = passwordProblem(password);
  if (problem) throw new UsageError(problem);
  return password;
}

export const adminSetPasswordCommand = defineCommand({
  name: "admin set-password",
  summary: "Set the admin console's password (asked on the terminal, or the first line of standard input)",
  usage: "admin set-password [--password-file FILE] [--data DIR] [--server URL --token-file F]",
  description: [
    "On a terminal it asks twice, without echo; from a pipe (or --password-file) it reads the first",
    "line. Stores the password's argon2id hash in the database and signs everyone out. When isched is",
    "running (it holds the database), the password goes through its API with the API token, to the",
    "console address that isched wrote in the data folder (DATA/serving.json) unless --server says.",
  ].join("\n"),
  flags: {
    passwordFile: flag.string({
      help: "read the password from this file's first line [default: ask, or standard input]",
      placeholder: "FILE",
    }),
    data: flag.stringWithDefault({ help: "isched's data folder", placeholder: "DIR", defaultValue: "data" }),
    server: flag.string({
      help: `the running isched's console [default: from DATA/serving.json, else ${DEFAULT_SERVER}]`,
      placeholder: "URL",
    }),
    tokenFile: flag.string({ help: "API token [default: DATA/api-token]", placeholder: "FILE" }),
  },
  positionals: { min: 0, max: 0 },
  async run({ flags }) {
    const password = await readPassword(flags.passwordFile);
    if (flags.server === undefined) {
      let store: SqliteStore | undefined;
      try {
        store = openSqliteStore(join(flags.data, "isched.db"));
      } catch (e) {
        // isched holds the database while it runs: go through its API instead.
        if (!/in use by/.test((e as Error).message)) throw new CommandError((e as Error).message);
      }
      if (store) {
        try {
          await setAdminPassword(store, password);
        } finally {
          await store.close();
        }
        process.stdout.write(`The console password is set (in ${join(flags.data, "isched.db")}).\n`);
        return 0;
      }
    }
    try {
      const client = createClient({
        server: consoleUrlFor({ server: flags.server, dataDir: flags.data, defaultUrl: DEFAULT_SERVER }),
        token: readToken({ tokenFile: flags.tokenFile, dataDir: flags.data }),
      });
      await client.call("PUT", "/admin/password", { password });
      process.stdout.write(
        `The console password is set (through ${client.server}); everyone was signed out.\n`,
      );
      return 0;
    } catch (e) {
      if (e instanceof ClientError) throw new CommandError(e.message);
      throw e;
    }
  },
});
