/**
 * Where a running `isched serve` can be reached, found from its data folder: serve writes
 * DATA/serving.json (its pid and the addresses it listens on, which may be ports the system chose)
 * once it listens, and removes it when it stops. The file is believed only while the data lock names
 * the same live process, so a file left by a crash misleads nobody. `isched admin`, `isched queue`
 * and `isched doctor` use it instead of assuming the default console address.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type LockHolder, lockHolder, lockPathFor } from "../store/sqlite/data-lock.ts";

export const SERVING_FILE = "serving.json";

export interface ServingInfo {
  readonly pid: number;
  /** `http[s]://HOST:PORT` of the iSchedule endpoint. */
  readonly endpoint: string;
  /** `http[s]://HOST:PORT` of the console and API. */
  readonly console: string;
  /** `HOST:PORT` of the SMTP intake, when it runs. */
  readonly smtp?: string;
  readonly startedAt: string;
}

export const databasePathOf = (dataDir: string): string => join(dataDir, "isched.db");

/** The live process that holds the data folder's lock, if any. */
export function gatewayHolding(dataDir: string): LockHolder | undefined {
  return lockHolder(lockPathFor(databasePathOf(dataDir)));
}

/** Written by serve once it listens (mode 0600: the process's umask is 077). */
export function writeServingInfo(dataDir: string, info: Omit<ServingInfo, "pid" | "startedAt">): () => void {
  const path = join(dataDir, SERVING_FILE);
  const value: ServingInfo = { pid: process.pid, startedAt: new Date().toISOString(), ...info };
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  return () => rmSync(path, { force: true });
}

/** The running gateway of a data folder, or undefined when none runs there (or it did not say). */
export function runningServer(dataDir: string): ServingInfo | undefined {
  const holder = gatewayHolding(dataDir);
  if (!holder) return undefined;
  let info: ServingInfo;
  try {
    info = JSON.parse(readFileSync(join(dataDir, SERVING_FILE), "utf8")) as ServingInfo;
  } catch {
    return undefined;
  }
  return info.pid === holder.pid && typeof info.console === "string" ? info : undefined;
}

/**
 * The console to talk to: `--server` when given, else the one the running gateway of the data
 * folder listens on, else the default address.
 */
export function consoleUrlFor(o: { server?: string; dataDir: string; defaultUrl: string }): string {
  return o.server ?? runningServer(o.dataDir)?.console ?? o.defaultUrl;
}
