/**
 * The command line's way to the running server's API (`isched queue`, `isched admin`): the console
 * address and DATA/api-token by default, one-line errors for what usually goes wrong (nothing
 * listening, a wrong token, a refused filter).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const DEFAULT_SERVER = "http://127.0.0.1:8081";

export class ClientError extends Error {
  override readonly name = "ClientError";
  constructor(
    message: string,
    readonly status?: number,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface ApiClient {
  readonly server: string;
  call<T>(method: "GET" | "POST" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T>;
}

/** The token from --token-file, else DATA/api-token. */
export function readToken(o: { tokenFile?: string; dataDir: string }): string {
  const path = o.tokenFile ?? join(o.dataDir, "api-token");
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ClientError(
      `cannot read the API token ${path} (${code === "ENOENT" ? "no such file: give --token-file, or --data where isched keeps it" : (code ?? "error")})`,
    );
  }
  if (!text) throw new ClientError(`the API token file ${path} is empty`);
  return text;
}

export function createClient(o: { server: string; token: string; timeoutMs?: number }): ApiClient {
  const base = o.server.replace(/\/+$/, "");
  return {
    server: base,
    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(`${base}/api/v1${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${o.token}`,
            Accept: "application/json",
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: o.timeoutMs === undefined ? undefined : AbortSignal.timeout(o.timeoutMs),
        });
      } catch (e) {
        throw new ClientError(
          `cannot reach isched at ${base} (${(e as Error).message}); is it running? (--server URL)`,
        );
      }
      const text = await res.text();
      let parsed: Record<string, unknown> = {};
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        throw new ClientError(
          `${base} answered HTTP ${res.status} with something that is not JSON: is it isched's console?`,
          res.status,
        );
      }
      if (!res.ok) throw new ClientError(String(parsed.error ?? `HTTP ${res.status}`), res.status, parsed);
      return parsed as T;
    },
  };
}
