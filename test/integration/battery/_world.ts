/**
 * Everything the bad-input battery runs against, with real parts: the compiled `dist/isched` as its
 * own process (endpoint, console/API, SMTP intake), dnsmasq with the peer's DKIM key records, the
 * SMTP test server as the intake's smarthost, and a fake iSchedule receiver over real TLS (fake-peer.ts)
 * that static routes point at. The server's resident memory is read from /proc/PID/status.
 */
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { splitTxtValue } from "../../../src/dkim/dns-record.ts";
import { formatKeyRecord, publicKeyMaterial } from "../../../src/dkim/key-record.ts";
import { generateDkimKey } from "../../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey } from "../../../src/dkim/sign.ts";
import { ischedBinary } from "../../support/binary.ts";
import { type RunningDnsmasq, startDnsmasq } from "../../support/dnsmasq.ts";
import { createTestCa, type TestCa } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import { type RunningSmtpServer, startSmtpServer } from "../../support/smtp-server.ts";
import { type FakePeer, type PeerAnswer, type PeerRequest, startFakePeer } from "./_fake-peer.ts";

/** Our hosted domain, the signing peer, and the fake receiver's domain. */
export const HOSTED = "org.test";
export const PEER = "peer.test";
export const FAKE = "fake.test";
export const ADMIN_PASSWORD = "battery admin password 7";
export const SMTP_USER = "cyrus";
export const SMTP_PASSWORD = "calendar-secret";
/** How many capabilities cases may have a static route of their own (cap0.test, cap1.test...). */
export const CAPABILITY_ROUTES = 40;

const rsa = generateDkimKey("rsa");
const ed = generateDkimKey("ed25519");
const other = generateDkimKey("rsa");

/** A 512-bit RSA key: loadSigningKey refuses to sign with it, so it is made by hand. */
function weakKey(): { signing: SigningKey; record: string } {
  const pair = generateKeyPairSync("rsa", { modulusLength: 512, publicExponent: 65537 });
  return {
    signing: {
      domain: PEER,
      selector: "weak",
      algorithm: "rsa-sha256",
      privateKey: createPrivateKey(pair.privateKey.export({ format: "pem", type: "pkcs8" })),
    },
    record: formatKeyRecord(publicKeyMaterial(pair.publicKey)),
  };
}
const weak = weakKey();
const rsaP = /p=([^;\s]+)/.exec(rsa.record)![1]!;
const edP = /p=([^;\s]+)/.exec(ed.record)![1]!;

/**
 * The peer's key records in DNS, by selector: `s1` and `ed` are good; the others are published wrong
 * in one way each, and `sign(selector)` signs with the RSA key under that selector.
 */
export const KEY_RECORDS: Record<string, string[]> = {
  s1: [rsa.record],
  ed: [ed.record],
  testing: [`v=DKIM1; k=rsa; t=y; p=${rsaP}`],
  revoked: ["v=DKIM1; k=rsa; p="],
  email: [`v=DKIM1; k=rsa; s=email; p=${rsaP}`],
  sha1only: [`v=DKIM1; k=rsa; h=sha1; p=${rsaP}`],
  kmismatch: [`v=DKIM1; k=ed25519; p=${rsaP}`],
  edasrsa: [`v=DKIM1; k=rsa; p=${edP}`],
  notbase64: ["v=DKIM1; k=rsa; p=!!!not*base64!!!"],
  notakey: [`v=DKIM1; k=rsa; p=${Buffer.from("not a key at all").toString("base64")}`],
  v2: [`v=DKIM2; k=rsa; p=${rsaP}`],
  unknownk: [`v=DKIM1; k=dsa; p=${rsaP}`],
  nop: ["v=DKIM1; k=rsa"],
  prose: ["this is not a key record"],
  tworecords: [rsa.record, other.record],
  otherkey: [other.record],
  weak: [weak.record],
};

export const peerKeys = {
  rsa: loadSigningKey(rsa.privateKeyPem, PEER, "s1"),
  ed25519: loadSigningKey(ed.privateKeyPem, PEER, "ed"),
  /** The RSA key, signing under `selector` (whatever is published there). */
  rsaAs: (selector: string) => loadSigningKey(rsa.privateKeyPem, PEER, selector),
  weak: weak.signing,
};

export interface World {
  readonly pid: number;
  readonly endpointPort: number;
  readonly consolePort: number;
  readonly smtpPort: number;
  readonly token: string;
  readonly peer: FakePeer;
  readonly sink: RunningSmtpServer;
  /** The server's resident set, in MB (VmRSS). */
  rssMb(): number;
  /** Whether the process still runs. */
  alive(): boolean;
  stderr(): string;
  close(): Promise<void>;
}

export interface WorldOptions {
  /** The fake receiver's answer to each request (see fake-peer.ts). */
  answer: (request: PeerRequest, port: number) => PeerAnswer;
}

