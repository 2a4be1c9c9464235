/**
 * How `isched send` and `isched queue` reach the running isched: the same flags (`--server`,
 * `--token-file`, `--data` where the API token is kept and where the running isched says where its
 * console listens: running-server.ts) and the same one-line failures.
 */

import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import {
  type ApiClient,
  ClientError,
  createClient,
  DEFAULT_SERVER,
  readToken,
} from "../../console/client.ts";
import { CommandError } from "../errors.ts";
import { consoleUrlFor } from "../running-server.ts";

export const connectionFlags = {
  server: flag.string({
    help: `the running isched's console [default: from DATA/serving.json, else ${DEFAULT_SERVER}]`,
    placeholder: "URL",
  }),
  tokenFile: flag.string({ help: "API token [default: DATA/api-token]", placeholder: "FILE" }),
  data: flag.stringWithDefault({
    help: "isched's data folder (for the token)",
    placeholder: "DIR",
    defaultValue: "data",
  }),
};

export function connect(
  f: { server?: string; tokenFile?: string; data: string },
  o: { timeoutMs?: number } = {},
): ApiClient {
  try {
    return createClient({
      server: consoleUrlFor({ server: f.server, dataDir: f.data, defaultUrl: DEFAULT_SERVER }),
      token: readToken({ tokenFile: f.tokenFile, dataDir: f.data }),
      timeoutMs: o.timeoutMs,
    });
  } catch (e) {
    if (e instanceof ClientError) throw new CommandError(e.message);
    throw e;
  }
}

/**
 * Runs an API call, turning its refusal into the command's one-line failure: a 400 (a bad filter)
 * is the user's mistake on the command line, anything else a failure; `refused` prefixes the
 * server's reason for a 4xx other than a missing or wrong token.
 */
export async function ask<T>(work: () => Promise<T>, o: { refused?: string } = {}): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    const status = e.status ?? 0;
    const prefix = o.refused && status >= 400 && status < 500 && status !== 401 && status !== 403;
    const message = prefix ? `${o.refused}: ${e.message}` : e.message;
    if (status === 400 && !o.refused) throw new UsageError(message);
    throw new CommandError(message);
  }
}
