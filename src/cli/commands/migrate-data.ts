/**
 * `isched migrate-data --from DIR --to postgres://...`: an installation's SQLite database copied into
 * PostgreSQL, for an isched that moves to `serve --database` (several nodes on one database). Every
 * table is copied with its ids and bytes in one PostgreSQL transaction, and the row counts of both
 * sides are compared and printed (src/store/postgres/copy-from-sqlite.ts).
 *
 * Refused, in one line and nothing written: a data folder an isched is serving (its data lock), a
 * schema on either side that is not this isched's, a PostgreSQL database that already holds data
 * (unless --replace). The URL's password is never printed: every URL and every error shown goes
 * through redactSecrets.
 */
import { existsSync } from "node:fs";
import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import {
  type CopyProgress,
  type CopyReport,
  copyInstallation,
  SourceInUseError,
  type TableCount,
} from "../../store/postgres/copy-from-sqlite.ts";
import { redactSecrets } from "../../text/redact.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { databasePathOf } from "../running-server.ts";

/** A progress line at most this often, while a long copy runs. */
const PROGRESS_INTERVAL_MS = 1000;
/** How long to wait for PostgreSQL to accept a connection (seconds). */
const CONNECT_TIMEOUT_S = 10;

/** The target URL checked: a postgres:// or postgresql:// URL naming a host. */
function targetUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(
      `--to ${redactSecrets(raw)}: not a URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)`,
    );
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw new UsageError(`--to ${redactSecrets(raw)}: not a postgres:// URL`);
  if (url.hostname === "") throw new UsageError(`--to ${redactSecrets(raw)}: the URL names no host`);
  return url;
}

/** `text` without the URL's password, whether it appears in a URL or alone (a driver's message). */
function hidden(text: string, url: URL): string {
  const password = decodeURIComponent(url.password);
  const redacted = redactSecrets(text);
  return password.length >= 3 ? redacted.split(password).join("***") : redacted;
}

/**
 * Why the copy failed: the error's message, with Bun.SQL's code when the connection is the trouble
 * ("Failed to connect" alone does not say that the server refused it).
 */
function reason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as Error & { code?: unknown }).code;
  if (typeof code === "string" && /^ERR_POSTGRES_CONNECTION_/.test(code))
    return `${e.message} (${code.slice("ERR_POSTGRES_".length).toLowerCase().replace(/_/g, " ")})`;
  return e.message;
}

/**
 * The copy's progress as lines ("  messages: 12,000 of 50,000 rows (24%)"), one per
 * PROGRESS_INTERVAL_MS at most, so a long copy shows it is moving and a short one prints none.
 */
export function progressLines(o: {
  nowMs: () => number;
  write: (line: string) => void;
}): (p: CopyProgress) => void {
  let lastMs = o.nowMs();
  return (p) => {
    const now = o.nowMs();
    if (p.copied >= p.total || now - lastMs < PROGRESS_INTERVAL_MS) return;
    lastMs = now;
    const n = (v: number) => v.toLocaleString("en-US");
    o.write(
      `  ${p.table}: ${n(p.copied)} of ${n(p.total)} rows (${Math.floor((p.copied / p.total) * 100)}%)\n`,
    );
  };
}

function table(counts: readonly TableCount[]): string {
  const width = Math.max(...counts.map((c) => c.table.length), "table".length);
  const n = (v: number) => v.toLocaleString("en-US");
  const numbers = Math.max(10, ...counts.flatMap((c) => [n(c.sqlite).length, n(c.postgres).length]));
  const line = (a: string, b: string, c: string) =>
    `  ${a.padEnd(width)}  ${b.padStart(numbers)}  ${c.padStart(numbers)}`;
  return [
    line("table", "SQLite", "PostgreSQL"),
    ...counts.map((c) => line(c.table, n(c.sqlite), n(c.postgres))),
  ].join("\n");
}

export const migrateDataCommand = defineCommand({
  name: "migrate-data",
  summary: "Copy an SQLite installation (keys included) into PostgreSQL, with the counts checked",
  usage: "migrate-data --from DIR --to postgres://USER:PASSWORD@HOST:PORT/DATABASE [--replace]",
  description: [
    "Copies everything DIR/isched.db holds into a PostgreSQL database, for 'isched serve --database':",
    "messages (bodies byte for byte), deliveries and their attempts, replay and iTIP keys, your DKIM",
    "keys with their private keys and rotation state, peer policies and what was learnt about peers,",
    "settings (the console's password hash among them) and console sessions. Ids are kept. The copy",
    "is one transaction: it is all there or not at all. Then the rows of every table are counted on",
    "both sides and printed; a difference undoes the copy.",
    "",
    "Stop the isched that serves DIR first (the copy takes its data lock). An empty PostgreSQL",
    "database gets isched's schema; one that already holds isched's data is refused unless --replace.",
    "Both databases must have this isched's schema (start it once on an older data folder).",
    "The SQLite database is only read: DIR stays usable as it was.",
  ].join("\n"),
  flags: {
    from: flag.string({ help: "the data folder of the SQLite installation", placeholder: "DIR", env: false }),
    to: flag.string({ help: "the PostgreSQL database to copy into", placeholder: "URL", env: false }),
    replace: flag.bool({
      help: "empty isched's tables in the target first (its data is lost; refused while a node runs there)",
      env: false,
    }),
  },
  positionals: { min: 0, max: 0 },
  async run({ flags }) {
    if (flags.from === undefined) throw new UsageError("--from DIR is required (the data folder to copy)");
    if (flags.to === undefined)
      throw new UsageError("--to URL is required (postgres://USER:PASSWORD@HOST:PORT/DATABASE)");
    const url = targetUrl(flags.to);
    const shown = hidden(flags.to, url);
    const from = databasePathOf(flags.from);
    if (!existsSync(from))
      throw new CommandError(`no database at ${from} (give --from, isched's data folder)`);

    let t0 = performance.now();
    // Once both sides are checked, before the first row.
    const started = () => {
      process.stdout.write(`Copying ${from} to ${shown}\n`);
      t0 = performance.now();
    };
    const progress = progressLines({
      nowMs: () => performance.now(),
      write: (line) => process.stdout.write(line),
    });
    let report: CopyReport;
    try {
      report = await copyInstallation({
        databasePath: from,
        url: flags.to,
        replace: flags.replace,
        onProgress: progress,
        onStart: started,
        connectTimeoutS: CONNECT_TIMEOUT_S,
      });
    } catch (e) {
      if (e instanceof SourceInUseError)
        throw new CommandError(`refusing to copy ${flags.from}: ${e.message}; stop that isched first`);
      throw new CommandError(`cannot copy ${flags.from} to ${shown}: ${hidden(reason(e), url)}`);
    }
    const ms = Math.round(performance.now() - t0);
    const total = report.counts.reduce((n, c) => n + c.sqlite, 0);
    process.stdout.write(
      [
        ...(report.migrated ? ["Made isched's schema in the PostgreSQL database (it was empty)."] : []),
        `Copied ${total.toLocaleString("en-US")} rows in ${ms} ms. Rows on both sides:`,
        table(report.counts),
        `Every table holds the same number of rows on both sides. ${flags.from} is unchanged;`,
        "start isched with --database on the PostgreSQL database, and no longer on the data folder.",
        "",
      ].join("\n"),
    );
    return 0;
  },
});
