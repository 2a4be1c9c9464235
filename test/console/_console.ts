/**
 * A real isched (startServer, temp data, free ports) with a console password, and the requests a
 * browser or a program makes to its console: signed in with a session cookie and CSRF token, with the
 * API token, or as nobody.
 */

import type { ServeConfig } from "../../src/config/serve-config.ts";
import { setAdminPassword } from "../../src/console/auth.ts";
import { startIsched, type TestServer } from "../support/isched.ts";

export const PASSWORD = "correct horse battery";

export interface Session {
  cookie: string;
  csrf: string;
}

export interface ConsoleServer {
  isched: TestServer;
  base: string;
  /** fetch against the console; `init.headers` as given (nothing added). */
  raw(path: string, init?: RequestInit): Promise<Response>;
  /** With the API token. */
  token(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** With a session: the cookie always, the CSRF token and same Origin on changes. */
  session(s: Session, path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  signIn(password?: string): Promise<Session>;
  close(): Promise<void>;
}

export async function startConsoleServer(
  overrides: Partial<ServeConfig> & { domains?: string[] } = {},
  o: { password?: string | null; nowMs?: () => number } = {},
): Promise<ConsoleServer> {
  const isched = await startIsched({ domains: ["example.com"], ...overrides }, { nowMs: o.nowMs });
  if (o.password !== null) await setAdminPassword(isched.store, o.password ?? PASSWORD);
  const base = isched.consoleUrl;
  const raw = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { redirect: "manual", ...init });
  const withJson = (init: RequestInit & { json?: unknown }, headers: Record<string, string>): RequestInit => {
    const { json, ...rest } = init;
    const h = { ...headers, ...(rest.headers as Record<string, string> | undefined) };
    if (json !== undefined) h["Content-Type"] = "application/json";
    return { ...rest, headers: h, body: json === undefined ? rest.body : JSON.stringify(json) };
  };
  const server: ConsoleServer = {
    isched,
    base,
    raw,
    token: (path, init = {}) => raw(path, withJson(init, { Authorization: `Bearer ${isched.apiToken}` })),
    session: (s, path, init = {}) => {
      const method = (init.method ?? "GET").toUpperCase();
      const headers: Record<string, string> = { Cookie: s.cookie };
      if (method !== "GET") {
        headers["X-CSRF-Token"] = s.csrf;
        headers.Origin = base;
      }
      return raw(path, withJson(init, headers));
    },
    async signIn(password = PASSWORD) {
      const res = await raw("/api/v1/session", {
        method: "POST",
        headers: { "Content-Type": "application/json", Origin: base },
        body: JSON.stringify({ password }),
      });
      if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
      const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
      const { csrfToken } = (await res.json()) as { csrfToken: string };
      return { cookie, csrf: csrfToken };
    },
    close: () => isched.close(),
  };
  return server;
}

/** A route path with sample values for its parameters. */
export function samplePath(path: string): string {
  return path.replace(":id", "1").replace(":domain", "peer.example").replace(":action", "retry");
}