export async function startWorld(o: WorldOptions): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "isched-battery-"));
  const ca: TestCa = createTestCa();
  let dns: RunningDnsmasq | undefined;
  let peer: FakePeer | undefined;
  let sink: RunningSmtpServer | undefined;
  let child: Subprocess<"ignore", "pipe", "pipe"> | undefined;
  try {
    dns = await startDnsmasq({
      zones: [PEER, "other.test", "mail-only.test"],
      txt: Object.entries(KEY_RECORDS).flatMap(([selector, records]) =>
        records.map((r) => ({ name: `${selector}._domainkey.${PEER}`, strings: splitTxtValue(r) })),
      ),
    });
    const cert = ca.issue(["127.0.0.1"]);
    peer = await startFakePeer({ cert, answer: o.answer });
    sink = await startSmtpServer();
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");
    writeFileSync(join(dir, "api-token"), `${token}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "admin-password"), `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
    writeFileSync(join(dir, "smtp-users"), `${SMTP_USER}:${SMTP_PASSWORD}\n`, { mode: 0o600 });
    const [endpointPort, consolePort, smtpPort] = [await freePort(), await freePort(), await freePort()];
    const peerUrl = `https://127.0.0.1:${peer.port}`;
    child = Bun.spawn(
      [
        ischedBinary(),
        "serve",
        ...["--domain", HOSTED],
        ...["--listen", `127.0.0.1:${endpointPort}`],
        ...["--console", `127.0.0.1:${consolePort}`],
        ...["--data", join(dir, "data")],
        ...["--api-token-file", join(dir, "api-token")],
        ...["--admin-password-file", join(dir, "admin-password")],
        ...["--deliver", "store"],
        ...["--dns-server", `${dns.server.host}:${dns.server.port}`],
        ...["--ca-file", ca.caCertFile],
        "--allow-private-peers",
        ...["--peer", `${FAKE}=${peerUrl}/ischedule`],
        ...Array.from({ length: CAPABILITY_ROUTES }, (_, i) => [
          "--peer",
          `cap${i}.test=${peerUrl}/caps/${i}`,
        ]).flat(),
        ...["--smtp-listen", `127.0.0.1:${smtpPort}`],
        ...["--smtp-allow", "127.0.0.0/8"],
        ...["--smtp-auth-file", join(dir, "smtp-users")],
        ...["--smtp-relay", `smtp://127.0.0.1:${sink.port}`],
        ...["--smtp-max-size", String(SMTP_MAX_SIZE)],
        // One attempt per delivery within the battery: a retry an hour later never comes.
        ...["--retry", "1h"],
        // isched's own key is in no DNS here: sign with it all the same.
        "--sign-unpublished",
        ...["--delivery-deadline", "2s"],
        ...["--log-level", "warn"],
      ],
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    let stderr = "";
    let stdout = "";
    const proc = child;
    void (async () => {
      for await (const chunk of proc.stderr) stderr += Buffer.from(chunk).toString("utf8");
    })();
    void (async () => {
      for await (const chunk of proc.stdout) stdout += Buffer.from(chunk).toString("utf8");
    })();
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`isched serve exited (${proc.exitCode}): ${stderr}`);
      // Ready once the console knows the password from --admin-password-file: isched applies it
      // just after it starts listening.
      const up = await fetch(`http://127.0.0.1:${consolePort}/api/v1/session`)
        .then(async (r) => (await r.json()).setupNeeded === false)
        .catch(() => false);
      if (up && /SMTP intake\s+127\.0\.0\.1/.test(stdout)) break;
      if (Date.now() > deadline) throw new Error(`isched serve did not answer within 30 s: ${stderr}`);
      await Bun.sleep(50);
    }
    const started = { dns, peer, sink, child: proc };
    return {
      pid: proc.pid,
      endpointPort,
      consolePort,
      smtpPort,
      token,
      peer,
      sink,
      rssMb: () => rssMb(proc.pid),
      alive: () => proc.exitCode === null && proc.signalCode === null,
      stderr: () => stderr,
      async close() {
        await stop(started);
        ca.remove();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stop({ dns, peer, sink, child });
    ca.remove();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** The SMTP intake's --smtp-max-size. */
export const SMTP_MAX_SIZE = 256 * 1024;

async function stop(s: {
  dns?: RunningDnsmasq;
  peer?: FakePeer;
  sink?: RunningSmtpServer;
  child?: Subprocess;
}): Promise<void> {
  if (s.child) {
    s.child.kill("SIGTERM");
    const killer = setTimeout(() => s.child?.kill("SIGKILL"), 5000);
    await s.child.exited;
    clearTimeout(killer);
  }
  await s.peer?.stop();
  await s.sink?.stop();
  await s.dns?.stop();
}

/** VmRSS of a process, in MB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}
