/**
 * Test fixture: Debian's real PostgreSQL 15 (package postgresql-15, binaries in
 * /usr/lib/postgresql/15/bin) in a temporary folder of its own, on a free 127.0.0.1 port, with a
 * password role and a database for isched, so store code is tested against a real server over real
 * sockets. test/postgres/postgres-fixture.test.ts proves what follows against the real processes.
 *
 * How it runs
 * - `initdb` then `pg_ctl start -w`, as the user `postgres` when the tests run as root (initdb and
 *   postgres refuse to run as root; `runuser -u postgres`, and the folder is chown'ed to it), as the
 *   current user otherwise. The postgres user comes with Debian's postgresql-common.
 * - Nothing in /etc/postgresql or /var/lib/postgresql is read or written, and Debian's own cluster
 *   (if any) is left alone: the folder ($TMPDIR/isched-postgres-*) holds data/ (the cluster),
 *   postgres.log, and the Unix socket (unix_socket_directories points there, so /var/run/postgresql
 *   need not exist). stop() removes it unless `keepData` or ISCHED_KEEP_POSTGRES=1.
 * - Authentication as a server set up by hand would have it: over TCP, scram-sha-256 for every role
 *   (the drivers under test must do SCRAM); over the folder's Unix socket, trust (the fixture's own
 *   administration with psql, as the superuser `postgres`).
 * - The server keeps PostgreSQL's defaults (fsync, synchronous_commit on, full_page_writes), so a
 *   benchmark over it measures real commits; only initdb's final sync is skipped (-N). `settings`
 *   adds `-c NAME=VALUE` options (a test that wants speed over durability can pass fsync: "off").
 * - pg_ctl starts postgres in a session of its own, so it would outlive the test process: an exit
 *   hook shuts it down immediately (SIGQUIT to the postmaster) and removes the folder.
 *
 * Outages
 * - stop({ keepData: true }) is a clean shutdown (`pg_ctl stop -m fast`: open sessions are ended,
 *   clients see their connection closed); kill() is `pg_ctl stop -m immediate`, a crash (no
 *   checkpoint; the next start replays the WAL). start() brings the same cluster back on the same
 *   port; committed data survives both.
 * - terminateConnections() ends every client session (pg_terminate_backend) while the server stays
 *   up: a dropped connection without an outage.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { abandonedAtExit } from "./abandon-at-exit.ts";
import { freePort } from "./ports.ts";

export const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";

export interface PostgresOptions {
  /** The role isched connects as (LOGIN, password, owner of `database`). Default "isched". */
  user?: string;
  /** Default "isched". */
  database?: string;
  /** Extra server settings, each passed as `-c NAME=VALUE`. */
  settings?: Record<string, string>;
}

export interface StopOptions {
  /** Keep the folder so that start() can bring the same cluster up again. */
  keepData?: boolean;
}

export interface RunningPostgres {
  /** postgres://USER:PASSWORD@127.0.0.1:PORT/DATABASE, for the role and database the fixture made. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The temporary folder (data/, postgres.log, the Unix socket). */
  readonly dir: string;
  /** The URL of another database on the same server, owned by the same role. */
  urlFor(database: string): string;
  /** A fresh, empty database owned by the fixture's role; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL as the superuser with psql; returns psql's unaligned, tuples-only output. */
  admin(sql: string, database?: string): Promise<string>;
  /** Ends every client session (not the fixture's own); returns how many were ended. */
  terminateConnections(): Promise<number>;
  /** What the server logged (postgres.log). */
  log(): string;
  /** Whether the server accepts connections now (pg_isready). */
  isReady(): boolean;
  /** Clean shutdown (`-m fast`), then removes the folder unless `keepData` (or ISCHED_KEEP_POSTGRES=1). */
  stop(options?: StopOptions): Promise<void>;
  /** An immediate shutdown, as a crash would leave it: no checkpoint, the data stays. */
  kill(): Promise<void>;
  /** Starts the same cluster again, same port and data, after kill() or stop({ keepData: true }). */
  start(): Promise<void>;
}

const PORT_ATTEMPTS = 4;
const START_TIMEOUT_S = 30;
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const KEEP = process.env.ISCHED_KEEP_POSTGRES === "1";

// A test that fails before stop() must not leave a server (in a session of its own) or its folder
// behind.
const live = abandonedAtExit<PostgresServer>();

