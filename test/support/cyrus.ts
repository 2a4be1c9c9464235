/**
 * Test fixture: Debian's real Cyrus IMAP 3.6.1 with CalDAV and iSchedule (packages cyrus-imapd,
 * cyrus-caldav, sasl2-bin), in a temporary folder of its own on free 127.0.0.1 ports, as the
 * local calendar server behind isched and as a remote peer. test/support/caldav.ts talks to it;
 * test/cyrus/cyrus-fixture.test.ts proves everything below against the real processes.
 *
 * How it runs
 * - `master -C imapd.conf -M cyrus.conf -p PIDFILE -D` (foreground), with services `imap` and
 *   `http` (prefork=0) on 127.0.0.1 and START `ctl_cyrusdb -r`; each cmd gets `-C` itself.
 *   Nothing in /etc or /var/lib/cyrus is read or written. The folder ($TMPDIR/isched-cyrus-*)
 *   holds imapd.conf, cyrus.conf, config/ (configdirectory), partition/, run/, sasldb2 and the
 *   syslog socket; it is removed by stop() unless ISCHED_KEEP_CYRUS=1.
 * - As root, cyrus_init() switches every Cyrus process to the user `cyrus` (become_cyrus(),
 *   "must run as the Cyrus user" if it cannot), so the folder is chown'ed to cyrus:mail. As
 *   another user Cyrus keeps that user and nothing is chown'ed.
 * - Cyrus does not create the subfolders of configdirectory (db, proc, socket, log, msg, user,
 *   quota, lock: Debian's makedirs does) nor the partition's `stage.`; the fixture does.
 * - master is started as a process-group leader: kill() SIGKILLs the whole group, because the
 *   httpd children hold the listening socket and would go on answering after master died.
 * - Start-up takes 0.3 to 0.6 s with two users (mailboxes and calendars included); start() after
 *   kill() about 0.15 s, data intact (ctl_cyrusdb -r recovers at every start).
 * - A failed start throws within a second or so with the reason, the log and both config files:
 *   master restarts a crashing service for ever, so "Fatal error" or "exited, status N" in the log
 *   during start-up ends the wait.
 *
 * Users
 * - SASL: sasldb (`saslpasswd2 -f FOLDER/sasldb2 -c -p -u SERVERNAME`): Cyrus asks for the realm
 *   `servername`, which is the first domain unless given. IMAP LOGIN and HTTP Basic work in plain
 *   text (allowplaintext: yes). A random admin `fixture-admin` (admins:) exists for provisioning.
 * - A user NAME is the IMAP mailbox `user.NAME` (unixhierarchysep: no, altnamespace: no), made by
 *   an IMAP CREATE as the admin. An authenticated GET of /dav/calendars/user/NAME/ (204) then
 *   makes the calendars: mailboxes user.NAME.#calendars.{Default,Inbox,Outbox,Attachments}, in
 *   CalDAV /dav/calendars/user/NAME/{Default,Inbox,Outbox}/. Their ACLs: Default `NAME
 *   lrswipkxtecdan9 anyone 9` (anyone may read free/busy), Inbox `anyone 789`.
 * - mailto:NAME@D is user NAME for every D in calendar_user_address_set (all `domains`); a user's
 *   own address, as organiser, is NAME@servername.
 *
 * Logging
 * - Cyrus logs only through syslog(3), i.e. to /dev/log, which this machine does not have. master
 *   runs inside `unshare --mount` where /dev is a small tmpfs with the usual device nodes
 *   bind-mounted from the real /dev and the fixture's Unix socket bind-mounted as /dev/log (the
 *   host's /dev is not touched, and every instance has its own log). glibc finds a stream socket
 *   there and sends NUL-terminated messages. Without root or unshare, log() has only master's
 *   stdout/stderr (near empty).
 * - log() lines look like `Nov 25 16:19:37 notice cyrus/http[27005]: CalDAV scheduling delivery to
 *   mailto:cyrus@example.com`; every HTTP request is one info line `localhost [127.0.0.1] as "USER"
 *   with "UA" via SESSIONID=<...>; "POST /ischedule HTTP/1.1" => "HTTP/1.1 200 OK" [timing: ...]`;
 *   logins are notice lines `login: localhost [127.0.0.1] NAME Basic User logged in`. `debug: true`
 *   adds caladdress_lookup, sched_deliver_local and busytime_query_local lines (and much else).
 *
 * iSchedule receiver (httpmodules: caldav ischedule domainkey freebusy)
 * - GET /ischedule?action=capabilities: 200 application/xml, `iSchedule-Version: 1.0`. GET
 *   /.well-known/ischedule: 301 to http://127.0.0.1:PORT/ischedule (absolute); /.well-known/caldav:
 *   301 to http://127.0.0.1:PORT/dav/calendars.
 * - Unsigned POSTs need `ischedule_dkim_required: no`; with the default (yes) Cyrus answers 403
 *   application/xml `<error xmlns="urn:ietf:params:xml:ns:ischedule"><verification-failed/>
 *   <response-description>No signature</response-description></error>`.
 * - Every scheduling POST is handled synchronously (about 15 ms): 200 `application/xml;
 *   charset=utf-8`, `<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule">` with one
 *   `<response><recipient>mailto:X</recipient><request-status>...</request-status></response>`
 *   per Recipient (comma-separated in one header), in order. Status strings: "2.0;Success" for a
 *   local user; "3.7;Invalid calendar user" for an unknown user of a local domain and for any
 *   address outside calendar_user_address_set (no relaying). 1.2 was never seen.
 * - REQUEST: the event is readable as soon as the POST has answered, in the Default calendar as
 *   `<UID>.ics` (UID verbatim, `@` included; METHOD removed, otherwise as sent), and the iTIP
 *   message itself (with METHOD) lands in the Inbox under a random name.
 * - REPLY from a remote attendee: the organiser's copy gets the attendee's PARTSTAT, plus the
 *   parameters X-DTSTAMP and X-SEQUENCE from the reply; its SCHEDULE-STATUS goes away.
 * - VFREEBUSY REQUEST: "2.0;Success" and `<calendar-data content-type="text/calendar"
 *   version="2.0"><![CDATA[...]]>` holding METHOD:REPLY and a VFREEBUSY echoing DTSTART, DTEND,
 *   UID, ORGANIZER and ATTENDEE, but with NO FREEBUSY lines, busy or not (Cyrus 3.6.1 finds no
 *   calendars for a query that came in on /ischedule, even authenticated; the same query through
 *   a CalDAV Outbox POST does show the busy time, but there ORGANIZER must be the authenticated
 *   user: 403 `C:valid-organizer` "ORGANIZER is not you"). What does show the busy time: GET
 *   /freebusy/user/NAME?start=ISO&end=ISO without credentials (module `freebusy`; without start
 *   and end: today to six weeks on), or a CalDAV free-busy-query REPORT on
 *   /dav/calendars/user/NAME/Default/ as any user (301 to that user's view
 *   /dav/calendars/user/ME/NAME.Default/ first).
 * - CANCEL: "2.0;Success" and the CANCEL lands in the Inbox, but the calendar copy is stored again
 *   unchanged (new IMAP UID and Schedule-Tag, same text): no STATUS:CANCELLED, no deletion.
 * - Answers are compressed when the client offers it (zstd with Bun's fetch; Cyrus also has br,
 *   gzip, deflate), and
 *   every HTTP/1.1 answer carries `Connection: Upgrade`, `Upgrade: h2c` and `Alt-Svc: h2c=":PORT"`.
 *
 * iMIP out (smtp_backend: host, smtp_host: HOST:PORT, no SMTP AUTH, no STARTTLS needed)
 * - Cyrus never sends iSchedule to another domain (its iSchedule sender has no DNS discovery), so
 *   there is nothing to configure for that: every non-local attendee gets iMIP, sent during the
 *   CalDAV PUT that caused it (the PUT returns after the SMTP transaction).
 * - A PUT as organiser with a remote attendee sends a REQUEST and leaves SCHEDULE-STATUS=1.1 on
 *   that attendee in the organiser's copy; the mail says SEQUENCE:1 while the stored copy keeps
 *   SEQUENCE:0. A PUT that sets PARTSTAT=ACCEPTED on a copy whose organiser is remote sends a
 *   REPLY (only the replying ATTENDEE, its PARTSTAT and RSVP) to the organiser.
 * - Envelope: MAIL FROM:<the user's address> without parameters; one RCPT TO per recipient with
 *   NOTIFY=FAILURE,DELAY (when the server offers DSN).
 * - Headers: From: `CN <address>` of the organiser or attendee (`From:  <cyrus@example.com>`, two
 *   spaces, without CN), To: `CN <address>`, Subject `Invitation: SUMMARY` / `RSVP: SUMMARY`,
 *   Message-ID <cyrus-caldav-PID-TIME-N@servername>, Content-Type multipart/mixed,
 *   iMIP-Content-ID <UID@servername>, Auto-Submitted: auto-generated, MIME-Version 1.0.
 * - Body: multipart/mixed { multipart/alternative { text/plain, text/html, `text/calendar;
 *   charset=utf-8; method=REQUEST; component=VEVENT ` (note the trailing space; Content-ID
 *   <UID@servername>; no Content-Transfer-Encoding for ASCII text) }, application/ics; name="Invitation.ics"
 *   (REPLY: "RSVP.ics"), attachment, base64 }.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { abandonedAtExit } from "./abandon-at-exit.ts";

export const CYRUS_BIN = "/usr/lib/cyrus/bin";
export const SASLPASSWD2 = "/usr/sbin/saslpasswd2";

export interface CyrusUser {
  /** The login and the local part of the user's calendar addresses (mailbox `user.NAME`). */
  name: string;
  password: string;
}

