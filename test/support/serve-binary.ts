/**
 * Runs the compiled `dist/isched serve` as an operator would, for end-to-end tests: a real process
 * with its own data folder, its start-up summary read from stdout (the endpoint and console URLs),
 * its log lines kept, and the API token read from DATA/api-token for the JSON API.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ischedBinary } from "./binary.ts";
import { invitation } from "./isched.ts";

export interface ServedBinary {
  /** `http://127.0.0.1:PORT` of the iSchedule endpoint. */
  readonly url: string;
  /** `http://127.0.0.1:PORT` of the console and API. */
  readonly consoleUrl: string;
  readonly dataDir: string;
  readonly token: string;
  /** Everything written to stdout so far (the summary and any later lines). */
  stdout(): string;
  /** Everything written to stderr so far (the log). */
  stderr(): string;
  /** GET or POST on the API with the token. */
  api<T>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Starts `isched serve ARGS --data DIR --listen 127.0.0.1:0 --console 127.0.0.1:0` and waits for its summary. */
export async function serveBinary(
  args: readonly string[],
  o: { timeoutMs?: number } = {},
): Promise<ServedBinary> {
  const dataDir = mkdtempSync(join(tmpdir(), "isched-bin-"));
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    [
      ischedBinary(),
      "serve",
      "--data",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      ...args,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  let out = "";
  let err = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  };
  void pump(proc.stdout, (s) => {
    out += s;
  });
  void pump(proc.stderr, (s) => {
    err += s;
  });
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  let endpoint: RegExpExecArray | null = null;
  let consoleUrl: RegExpExecArray | null = null;
  while (Date.now() < deadline) {
    endpoint = /endpoint\s+(http\S+?)\/\.well-known\/ischedule/.exec(out);
    consoleUrl = /console\/API\s+(http\S+?)\/api\/v1/.exec(out);
    if ((endpoint && consoleUrl) || proc.exitCode !== null) break;
    await Bun.sleep(25);
  }
  if (!endpoint || !consoleUrl) {
    proc.kill();
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`isched serve did not start (exit ${proc.exitCode}):\n${out}\n${err}`);
  }
  const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
  const base = consoleUrl[1]!;
  return {
    url: endpoint[1]!,
    consoleUrl: base,
    dataDir,
    token,
    stdout: () => out,
    stderr: () => err,
    async api<T>(path: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      headers.set("authorization", `Bearer ${token}`);
      const res = await fetch(`${base}/api/v1${path}`, { ...init, headers });
      const text = await res.text();
      return { status: res.status, body: (text === "" ? undefined : JSON.parse(text)) as T };
    },
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
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