export async function startPostgres(o: PostgresOptions = {}): Promise<RunningPostgres> {
  const user = o.user ?? "isched";
  const database = o.database ?? "isched";
  for (const [what, name] of [
    ["user", user],
    ["database", database],
  ] as const) {
    if (!IDENTIFIER.test(name)) throw new Error(`startPostgres: ${what} "${name}" must match ${IDENTIFIER}`);
  }
  if (!existsSync(join(POSTGRES_BIN, "postgres")))
    throw new Error(`startPostgres: ${POSTGRES_BIN}/postgres is missing (install postgresql-15)`);
  let lastError: Error | undefined;
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const server = new PostgresServer({ user, database, settings: o.settings ?? {} }, await freePort());
    try {
      await server.setUp();
      return server;
    } catch (e) {
      lastError = e instanceof Error ? e : new Error(String(e));
      await server.stop();
      // Another process may have taken the port between our probe and the postmaster's bind.
      if (!/could not bind|Address already in use/.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error("PostgreSQL did not start");
}

class PostgresServer implements RunningPostgres {
  readonly host = "127.0.0.1";
  readonly password = randomBytes(16).toString("hex");
  readonly dir: string;
  readonly url: string;
  readonly user: string;
  readonly database: string;
  private readonly data: string;
  private readonly logFile: string;
  private readonly asRoot = process.getuid?.() === 0;
  private removed = false;

  constructor(
    private readonly o: Required<PostgresOptions>,
    readonly port: number,
  ) {
    this.user = o.user;
    this.database = o.database;
    this.dir = mkdtempSync(join(tmpdir(), "isched-postgres-"));
    live.add(this);
    this.data = join(this.dir, "data");
    this.logFile = join(this.dir, "postgres.log");
    this.url = this.urlFor(o.database);
  }

  urlFor(database: string): string {
    return `postgres://${this.user}:${this.password}@${this.host}:${this.port}/${database}`;
  }

  async setUp(): Promise<void> {
    // The superuser's password is never used (the socket trusts it), but TCP logins need one to exist.
    const pwfile = join(this.dir, "superuser-password");
    writeFileSync(pwfile, `${randomBytes(16).toString("hex")}\n`, { mode: 0o600 });
    writeFileSync(this.logFile, "", { mode: 0o600 });
    if (this.asRoot) {
      chmodSync(this.dir, 0o700);
      chown(this.dir);
      chown(pwfile);
      chown(this.logFile);
    }
    await this.run("initdb", [
      "-D",
      this.data,
      "-U",
      "postgres",
      `--pwfile=${pwfile}`,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C.UTF-8",
      "--no-sync",
    ]);
    rmSync(pwfile);
    await this.start();
    await this.admin(`CREATE ROLE ${this.user} LOGIN PASSWORD '${this.password}'`);
    await this.createDatabase(this.database);
  }

  async createDatabase(name: string): Promise<string> {
    if (!IDENTIFIER.test(name)) throw new Error(`createDatabase: "${name}" must match ${IDENTIFIER}`);
    await this.admin(`CREATE DATABASE ${name} OWNER ${this.user} TEMPLATE template0 ENCODING 'UTF8'`);
    return this.urlFor(name);
  }

  async admin(sql: string, database = "postgres"): Promise<string> {
    const r = await this.run("psql", [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      this.dir,
      "-p",
      String(this.port),
      "-U",
      "postgres",
      "-d",
      database,
      "-c",
      sql,
    ]);
    return r.trim();
  }

  async terminateConnections(): Promise<number> {
    const n = await this.admin(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    return Number(n);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  isReady(): boolean {
    const r = spawnSync(join(POSTGRES_BIN, "pg_isready"), ["-q", "-h", this.host, "-p", String(this.port)]);
    return r.status === 0;
  }

  async start(): Promise<void> {
    if (this.removed) throw new Error("PostgreSQL: start() after stop() without keepData: the data is gone");
    if (this.running()) return;
    const options = [
      "-c listen_addresses=127.0.0.1",
      `-p ${this.port}`,
      `-c unix_socket_directories=${this.dir}`,
      ...Object.entries(this.o.settings).map(([k, v]) => `-c ${k}=${v}`),
    ].join(" ");
    try {
      await this.run("pg_ctl", [
        "start",
        "-D",
        this.data,
        "-l",
        this.logFile,
        "-w",
        "-t",
        String(START_TIMEOUT_S),
        "-o",
        options,
      ]);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- postgres.log ---\n${this.log()}`);
    }
  }

  async stop(options: StopOptions = {}): Promise<void> {
    if (this.running()) await this.run("pg_ctl", ["stop", "-D", this.data, "-m", "fast", "-w"]);
    if (options.keepData) return;
    if (!KEEP && !this.removed) rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
    this.removed = true;
  }

  async kill(): Promise<void> {
    if (this.running()) await this.run("pg_ctl", ["stop", "-D", this.data, "-m", "immediate", "-w"]);
  }

  /** At process exit, synchronously: an immediate shutdown, then the folder goes. */
  abandon(): void {
    const pid = this.postmasterPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGQUIT");
      } catch {
        // Gone already.
      }
      // The postmaster waits for its children; the folder must outlive none of them.
      const deadline = Date.now() + 5000;
      while (alive(pid) && Date.now() < deadline) spawnSync("sleep", ["0.02"]);
    }
    if (!KEEP) rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  private running(): boolean {
    const pid = this.postmasterPid();
    return pid !== undefined && alive(pid);
  }

  private postmasterPid(): number | undefined {
    try {
      const first = readFileSync(join(this.data, "postmaster.pid"), "utf8").split("\n")[0];
      const pid = Number(first);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Runs one of PostgreSQL's programs as the server's user; resolves with stdout, rejects with
   * stderr. Asynchronous, so that a server in the test process goes on running meanwhile (an
   * outage test stops the database under it).
   */
  private run(program: string, args: string[]): Promise<string> {
    const bin = join(POSTGRES_BIN, program);
    const [cmd, ...rest] = this.asRoot ? ["runuser", "-u", "postgres", "--", bin, ...args] : [bin, ...args];
    return new Promise((resolve, reject) => {
      execFile(
        cmd!,
        rest,
        { encoding: "utf8", cwd: this.dir, timeout: (START_TIMEOUT_S + 10) * 1000 },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          const output = [stderr.trim(), stdout.trim()].filter((t) => t !== "").join("\n");
          reject(
            new Error(`${program} ${args.join(" ")} failed (${error.message.split("\n")[0]}): ${output}`),
          );
        },
      );
    });
  }
}

function chown(path: string): void {
  const r = spawnSync("chown", ["postgres:postgres", path], { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`chown postgres ${path} failed: ${r.stderr.trim()} (is postgresql-common installed?)`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
