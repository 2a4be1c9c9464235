/**
 * Test fixture: Debian's real dnsmasq (package dnsmasq-base) serving a declared zone on 127.0.0.1
 * and a free port, over UDP and TCP, so DNS code is tested against a real server and real sockets.
 *
 * What dnsmasq 2.90 does, found by trying it (see also dnsmasq(8)):
 * - On the command line `--txt-record` takes quotes and backslashes literally, starts a new string
 *   at every `,` and drops a string's leading whitespace. Only in a conf file do `"..."` group a
 *   string (commas and spaces kept) with the escapes `\\ \" \t \n \r \e \b`. So TXT records go into
 *   a generated conf file as quoted strings; quotes, `;`, `=`, `+`, `/`, `#`, commas, spaces, empty
 *   strings and non-ASCII (UTF-8 encoded) come out byte for byte. Other control characters are
 *   dropped there, and conf lines over 1024 bytes make dnsmasq fail ('missing "'), so a record with
 *   either is sent as `--dns-rr=NAME,16,HEX` instead; but dnsmasq does not count `--dns-rr` names as
 *   existing, so other types at such a name are NXDOMAIN, not NODATA. dnsmasq splits strings over 255 bytes at 255; this fixture refuses them instead, because a
 *   test must say where a record's strings begin and end.
 * - Without `soa`, names are served from `--local` zones: an unknown name in a zone is NXDOMAIN, a
 *   known name (or the zone apex) with no record of the asked type is NOERROR and empty (NODATA),
 *   and neither carries an SOA, so clients fall back to their default negative TTL. `--neg-ttl` only
 *   affects dnsmasq's cache of upstream answers and adds no SOA. A name outside every zone is REFUSED.
 * - With `soa: true` dnsmasq is authoritative for the zones on 127.0.0.1 (`--auth-server`,
 *   `--auth-zone`): answers have the AA bit and an NS record, negative answers carry the zone's SOA
 *   whose TTL and MINIMUM both equal `ttl` (`--auth-ttl`; dnsmasq cannot set them apart). A/AAAA
 *   records are only served for addresses inside the auth-zone subnets, so every host address is
 *   added as a /32 or /128 subnet.
 * - The TTL of all local data is `--local-ttl` (default 0) or, with `soa`, `--auth-ttl`.
 * - `--srv-host=NAME,.,PORT` (or an empty target) gives the root target "." of RFC 2782.
 * - Answers over 512 bytes are sent over UDP with the TC bit; the full answer comes over TCP.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as dgram from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createResolver } from "../../src/dns/client.ts";
import { isDomainName } from "../../src/dns/names.ts";
import { terminate } from "./child.ts";

export const DNSMASQ = "/usr/sbin/dnsmasq";

export interface TestZone {
  /** Each gets `--local=/zone/` so that unknown names in it are NXDOMAIN, not REFUSED. */
  zones: string[];
  /** One entry = one TXT record; several entries with one name = several records. */
  txt?: { name: string; strings: string[] }[];
  srv?: { name: string; target: string; port: number; priority?: number; weight?: number }[];
  /** A or AAAA by the address family; one name may have several entries. */
  hosts?: { name: string; address: string }[];
  /** `ttl` overrides the zone's TTL for this CNAME, to test TTLs along a chain. */
  cnames?: { name: string; target: string; ttl?: number }[];
  /** TTL of every record (`--local-ttl`, or `--auth-ttl` with `soa`); default 0. */
  ttl?: number;
  /** Answer authoritatively, with the zone's SOA in negative answers (see the module comment). */
  soa?: boolean;
}

export interface RunningDnsmasq {
  readonly server: { host: string; port: number };
  /** All dnsmasq printed on stderr so far (its log goes there). */
  stderr(): string;
  /**
   * Serves `zone` instead, on the same address (an operator publishing a record): dnsmasq re-reads
   * hosts files on SIGHUP but not TXT or SRV records, so it is restarted on the same port.
   */
  replace(zone: TestZone): Promise<void>;
  /** Stops the server (a DNS server that is down); resume() starts it again on the same port. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

interface Config {
  readonly args: string[];
  readonly confLines: string[];
  /** A name in the first zone, asked until dnsmasq answers. */
  readonly probe: string;
}