export interface CyrusOptions {
  /** Domains Cyrus treats as local calendar users (`calendar_user_address_set`); the first is `servername`. */
  domains: string[];
  /** Each gets a SASL password, a mailbox `user.NAME` and its calendars (`mailto:NAME@<any domain>`). */
  users: CyrusUser[];
  /** Where Cyrus sends iMIP (`smtp_backend: host`, `smtp_host`); without it iMIP goes to /usr/sbin/sendmail. */
  smtpHost?: { host: string; port: number };
  /** `servername` (also the SASL realm); default the first domain. */
  servername?: string;
  /** `debug: yes`: Cyrus also logs at LOG_DEBUG (scheduling address lookups and more). */
  debug?: boolean;
  /** Extra imapd.conf settings; they override the fixture's. */
  imapdConf?: Record<string, string>;
}

export interface StopOptions {
  /** Keep the data folder so that start() can bring the same server up again. */
  keepData?: boolean;
}

export interface RunningCyrus {
  /** http://127.0.0.1:PORT (CalDAV under /dav/, iSchedule under /ischedule). */
  readonly httpUrl: string;
  /** The URL that accepts iSchedule POSTs (http://127.0.0.1:PORT/ischedule). */
  readonly ischeduleUrl: string;
  readonly imapPort: number;
  /** The temporary folder holding imapd.conf, cyrus.conf, the databases, the mail spool and sockets. */
  readonly configDir: string;
  readonly servername: string;
  readonly domains: readonly string[];
  /** What Cyrus logged (its syslog, caught on /dev/log, plus master's stdout/stderr). */
  log(): string;
  /** Adds a user while running: SASL password, mailbox and calendars. */
  addUser(user: CyrusUser): Promise<void>;
  /** SIGTERM, SIGKILL after a grace period; then removes the folder unless `keepData` (or ISCHED_KEEP_CYRUS=1). */
  stop(options?: StopOptions): Promise<void>;
  /** SIGKILL to master and all its children at once (a crashed server); the data stays. */
  kill(): Promise<void>;
  /** Starts the same server again, with the same data and ports, after kill() or stop({ keepData: true }). */
  start(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5000;
const PORT_ATTEMPTS = 4;
const ADMIN = "fixture-admin";
const USER_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const KEEP = process.env.ISCHED_KEEP_CYRUS === "1";

// A test that fails before stop() must not leave Cyrus processes or folders behind: master runs
// in a process group of its own, so nothing else would stop it.
const live = abandonedAtExit<CyrusServer>();

export async function startCyrus(o: CyrusOptions): Promise<RunningCyrus> {
  checkOptions(o);
  let lastError: Error | undefined;
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const httpPort = await freePort();
    let imapPort = await freePort();
    while (imapPort === httpPort) imapPort = await freePort();
    const server = new CyrusServer(o, httpPort, imapPort);
    try {
      await server.setUp();
      return server;
    } catch (e) {
      lastError = e instanceof Error ? e : new Error(String(e));
      await server.stop();
      // Another process may have taken a port between our probe and master's bind.
      if (!lastError.message.includes("Address already in use")) throw lastError;
    }
  }
  throw lastError ?? new Error("Cyrus did not start");
}

function checkOptions(o: CyrusOptions): void {
  if (o.domains.length === 0) throw new Error("startCyrus: at least one domain is needed");
  for (const d of o.domains) {
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(d)) throw new Error(`startCyrus: "${d}" is not a domain`);
  }
  for (const u of o.users) checkUser(u);
}

