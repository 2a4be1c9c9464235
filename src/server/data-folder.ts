/**
 * The data folder (--data) holds secrets: the database keeps the DKIM private keys, the console's
 * password hash and every message, and `api-token` is the API's bearer token. Whatever folder the
 * operator gives, and however it was made (systemd's StateDirectory= makes it 0755), isched makes it
 * its own user's alone before it writes anything there: the folder 0700, its files 0600. A folder or
 * file that belongs to another user is refused: isched cannot make it private, and another user could
 * read or replace the keys.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  type Stats,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config/errors.ts";

/** Creates the folder (0700) or checks and restricts an existing one and the files in it. */
export function prepareDataFolder(dir: string): void {
  for (const step of dataFolderPlan(dir)) step.apply();
}

/** One change start-up makes to the data folder. */
export interface DataFolderStep {
  /** What it does, for `isched validate`: "create data (mode 0700)". */
  readonly text: string;
  apply(): void;
}

/**
 * What start-up will do to the folder, without doing it (for `isched validate`); a ConfigError when
 * isched cannot use it (not a folder, another user's).
 */
export function dataFolderPlan(dir: string): DataFolderStep[] {
  let folder: Stats;
  try {
    folder = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw cannot("read", dir, e);
    return [
      {
        text: `create ${dir} (mode 0700)`,
        apply() {
          try {
            mkdirSync(dir, { recursive: true, mode: 0o700 });
          } catch (e2) {
            throw cannot("create", dir, e2);
          }
        },
      },
    ];
  }
  if (!folder.isDirectory()) throw new ConfigError(`--data ${dir}: not a folder`);
  checkOwner(dir, folder, "the folder");
  const steps = [restrict(dir, folder, 0o700)];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const file = lstatSync(path);
    if (!file.isFile()) continue;
    checkOwner(dir, file, name);
    steps.push(restrict(path, file, 0o600));
  }
  return steps.filter((s): s is DataFolderStep => s !== undefined);
}

function checkOwner(dir: string, st: Stats, what: string): void {
  const uid = process.getuid?.();
  if (uid === undefined || st.uid === uid) return;
  throw new ConfigError(
    `--data ${dir}: ${what} belongs to uid ${st.uid}, not to the user isched runs as (uid ${uid}); ` +
      "run isched as its owner, or give it a folder of its own",
  );
}

function restrict(path: string, st: Stats, mode: number): DataFolderStep | undefined {
  if ((st.mode & 0o777 & ~mode) === 0) return undefined;
  const to = st.mode & 0o777 & mode;
  return {
    text: `make ${path} private (mode ${octal(st.mode & 0o777)} to ${octal(to)})`,
    apply() {
      try {
        chmodSync(path, to);
      } catch (e) {
        throw cannot("make private", path, e);
      }
    },
  };
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;

function cannot(what: string, path: string, e: unknown): ConfigError {
  return new ConfigError(`--data: cannot ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
}

/**
 * The API token when --api-token-file is not given: made on first start and kept in DATA/api-token
 * (mode 0600), where `isched send` and `isched queue` find it.
 */
export function ensureApiToken(dataDir: string): string {
  const path = join(dataDir, "api-token");
  if (existsSync(path)) {
    const token = readFileSync(path, "utf8").trim();
    if (token) return token;
  }
  const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}