const START_TIMEOUT_MS = 5000;
const PORT_ATTEMPTS = 5;
const running = new Set<ChildProcess>();
// A test that fails before stop() must not leave a dnsmasq behind.
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

type Instance = Omit<RunningDnsmasq, "replace" | "pause" | "resume">;

export async function startDnsmasq(zone: TestZone): Promise<RunningDnsmasq> {
  const config = configFor(zone);
  let lastError: Error | undefined;
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const port = await freePort();
    try {
      let current = await launch(port, config);
      let serving = config;
      return {
        server: current.server,
        stderr: () => current.stderr(),
        stop: () => current.stop(),
        async replace(next) {
          await current.stop();
          serving = configFor(next);
          current = await launchWhenFree(port, serving);
        },
        pause: () => current.stop(),
        async resume() {
          current = await launchWhenFree(port, serving);
        },
      };
    } catch (e) {
      lastError = e instanceof Error ? e : new Error(String(e));
      // Another process may have taken the port between our probe and dnsmasq's bind.
      if (!lastError.message.includes("Address already in use")) throw lastError;
    }
  }
  throw lastError ?? new Error("dnsmasq did not start");
}

/** launch() on a port just given up, waiting briefly while the old process lets go of it. */
async function launchWhenFree(port: number, config: Config): Promise<Instance> {
  for (let i = 0; ; i++) {
    try {
      return await launch(port, config);
    } catch (e) {
      if (i >= 20 || !(e instanceof Error) || !e.message.includes("Address already in use")) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function configFor(zone: TestZone): Config {
  const first = zone.zones[0];
  if (first === undefined) throw new Error("startDnsmasq: at least one zone is needed");
  const check = (name: string): string => {
    if (!isDomainName(name)) throw new Error(`startDnsmasq: "${name}" is not a domain name`);
    return name.replace(/\.$/, "");
  };
  const ttl = zone.ttl ?? 0;
  const args = [`--local-ttl=${ttl}`];
  const confLines: string[] = [];
  for (const z of zone.zones) args.push(`--local=/${check(z)}/`);
  for (const t of zone.txt ?? []) {
    const name = check(t.name);
    const line = txtConfLine(name, t.strings);
    if (line !== undefined) confLines.push(line);
    else args.push(txtDnsRr(name, t.strings));
  }
  for (const s of zone.srv ?? []) {
    const target = s.target === "" ? "." : check(s.target);
    args.push(`--srv-host=${check(s.name)},${target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`);
  }
  for (const h of zone.hosts ?? []) {
    if (net.isIP(h.address) === 0) throw new Error(`startDnsmasq: "${h.address}" is not an IP address`);
    args.push(`--host-record=${check(h.name)},${h.address}`);
  }
  for (const c of zone.cnames ?? []) {
    args.push(`--cname=${check(c.name)},${check(c.target)}${c.ttl === undefined ? "" : `,${c.ttl}`}`);
  }
  if (zone.soa) {
    const subnets = (zone.hosts ?? []).map((h) => `${h.address}/${net.isIPv6(h.address) ? 128 : 32}`);
    args.push(`--auth-server=ns.${check(first)},127.0.0.1`, `--auth-ttl=${ttl}`);
    for (const z of zone.zones) args.push([`--auth-zone=${check(z)}`, ...subnets].join(","));
  }
  return { args, confLines, probe: check(first) };
}

/** dnsmasq reads conf lines into a buffer of MAXDNAME (1025) bytes and fails on longer ones. */
const MAX_CONF_LINE = 1024;
const CONF_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  '"': '\\"',
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};

/** A `txt-record=` conf-file line, or undefined when a conf file cannot carry the record. */
function txtConfLine(name: string, strings: readonly string[]): string | undefined {
  checkStrings(name, strings);
  if (strings.some((s) => /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s))) return undefined;
  const quoted = strings.map((s) => `"${s.replace(/[\\"\t\n\r]/g, (c) => CONF_ESCAPES[c]!)}"`);
  const line = `txt-record=${name},${quoted.join(",")}`;
  return Buffer.byteLength(line, "utf8") <= MAX_CONF_LINE ? line : undefined;
}

/** The TXT RDATA (RFC 1035 section 3.3.14) in hex, for strings a conf file cannot carry. */
function txtDnsRr(name: string, strings: readonly string[]): string {
  const rdata = Buffer.concat(
    strings.map((s) => Buffer.from(s, "utf8")).flatMap((b) => [Buffer.from([b.length]), b]),
  );
  return `--dns-rr=${name},16,${rdata.toString("hex")}`;
}

function checkStrings(name: string, strings: readonly string[]): void {
  if (strings.length === 0) throw new Error(`startDnsmasq: the TXT record at ${name} has no strings`);
  const long = strings.findIndex((s) => Buffer.byteLength(s, "utf8") > 255);
  if (long >= 0) throw new Error(`startDnsmasq: TXT string ${long} at ${name} is over 255 bytes; split it`);
}

async function launch(port: number, config: Config): Promise<Instance> {
  // The conf file also stands in for /etc/dnsmasq.conf, which must not be read.
  const dir = mkdtempSync(join(tmpdir(), "isched-dnsmasq-"));
  const confFile = join(dir, "dnsmasq.conf");
  writeFileSync(confFile, config.confLines.map((l) => `${l}\n`).join(""));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const args = [
    "--keep-in-foreground",
    `--conf-file=${confFile}`,
    "--no-resolv",
    "--no-hosts",
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    `--port=${port}`,
    "--pid-file=",
    "--log-facility=-",
    // As root dnsmasq would switch to "nobody"; as another user it keeps its user and needs no flag.
    ...(process.getuid?.() === 0 ? ["--user=root"] : []),
    ...config.args,
  ];
  const child = spawn(DNSMASQ, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
  });
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    const done = (why: string): void => {
      exit ??= why;
      running.delete(child);
      cleanup();
      resolve();
    };
    child.on("error", (e) => done(`could not run ${DNSMASQ}: ${e.message} (install dnsmasq-base)`));
    child.on("exit", (code, signal) => done(signal !== null ? `killed by ${signal}` : `exit code ${code}`));
  });

  const server = { host: "127.0.0.1", port };
  const probe = createResolver({ servers: [server], timeoutMs: 200, attempts: 1 });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exit !== undefined) {
      await new Promise((r) => setTimeout(r, 50)); // let the last stderr chunk arrive
      const lines = [`${DNSMASQ} ${args.join(" ")}`, ...config.confLines].join("\n  ");
      throw new Error(`dnsmasq failed to start (${exit}): ${stderr.trim()}\n  ${lines}`);
    }
    const answer = await probe.txt(config.probe);
    if (answer.status !== "error") break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(
        `dnsmasq did not answer on port ${port} in ${START_TIMEOUT_MS}ms: ${answer.message}\n${stderr}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    server,
    stderr: () => stderr,
    async stop() {
      if (exit !== undefined) return;
      await terminate(child, exited);
    },
  };
}

/** A port free for both TCP and UDP on 127.0.0.1 (dnsmasq binds both). */
async function freePort(): Promise<number> {
  for (;;) {
    const tcp = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(0, "127.0.0.1", () => resolve((tcp.address() as net.AddressInfo).port));
    });
    const udp = dgram.createSocket("udp4");
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once("error", () => resolve(false));
      udp.bind(port, "127.0.0.1", () => resolve(true));
    });
    try {
      udp.close();
    } catch {
      // A socket whose bind failed may count as closed already.
    }
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (udpFree) return port;
  }
}