function checkUser(u: CyrusUser): void {
  // `.` is the hierarchy separator (unixhierarchysep: no), so it cannot be in a user name.
  if (!USER_NAME.test(u.name) || u.name === ADMIN) {
    throw new Error(`startCyrus: user name "${u.name}" must match ${USER_NAME} and not be ${ADMIN}`);
  }
  if (/[\r\n\0]/.test(u.password) || u.password === "") {
    throw new Error(`startCyrus: the password of ${u.name} must be one non-empty line`);
  }
}

class CyrusServer implements RunningCyrus {
  readonly httpUrl: string;
  readonly ischeduleUrl: string;
  readonly configDir: string;
  readonly servername: string;
  readonly domains: readonly string[];
  private readonly imapdConf: string;
  private readonly cyrusConf: string;
  private readonly adminPassword = randomBytes(12).toString("hex");
  private readonly syslog: SyslogListener;
  private readonly useNamespace: boolean;
  private readonly asRoot = process.getuid?.() === 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exit: string | undefined;
  private output = "";
  private removed = false;

  constructor(
    private readonly o: CyrusOptions,
    private readonly httpPort: number,
    readonly imapPort: number,
  ) {
    this.servername = o.servername ?? o.domains[0]!;
    this.domains = [...o.domains];
    this.httpUrl = `http://127.0.0.1:${httpPort}`;
    this.ischeduleUrl = `${this.httpUrl}/ischedule`;
    this.configDir = mkdtempSync(join(tmpdir(), "isched-cyrus-"));
    live.add(this);
    this.imapdConf = join(this.configDir, "imapd.conf");
    this.cyrusConf = join(this.configDir, "cyrus.conf");
    this.syslog = new SyslogListener(join(this.configDir, "syslog.sock"));
    this.useNamespace = this.asRoot && canUnshareMounts();
  }

