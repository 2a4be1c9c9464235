/**
 * Starts a real isched server in this process for a test (temp data folder, free ports, quick
 * retries), and speaks iSchedule to it as a remote peer would: signed POSTs over real sockets.
 */
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServeConfig } from "../../src/config/serve-config.ts";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { type SigningKey, signRequest } from "../../src/dkim/sign.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { createLogger, silentLogger } from "../../src/log/logger.ts";
import { type RunningServer, startServer } from "../../src/server/app.ts";
import type { SqliteStore } from "../../src/store/sqlite/store.ts";

export interface TestServer extends RunningServer {
  readonly dataDir: string;
  /**
   * The SQLite connection under the server's store, for tests that look at the rows themselves;
   * undefined on a server started with `database` (PostgreSQL): use StoreBackend.rows() there.
   */
  readonly db: Database;
  /** Stops the server and removes its data folder. */
  close(): Promise<void>;
}

export async function startIsched(
  overrides: Partial<ServeConfig> & { domains: string[] },
  o: { nowMs?: () => number } = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), "isched-test-"));
  const config: ServeConfig = {
    listen: { host: "127.0.0.1", port: 0 },
    dataDir,
    deliver: [],
    paths: [],
    trust: [],
    limits: DEFAULT_LIMITS,
    administrator: `mailto:postmaster@${overrides.domains[0]}`,
    deliveryDeadlineMs: 2000,
    retryScheduleMs: [300, 600, 1000, 1000, 1000, 1000, 1000, 1000],
    allowPrivatePeers: true,
    allowSha1: false,
    peerKeys: [],
    console: { host: "127.0.0.1", port: 0 },
    sync: "normal",
    ...overrides,
  };
  const log = process.env.ISCHED_TEST_LOG ? createLogger({ level: "debug" }) : silentLogger;
  const server = await startServer({ config, log, nowMs: o.nowMs });
  return {
    ...server,
    dataDir,
    db: (server.store as SqliteStore).db,
    stop: server.stop,
    async close() {
      await server.stop();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface PeerRequest {
  url: string;
  key?: SigningKey;
  originator: string;
  recipients: readonly string[];
  body: string;
  /** Replaces or adds headers after signing (to break things on purpose). */
  after?: (fields: HeaderField[]) => HeaderField[];
  messageId?: string;
  contentType?: string;
  /** Extra CA (PEM) for an HTTPS endpoint. */
  ca?: string;
}

export interface PeerAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** A POST as a remote iSchedule sender makes it: signed when a key is given. */
export async function postAsPeer(r: PeerRequest): Promise<PeerAnswer> {
  const body = Buffer.from(r.body);
  const method = /^METHOD:(\S+)/m.exec(r.body)?.[1] ?? "REQUEST";
  const component = /^BEGIN:(VEVENT|VTODO|VFREEBUSY|VJOURNAL)/m.exec(r.body)?.[1] ?? "VEVENT";
  let fields: HeaderField[] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", r.messageId ?? crypto.randomUUID()],
    ["Originator", r.originator],
    ["Recipient", r.recipients.join(", ")],
    ["Content-Type", r.contentType ?? `text/calendar; component=${component}; method=${method}`],
    ["Cache-Control", "no-cache, no-transform"],
  ];
  if (r.key) fields.unshift(["DKIM-Signature", signRequest({ key: r.key, fields, body, nowMs: Date.now() })]);
  if (r.after) fields = r.after(fields);
  const res = await fetch(r.url, {
    method: "POST",
    headers: fields as [string, string][],
    body,
    tls: r.ca ? { ca: r.ca } : undefined,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** An iCalendar object with CRLF line endings from lines. */
export const ics = (...lines: string[]): string => `${lines.join("\r\n")}\r\n`;

export function invitation(o: {
  uid: string;
  organizer: string;
  attendees: string[];
  summary?: string;
  start?: string;
  method?: string;
}): string {
  return ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    `METHOD:${o.method ?? "REQUEST"}`,
    "BEGIN:VEVENT",
    `UID:${o.uid}`,
    "DTSTAMP:20261125T120000Z",
    `DTSTART:${o.start ?? "20261202T100000Z"}`,
    "DTEND:20261202T110000Z",
    `SUMMARY:${o.summary ?? "Planning"}`,
    `ORGANIZER;CN=Organizer:${o.organizer}`,
    ...o.attendees.map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:${a}`),
    "END:VEVENT",
    "END:VCALENDAR",
  );
}

export function freeBusyRequest(o: { uid: string; organizer: string; attendees: string[] }): string {
  return ics(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    "METHOD:REQUEST",
    "BEGIN:VFREEBUSY",
    `UID:${o.uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T000000Z",
    "DTEND:20261203T000000Z",
    `ORGANIZER:${o.organizer}`,
    ...o.attendees.map((a) => `ATTENDEE:${a}`),
    "END:VFREEBUSY",
    "END:VCALENDAR",
  );
}

/** The <recipient>/<request-status> pairs of a schedule-response (a test-side reading). */
export function statuses(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(
    /<response>\s*<recipient>([^<]*)<\/recipient>\s*<request-status>([^<]*)<\/request-status>/g,
  )) {
    out[m[1]!.replace(/&amp;/g, "&")] = m[2]!;
  }
  return out;
}
