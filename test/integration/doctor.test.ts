/**
 * `isched doctor` checks what a peer would see, against real parts: a running isched (the compiled
 * binary, HTTPS with a test CA), real DNS (dnsmasq) with the right records, none, and wrong ones, a
 * real SMTP relay with STARTTLS and AUTH, a calendar server stand-in that wants a password, and a
 * time server whose clock is off.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { type BinaryResult, runIsched } from "../support/binary-run.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

let dir: string;
let data: string;
let ca: TestCa;
let cert: IssuedCert;
let port: number;
let server: ServeProcess;
let selector: string;
let record: string;
let smtp: RunningSmtpServer;
let calendar: ReturnType<typeof Bun.serve>;
let clock: ReturnType<typeof Bun.serve>;
let clockOffsetMs = 0;
const dnsServers: RunningDnsmasq[] = [];
let right: RunningDnsmasq;
let missing: RunningDnsmasq;
let wrong: RunningDnsmasq;

const DOMAIN = "home.test";
const HOST = "isched.home.test";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-doctor-"));
  data = join(dir, "data");
  ca = createTestCa();
  cert = ca.issue([HOST]);
  port = await freePort();
  server = running(await serveProcess(serveFlags()));
  const db = new Database(join(data, "isched.db"), { readonly: true });
  ({ selector, record } = db
    .query<{ selector: string; record: string }, []>("SELECT selector, record FROM dkim_keys")
    .get()!);
  db.close();
  const token = readFileSync(join(data, "api-token"), "utf8").trim();
  const set = await fetch(`${server.consoleUrl}/api/v1/keys/endpoint`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ url: `https://${HOST}:${port}/.well-known/ischedule` }),
  });
  expect(set.status).toBe(200);

  const relayCert = ca.issue(["127.0.0.1"]);
  smtp = await startSmtpServer({
    tls: { certPem: relayCert.certPem, keyPem: relayCert.keyPem },
    auth: { user: "relay-user", password: "relay-pass" },
  });
  calendar = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      req.headers.get("authorization") === `Basic ${btoa("cyrus:cyrus-pass")}`
        ? new Response("<query-result/>", { headers: { "Content-Type": "application/xml" } })
        : new Response("who are you?", { status: 401 }),
  });
  clock = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () =>
      new Response(null, { headers: { Date: new Date(Date.now() + clockOffsetMs).toUTCString() } }),
  });

  const hosts = [
    { name: HOST, address: "127.0.0.1" },
    { name: `other.${DOMAIN}`, address: "127.0.0.1" },
  ];
  right = await startDnsmasq({
    zones: [DOMAIN],
    srv: [
      { name: `_ischedules._tcp.${DOMAIN}`, target: HOST, port },
      { name: `_domainkey_lookup._tcp.${DOMAIN}`, target: HOST, port },
    ],
    hosts,
    txt: [{ name: `${selector}._domainkey.${DOMAIN}`, strings: splitTxtValue(record) }],
  });
  missing = await startDnsmasq({ zones: [DOMAIN], hosts });
  wrong = await startDnsmasq({
    zones: [DOMAIN],
    srv: [{ name: `_ischedules._tcp.${DOMAIN}`, target: `other.${DOMAIN}`, port }],
    hosts,
    txt: [
      { name: `_ischedules._tcp.${DOMAIN}`, strings: ["path=/elsewhere"] },
      { name: `${selector}._domainkey.${DOMAIN}`, strings: splitTxtValue(generateDkimKey("rsa").record) },
    ],
  });
  dnsServers.push(right, missing, wrong);
});

afterAll(async () => {
  await server?.stop();
  await smtp?.stop();
  calendar?.stop(true);
  clock?.stop(true);
  for (const d of dnsServers) await d.stop();
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function serveFlags(): string[] {
  return [
    ...["--domain", DOMAIN, "--listen", `127.0.0.1:${port}`, "--console", "127.0.0.1:0", "--data", data],
    ...[
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
      "--ca-file",
      ca.caCertFile,
      "--allow-private-peers",
    ],
  ];
}

/** doctor with serve's flags (and the relay, the calendar server and a time reference). */
function doctor(
  dns: RunningDnsmasq,
  o: { smtpPassword?: string; calendarPassword?: string; json?: boolean } = {},
): Promise<BinaryResult> {
  return runIsched([
    "doctor",
    ...serveFlags(),
    ...["--dns-server", `${dns.server.host}:${dns.server.port}`],
    ...["--smtp", `smtp://relay-user:${o.smtpPassword ?? "relay-pass"}@127.0.0.1:${smtp.port}`],
    ...[
      "--deliver",
      `ischedule:http://cyrus:${o.calendarPassword ?? "cyrus-pass"}@127.0.0.1:${calendar.port}/ischedule`,
    ],
    ...["--time-from", `http://127.0.0.1:${clock.port}/`],
    ...(o.json ? ["--json"] : []),
  ]);
}