  log(): string {
    const notes = this.useNamespace
      ? ""
      : "(Cyrus's syslog was not caught: that needs root and `unshare -m`; only master's output follows)\n";
    const master = this.output === "" ? "" : `--- master stdout/stderr ---\n${this.output}`;
    return `${notes}${this.syslog.text()}${master}`;
  }

  async setUp(): Promise<void> {
    this.writeFiles();
    await this.syslog.listen();
    for (const u of this.o.users) this.setPassword(u);
    this.setPassword({ name: ADMIN, password: this.adminPassword });
    if (this.asRoot) chownToCyrus(this.configDir);
    await this.start();
    for (const u of this.o.users) await this.provision(u);
  }

  async addUser(user: CyrusUser): Promise<void> {
    checkUser(user);
    this.setPassword(user);
    if (this.asRoot) chownToCyrus(join(this.configDir, "sasldb2"));
    await this.provision(user);
  }

  async start(): Promise<void> {
    if (this.removed) throw new Error("Cyrus: start() after stop() without keepData: the data is gone");
    if (this.child !== undefined && this.exit === undefined) return;
    this.exit = undefined;
    const master = [
      join(CYRUS_BIN, "master"),
      "-C",
      this.imapdConf,
      "-M",
      this.cyrusConf,
      "-p",
      join(this.configDir, "run", "master.pid"),
      "-D",
    ];
    const [cmd, ...args] = this.useNamespace
      ? [
          "unshare",
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          NAMESPACE_SCRIPT,
          "sh",
          this.configDir,
          ...master,
        ]
      : master;
    // detached: master leads a process group, so kill() reaches its children too; they keep the
    // listening sockets open and would go on answering if only master died.
    const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        this.output += chunk;
      });
    }
    this.exited = new Promise<void>((resolve) => {
      const done = (why: string): void => {
        this.exit ??= why;
        resolve();
      };
      child.on("error", (e) => done(`could not run ${cmd}: ${e.message}`));
      child.on("exit", (code, signal) => done(signal !== null ? `killed by ${signal}` : `exit code ${code}`));
    });
    try {
      await this.waitUntilUp();
    } catch (e) {
      await this.kill();
      throw e;
    }
  }

  async stop(options: StopOptions = {}): Promise<void> {
    const child = this.child;
    if (child !== undefined && this.exit === undefined) {
      killGroup(child, "SIGTERM");
      const killer = setTimeout(() => killGroup(child, "SIGKILL"), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(killer);
    }
    // Children that outlive master (a connection still open) must not keep the port.
    if (child !== undefined) killGroup(child, "SIGKILL");
    if (options.keepData) return;
    await this.syslog.close();
    if (!KEEP && !this.removed) rmSync(this.configDir, { recursive: true, force: true });
    live.delete(this);
    this.removed = true;
  }

  /** At process exit, synchronously: no waiting for anything. */
  abandon(): void {
    if (this.child !== undefined) killGroup(this.child, "SIGKILL");
    if (!KEEP) rmSync(this.configDir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    // Also when master is gone: its children may still be running in its process group.
    killGroup(child, "SIGKILL");
    await this.exited;
    // Children in the group die with the same signal, but not necessarily before master is reaped.
    const deadline = Date.now() + STOP_GRACE_MS;
    while ((await canConnect(this.httpPort)) && Date.now() < deadline) await sleep(20);
  }

  private writeFiles(): void {
    const dir = this.configDir;
    const config = join(dir, "config");
    // What Debian's makedirs creates; Cyrus itself does not create them.
    for (const sub of ["db", "proc", "socket", "log", "msg", "user", "quota", "lock", "sieve"]) {
      mkdirSync(join(config, sub), { recursive: true });
    }
    mkdirSync(join(dir, "partition", "stage."), { recursive: true });
    mkdirSync(join(dir, "run"));
    mkdirSync(join(dir, "hostdev"));
    const settings: Record<string, string> = {
      configdirectory: config,
      defaultpartition: "default",
      "partition-default": join(dir, "partition"),
      sievedir: join(config, "sieve"),
      servername: this.servername,
      admins: ADMIN,
      allowplaintext: "yes",
      sasl_pwcheck_method: "auxprop",
      sasl_auxprop_plugin: "sasldb",
      sasl_sasldb_path: join(dir, "sasldb2"),
      sasl_mech_list: "PLAIN LOGIN",
      unixhierarchysep: "no",
      altnamespace: "no",
      httpmodules: "caldav ischedule domainkey freebusy",
      ischedule_dkim_required: "no",
      calendar_user_address_set: this.domains.join(" "),
      caldav_allowscheduling: "on",
      ...(this.o.smtpHost
        ? { smtp_backend: "host", smtp_host: `${this.o.smtpHost.host}:${this.o.smtpHost.port}` }
        : {}),
      ...(this.o.debug ? { debug: "yes" } : {}),
      ...this.o.imapdConf,
    };
    writeFileSync(
      this.imapdConf,
      Object.entries(settings)
        .map(([k, v]) => `${k}: ${v}\n`)
        .join(""),
    );
    const c = `-C ${this.imapdConf}`;
    writeFileSync(
      this.cyrusConf,
      [
        "START {",
        `  recover cmd="ctl_cyrusdb ${c} -r"`,
        "}",
        "SERVICES {",
        `  imap cmd="imapd ${c}" listen="127.0.0.1:${this.imapPort}" prefork=0`,
        `  http cmd="httpd ${c}" listen="127.0.0.1:${this.httpPort}" prefork=0`,
        "}",
        "EVENTS {",
        "}",
        "",
      ].join("\n"),
    );
  }

  private setPassword(u: CyrusUser): void {
    // The SASL realm Cyrus asks sasldb for is its servername.
    const args = ["-f", join(this.configDir, "sasldb2"), "-c", "-p", "-u", this.servername, u.name];
    const r = spawnSync(SASLPASSWD2, args, { input: u.password, encoding: "utf8" });
    if (r.error !== undefined || r.status !== 0) {
      const why = r.error?.message ?? r.stderr;
      throw new Error(`${SASLPASSWD2} ${args.join(" ")} failed: ${why} (install sasl2-bin)`);
    }
  }

  private async waitUntilUp(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    const logStart = this.syslog.size();
    let last = "";
    for (;;) {
      if (this.exit !== undefined) {
        await sleep(100); // let the last log lines arrive
        throw this.failure(`master ended (${this.exit})`);
      }
      const logged = this.syslog.since(logStart);
      if (/Address already in use/.test(logged))
        throw this.failure("a port is taken: Address already in use");
      // master restarts a crashing service for ever; a service that dies while starting will not recover.
      const fatal = /Fatal error.*|exited, status [1-9]\d*|exited, signaled/.exec(logged);
      if (fatal) throw this.failure(`a Cyrus process failed: ${fatal[0]}`);
      try {
        const res = await fetch(`${this.ischeduleUrl}?action=capabilities`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        if (res.status === 200 && res.headers.has("ischedule-version") && (await canConnect(this.imapPort))) {
          return;
        }
        last = `HTTP ${res.status}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      if (Date.now() > deadline) throw this.failure(`no answer in ${START_TIMEOUT_MS} ms (${last})`);
      await sleep(50);
    }
  }

  /** Creates the user's INBOX over IMAP as admin, then has httpd create the calendars. */
  private async provision(u: CyrusUser): Promise<void> {
    await imapSession(this.imapPort, [
      `LOGIN ${ADMIN} ${imapQuote(this.adminPassword)}`,
      `CREATE user.${u.name}`,
    ]).catch((e: unknown) => {
      throw this.failure(`creating mailbox user.${u.name}: ${e instanceof Error ? e.message : String(e)}`);
    });
    const res = await fetch(`${this.httpUrl}/dav/calendars/user/${u.name}/`, {
      headers: { Authorization: basicAuth(u.name, u.password) },
    });
    const body = await res.text();
    if (res.status >= 300) {
      throw this.failure(`provisioning calendars of ${u.name}: HTTP ${res.status} ${body}`);
    }
  }

  private failure(what: string): Error {
    const files = [this.imapdConf, this.cyrusConf]
      .filter((f) => existsSync(f))
      .map((f) => `--- ${f} ---\n${readFileSync(f, "utf8")}`)
      .join("");
    return new Error(`Cyrus: ${what}\n--- log ---\n${this.log()}${files}`);
  }
}

/**
 * Run inside a private mount namespace: /dev becomes a small tmpfs holding the usual device nodes
 * (bind-mounted from the real /dev) and, as /dev/log, the fixture's syslog socket. glibc's
 * syslog() only ever writes to /dev/log, and Cyrus has no other way to log; the host's /dev is
 * never touched.
 */
const NAMESPACE_SCRIPT = `set -e
d=$1; shift
mount --bind /dev "$d/hostdev"
mount -t tmpfs -o mode=755,size=1m tmpfs /dev
for f in null zero full random urandom tty; do
  [ -e "$d/hostdev/$f" ] || continue
  touch "/dev/$f"; mount --bind "$d/hostdev/$f" "/dev/$f"
done
if [ -d "$d/hostdev/shm" ]; then mkdir /dev/shm; mount --bind "$d/hostdev/shm" /dev/shm; fi
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
touch /dev/log; mount --bind "$d/syslog.sock" /dev/log
umount -l "$d/hostdev"
exec "$@"
`;

let unshareWorks: boolean | undefined;
function canUnshareMounts(): boolean {
  unshareWorks ??= spawnSync("unshare", ["--mount", "true"]).status === 0;
  return unshareWorks;
}

/** As root Cyrus switches to the user `cyrus` (cyrus_init: "must run as the Cyrus user"), which must own its files. */
function chownToCyrus(path: string): void {
  const r = spawnSync("chown", ["-R", "cyrus:mail", path], { encoding: "utf8" });
  if (r.status !== 0)
    throw new Error(`chown -R cyrus:mail ${path} failed: ${r.stderr} (is cyrus-common installed?)`);
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

const SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

/**
 * A syslog receiver on a Unix stream socket. glibc's syslog() first tries a datagram socket, gets
 * EPROTOTYPE from a stream socket and falls back to stream, ending each message with a NUL.
 */
class SyslogListener {
  private readonly lines: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    let pending = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      pending += chunk;
      const parts = pending.split(/\0|\n/);
      pending = parts.pop() ?? "";
      for (const p of parts) if (p !== "") this.lines.push(format(p));
    });
    socket.on("error", () => {});
  });

  constructor(readonly path: string) {}

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.path, () => {
        // Cyrus runs as the user cyrus and must be able to connect.
        chmodSync(this.path, 0o666);
        resolve();
      });
    });
  }

  text(): string {
    return this.since(0);
  }

  /** The number of lines so far, for since(). */
  size(): number {
    return this.lines.length;
  }

  since(line: number): string {
    return this.lines
      .slice(line)
      .map((l) => `${l}\n`)
      .join("");
  }

  close(): Promise<void> {
    // server.close() waits for open connections; Cyrus processes keep theirs until they end.
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
  }
}

/** "<21>Nov 25 16:19:26 cyrus/http[26683]: text" -> "Nov 25 16:19:26 notice cyrus/http[26683]: text" */
function format(raw: string): string {
  const m = /^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$/s.exec(raw);
  if (!m) return raw;
  return `${m[2]} ${SEVERITIES[Number(m[1]) & 7]} ${m[3]}`;
}

/** Runs tagged IMAP commands one after another; any answer but OK is an error. */
async function imapSession(port: number, commands: string[]): Promise<void> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setEncoding("utf8");
  let buffer = "";
  const waiters: (() => void)[] = [];
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<never>((_, reject) => {
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`connection closed; got: ${buffer}`)));
  });
  closed.catch(() => {});
  const readUntil = async (re: RegExp): Promise<string> => {
    for (;;) {
      const m = re.exec(buffer);
      if (m) {
        const upTo = m.index + m[0].length;
        const text = buffer.slice(0, upTo);
        buffer = buffer.slice(upTo);
        return text;
      }
      await Promise.race([new Promise<void>((r) => waiters.push(r)), closed]);
    }
  };
  try {
    const greeting = await readUntil(/\r\n/);
    if (!greeting.startsWith("* OK")) throw new Error(`IMAP greeting: ${greeting}`);
    const all = [...commands, "LOGOUT"];
    for (const [i, command] of all.entries()) {
      const tag = `f${i}`;
      socket.write(`${tag} ${command}\r\n`);
      const answer = await readUntil(new RegExp(`^${tag} .*\\r\\n`, "m"));
      const status = answer.slice(answer.lastIndexOf(`${tag} `));
      if (!status.startsWith(`${tag} OK`)) {
        throw new Error(`IMAP ${command.startsWith("LOGIN") ? "LOGIN" : command}: ${status.trim()}`);
      }
    }
  } finally {
    socket.destroy();
  }
}

function imapQuote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
