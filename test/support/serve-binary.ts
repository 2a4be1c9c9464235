/**
 * `isched serve` (the compiled binary, serve-process.ts) in a data folder of its own, on free ports,
 * with the API token read from DATA/api-token for the JSON API: an isched a test talks to as an
 * operator's programs do.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { invitation } from "./isched.ts";
import { running, serveProcess } from "./serve-process.ts";

export interface ServedBinary {
  /** `http://127.0.0.1:PORT` of the iSchedule endpoint. */
  readonly url: string;
  /** `http://127.0.0.1:PORT` of the console and API. */
  readonly consoleUrl: string;
  readonly dataDir: string;
  readonly token: string;
  /** The process id of the binary (its memory is in /proc/PID/status). */
  readonly pid: number;
  /** Everything written to stdout so far (the summary and any later lines). */
  stdout(): string;
  /** Everything written to stderr so far (the log). */
  stderr(): string;
  /** GET or POST on the API with the token. */
  api<T>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Starts `isched serve ARGS --data DIR --listen 127.0.0.1:0 (or o.listen) --console 127.0.0.1:0`. */
export async function serveBinary(
  args: readonly string[],
  o: {
    clockFrom?: string;
    clockOffsetSeconds?: number;
    /** HOST:PORT of the endpoint, when peers must know it before it starts (an SRV record). */
    listen?: string;
  } = {},
): Promise<ServedBinary> {
  const dataDir = mkdtempSync(join(tmpdir(), "isched-bin-"));
  let served: ReturnType<typeof running>;
  try {
    served = running(
      await serveProcess(
        ["--data", dataDir, "--listen", o.listen ?? "127.0.0.1:0", "--console", "127.0.0.1:0", ...args],
        { clockFrom: o.clockFrom, clockOffsetSeconds: o.clockOffsetSeconds },
      ),
    );
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
  return {
    url: served.url,
    consoleUrl: served.consoleUrl,
    dataDir,
    token,
    pid: served.process.pid,
    stdout: served.stdout,
    stderr: served.stderr,
    async api<T>(path: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${token}`);
      const res = await fetch(`${served.consoleUrl}/api/v1${path}`, { ...init, headers });
      const text = await res.text();
      return { status: res.status, body: (text === "" ? undefined : JSON.parse(text)) as T };
    },
    async stop() {
      await served.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The flags of a lab isched serving `domain` with its own key file, against a test DNS server and
 * CA, with peers on loopback.
 */
export function labArgs(o: {
  domain: string;
  keyFile: string;
  selector: string;
  dns: { host: string; port: number };
  caFile: string;
}): string[] {
  return [
    "--domain",
    o.domain,
    "--dkim-key",
    o.keyFile,
    "--dkim-selector",
    o.selector,
    "--dns-server",
    `${o.dns.host}:${o.dns.port}`,
    "--ca-file",
    o.caFile,
    "--allow-private-peers",
  ];
}

/** What `POST /api/v1/messages` answers: each recipient's route and state after the first attempt. */
export interface Submitted {
  id: number;
  recipients: { recipient: string; route: string; state: string; status: string; description?: string }[];
}

/** Submits an invitation from alice@DOMAIN to `attendee` through the API, as `isched send` does. */
export async function submitInvitation(
  s: ServedBinary,
  o: { domain: string; attendee: string },
): Promise<Submitted> {
  const body = invitation({
    uid: `${crypto.randomUUID()}@${o.domain}`,
    organizer: `mailto:alice@${o.domain}`,
    attendees: [o.attendee],
  });
  const sent = await s.api<Submitted>("/messages", {
    method: "POST",
    headers: { "content-type": "text/calendar" },
    body,
  });
  if (sent.status !== 202)
    throw new Error(`submission refused: HTTP ${sent.status} ${JSON.stringify(sent.body)}`);
  return sent.body;
}