const lines = (r: BinaryResult) => r.stdout.split("\n");
const line = (r: BinaryResult, start: string) => lines(r).find((l) => l.startsWith(start));

describe("isched doctor", () => {
  test("with the right records: every check passes but the lab's private address and short-lived certificate, exit 3", async () => {
    const r = await doctor(right);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("\nfail");
    expect(line(r, `pass  SRV _ischedules._tcp.${DOMAIN}:`)).toContain(`0 0 ${port} ${HOST}.`);
    expect(line(r, `pass  TXT _ischedules._tcp.${DOMAIN} path=:`)).toContain(
      "none: peers use /.well-known/ischedule without it",
    );
    expect(line(r, `warn  addresses of ${HOST}:`)).toContain("127.0.0.1: a loopback address");
    // The test CA's certificates live 3 days: within the 21 days that call for renewal.
    expect(line(r, `warn  TLS ${HOST}:${port}:`)).toMatch(
      /CN=isched\.home\.test, issued by CN=isched test CA, names isched\.home\.test, valid until \d{4}-\d\d-\d\d: expires in [0-3] days/,
    );
    expect(line(r, `pass  capabilities at https://${HOST}:${port}/.well-known/ischedule:`)).toContain(
      "versions 1.0",
    );
    expect(line(r, `pass  SRV _domainkey_lookup._tcp.${DOMAIN}:`)).toContain(`0 0 ${port} ${HOST}.`);
    expect(
      line(r, `pass  DKIM https://${HOST}:${port}/.well-known/domainkey/${DOMAIN}/${selector}:`),
    ).toContain("serves the public key of our private key");
    expect(line(r, `pass  DKIM TXT ${selector}._domainkey.${DOMAIN}:`)).toContain(
      "publishes the public key of our private key",
    );
    expect(
      line(r, `pass  isched's https://127.0.0.1:${port}/.well-known/domainkey/${DOMAIN}/${selector}:`),
    ).toContain("serves the key");
    expect(line(r, "pass  local target ischedule:")).toContain("answers a capabilities request (HTTP 200)");
    expect(line(r, `pass  SMTP relay smtp://relay-user:***@127.0.0.1:${smtp.port} (--smtp):`)).toContain(
      "greeting, EHLO, STARTTLS, AUTH as relay-user: accepted",
    );
    expect(line(r, "pass  clock:")).toContain(`agrees with 127.0.0.1:${clock.port}`);
    expect(r.stdout).not.toContain("relay-pass");
    expect(r.stdout).not.toContain("cyrus-pass");
    expect(r.exitCode).toBe(3);
  });

  test("with no records: the SRV and DKIM records fail, each with the record to publish, exit 1", async () => {
    const r = await doctor(missing);
    expect(line(r, `fail  SRV _ischedules._tcp.${DOMAIN}:`)).toContain(
      "missing: where peers send iSchedule requests",
    );
    expect(line(r, `warn  SRV _domainkey_lookup._tcp.${DOMAIN}:`)).toContain(
      "missing: where peers fetch our keys by http/well-known",
    );
    expect(r.stdout).toContain(
      `      fix: publish _ischedules._tcp.${DOMAIN}. 3600 IN SRV 0 1 ${port} ${HOST}.\n`,
    );
    expect(line(r, `fail  DKIM TXT ${selector}._domainkey.${DOMAIN}:`)).toContain(
      "missing: peers cannot verify your signatures",
    );
    expect(r.stdout).toContain(
      `      fix: publish ${selector}._domainkey.${DOMAIN}. 3600 IN TXT ( "v=DKIM1; k=rsa;`,
    );
    expect(r.exitCode).toBe(1);
  });

  test("with wrong records: an SRV record and a path that lead elsewhere, a certificate not naming the target, another key", async () => {
    const r = await doctor(wrong);
    expect(line(r, `fail  SRV _ischedules._tcp.${DOMAIN}:`)).toContain(
      `points at other.${DOMAIN}:${port}, not at isched (${HOST}:${port})`,
    );
    expect(line(r, `fail  TXT _ischedules._tcp.${DOMAIN} path=:`)).toContain(
      "path=/elsewhere: peers would POST to /elsewhere, not /.well-known/ischedule",
    );
    expect(line(r, `fail  TLS other.${DOMAIN}:${port}:`)).toContain(
      "Host: other.home.test. is not in the cert's altnames",
    );
    expect(line(r, `fail  DKIM TXT ${selector}._domainkey.${DOMAIN}:`)).toContain(
      "another key: p= differs from ours",
    );
    expect(r.exitCode).toBe(1);
  });

  test("a relay that refuses the password, a calendar server that refuses isched, a clock 10 minutes off", async () => {
    clockOffsetMs = 600_000;
    try {
      const r = await doctor(right, { smtpPassword: "wrong-pass", calendarPassword: "wrong-too" });
      expect(line(r, "fail  SMTP relay")).toMatch(
        /Cannot use smtp:\/\/relay-user:\*\*\*@127\.0\.0\.1:\d+: .*535/,
      );
      expect(r.stdout).toContain("      fix: check the user and password in --smtp\n");
      expect(line(r, "fail  local target ischedule:")).toContain("refuses isched (HTTP 401)");
      expect(line(r, "fail  clock:")).toMatch(/^fail {2}clock: (59\d|60\d) s behind 127\.0\.0\.1:\d+/);
      expect(r.stdout).not.toContain("wrong-pass");
      expect(r.exitCode).toBe(1);
    } finally {
      clockOffsetMs = 0;
    }
  });

  test("--json: every check with its id, status and fix", async () => {
    const r = await doctor(missing, { json: true });
    const { checks } = JSON.parse(r.stdout) as { checks: { id: string; status: string; fix?: string }[] };
    const srv = checks.find((c) => c.id === "srv");
    expect(srv?.status).toBe("fail");
    expect(srv?.fix).toBe(`publish _ischedules._tcp.${DOMAIN}. 3600 IN SRV 0 1 ${port} ${HOST}.`);
    expect(new Set(checks.map((c) => c.id))).toEqual(
      new Set([
        "configuration",
        "running",
        "srv",
        "txt-path",
        "domainkey-lookup",
        "dkim-dns",
        "dkim-well-known",
        "dkim-local",
        "local-target",
        "smtp",
        "clock",
      ]),
    );
    expect(r.exitCode).toBe(1);
  });
});

test("doctor says that localhost is no domain a peer can look up", async () => {
  const r = await runIsched([
    "doctor",
    ...["--domain", "localhost", "--data", join(dir, "local-data"), "--listen", "127.0.0.1:0"],
    ...["--dns-server", `${missing.server.host}:${missing.server.port}`],
  ]);
  expect(line(r, "fail  domain localhost:")).toContain("a name no peer can look up");
  expect(r.stdout).toContain("      fix: give --domain with your organisation's domain\n");
  expect(line(r, "warn  isched:")).toContain("no isched runs on the data folder");
  expect(r.exitCode).toBe(1);
});
