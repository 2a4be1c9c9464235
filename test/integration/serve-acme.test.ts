/**
 * `isched serve --acme-email` (dist/isched) against a real ACME CA (Debian's pebble, validating
 * challenges by connecting to isched's ports): the endpoint is served with the CA's certificate, a
 * short-lived certificate is renewed at a third of its lifetime left and swapped in while a client
 * loop sees no failed request, the certificate and account key are kept 0600 in DATA/acme; with the
 * CA unreachable isched starts with the last good certificate (or, on loopback without one, in plain
 * HTTP with a warning) and logs the failure; a public address without a certificate refuses to start.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIsched } from "../support/binary-run.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { type RunningPebble, startPebble } from "../support/pebble.ts";
import { createTestCa, peerSerial } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { startRequestLoop } from "../support/request-loop.ts";
import { type ServeProcess, serveProcess } from "../support/serve-process.ts";

const NAME = "isched.example.test";
let dns: RunningDnsmasq;
const dirs: string[] = [];
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dns = await startDnsmasq({ zones: ["example.test"], hosts: [{ name: NAME, address: "127.0.0.1" }] });
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});
afterAll(async () => {
  await dns?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "isched-acme-serve-"));
  dirs.push(d);
  return d;
}

/** A pebble whose validator connects to `httpPort` for HTTP-01. */
async function pebbleOn(httpPort: number, certValiditySeconds?: number): Promise<RunningPebble> {
  const pebble = await startPebble({ httpPort, dns: dns.server, certValiditySeconds, authzReusePercent: 0 });
  stops.push(() => pebble.stop());
  return pebble;
}

interface Setup {
  data: string;
  endpointPort: number;
  httpPort: number;
  directoryUrl: string;
  caFile: string;
}

function acmeArgs(s: Setup): string[] {
  return [
    "--data",
    s.data,
    "--domain",
    "example.test",
    "--listen",
    `127.0.0.1:${s.endpointPort}`,
    "--console",
    "127.0.0.1:0",
    "--acme-email",
    "admin@example.test",
    "--acme-directory",
    s.directoryUrl,
    "--acme-ca-file",
    s.caFile,
    "--hostname",
    NAME,
    "--acme-http-listen",
    `127.0.0.1:${s.httpPort}`,
  ];
}

async function serving(args: string[]): Promise<ServeProcess> {
  const s = await serveProcess(args, { timeoutMs: 60_000 });
  if (!("process" in s)) throw new Error(`serve exited ${s.exitCode}:\n${s.stdout}\n${s.stderr}`);
  stops.push(() => s.stop());
  return s;
}

async function logged(s: ServeProcess, pattern: RegExp, count = 1, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((s.stderr().match(new RegExp(pattern, "g")) ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`not ${count}x ${pattern} in:\n${s.stderr()}`);
    await Bun.sleep(50);
  }
}

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

describe("isched serve --acme-email with pebble", () => {
  test("serves the endpoint with the CA's certificate and renews it in place while clients keep sending", async () => {
    const setup = { data: dataDir(), endpointPort: await freePort(), httpPort: await freePort() };
    const pebble = await pebbleOn(setup.httpPort, 30);
    const s = await serving(
      acmeArgs({ ...setup, directoryUrl: pebble.directoryUrl, caFile: pebble.acmeCaFile }),
    );
    expect(s.url).toBe(`https://127.0.0.1:${setup.endpointPort}`);
    const root = await pebble.issuingRootPem();
    const first = await peerSerial(setup.endpointPort, root, NAME);
    expect(mode(join(setup.data, "acme", "certificate.pem"))).toBe("600");
    expect(mode(join(setup.data, "acme", "account-key.pem"))).toBe("600");
    // A 30-second certificate is always within 7 days of its end: said at once.
    await logged(s, /warn the certificate expires within 7 days/);

    // The port-80 listener sends our names to https, and nothing else.
    const moved = await fetch(`http://127.0.0.1:${setup.httpPort}/.well-known/ischedule`, {
      headers: { host: NAME },
      redirect: "manual",
    });
    expect(moved.status).toBe(308);
    expect(moved.headers.get("location")).toBe(`https://${NAME}:${setup.endpointPort}/.well-known/ischedule`);

    const url = `https://127.0.0.1:${setup.endpointPort}/.well-known/ischedule?action=capabilities`;
    const expected = await (await fetch(url, { tls: { ca: root, serverName: NAME } })).text();
    expect(expected).toContain("<query-result");
    const clients = startRequestLoop({ url, ca: root, serverName: NAME, expect: expected });
    try {
      // Renewal at a third of the lifetime left: 20 s after issuance.
      await logged(s, /info the new certificate is in use/, 1, 40_000);
      await Bun.sleep(500);
    } finally {
      const { ok, failures } = await clients.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(50);
    }
    expect(await peerSerial(setup.endpointPort, root, NAME)).not.toBe(first);
    expect(s.stderr()).toMatch(/info obtained a certificate .*names=isched.example.test/);
    // The expiry metric follows the certificate in use.
    const inUse = new X509Certificate(readFileSync(join(setup.data, "acme", "certificate.pem")));
    const scraped = await (await fetch(`${s.consoleUrl}/metrics`)).text();
    expect(scraped).toContain(
      `isched_certificate_expiry_timestamp_seconds{listener="--listen"} ${Date.parse(inUse.validTo) / 1000}`,
    );
  }, 90_000);

  test("--acme-challenge tls-alpn-01: validated on the endpoint's own port, at start and at renewal", async () => {
    const data = dataDir();
    const endpointPort = await freePort();
    // Nothing listens on pebble's HTTP-01 port: only TLS-ALPN-01 can succeed.
    const pebble = await startPebble({
      httpPort: await freePort(),
      tlsPort: endpointPort,
      dns: dns.server,
      certValiditySeconds: 30,
      authzReusePercent: 0,
    });
    stops.push(() => pebble.stop());
    const args = acmeArgs({
      data,
      endpointPort,
      httpPort: 0,
      directoryUrl: pebble.directoryUrl,
      caFile: pebble.acmeCaFile,
    });
    args.splice(args.indexOf("--acme-http-listen"), 2, "--acme-challenge", "tls-alpn-01");
    const s = await serving(args);
    const root = await pebble.issuingRootPem();
    const first = await peerSerial(endpointPort, root, NAME);
    const url = `https://127.0.0.1:${endpointPort}/.well-known/ischedule?action=capabilities`;
    const expected = await (await fetch(url, { tls: { ca: root, serverName: NAME } })).text();
    const clients = startRequestLoop({ url, ca: root, serverName: NAME, expect: expected });
    try {
      await logged(s, /info the new certificate is in use/, 1, 40_000);
    } finally {
      const { ok, failures } = await clients.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(50);
    }
    expect(await peerSerial(endpointPort, root, NAME)).not.toBe(first);
  }, 90_000);

  test("with the CA unreachable it starts with the last good certificate and logs the failure", async () => {
    const setup = { data: dataDir(), endpointPort: await freePort(), httpPort: await freePort() };
    // 45 s certificates: renewal is due 30 s after issuance, and the certificate still good for 15 s.
    const pebble = await pebbleOn(setup.httpPort, 45);
    const args = acmeArgs({ ...setup, directoryUrl: pebble.directoryUrl, caFile: pebble.acmeCaFile });
    // The set-up: a first start that obtains a certificate. Once, in a clean-clone CI run under
    // load, that first order failed (the endpoint then spoke plain HTTP; its log was not kept), and
    // isched's own retry comes a minute later: the set-up is made again once, and a second failure
    // reports both logs.
    let first = await serving(args);
    if (!first.url.startsWith("https://")) {
      const log = first.stderr();
      await first.stop();
      first = await serving(args);
      if (!first.url.startsWith("https://"))
        throw new Error(`no certificate from pebble at two starts:\n${log}\n---\n${first.stderr()}`);
    }
    const root = await pebble.issuingRootPem();
    const serial = await peerSerial(setup.endpointPort, root, NAME);
    await first.stop();
    // isched doctor sees the saved certificate (45 s: within 7 days of its end) and the directory.
    const doctor = await runIsched([
      "doctor",
      ...args,
      "--dns-server",
      `127.0.0.1:${dns.server.port}`,
      "--json",
    ]);
    const checks = (JSON.parse(doctor.stdout) as { checks: { id: string; status: string; detail: string }[] })
      .checks;
    expect(checks.find((c) => c.id === "acme-certificate")).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/^expires at .*, within 7 days$/),
    });
    expect(checks.find((c) => c.id === "acme-directory")).toMatchObject({
      status: "pass",
      detail: "answers",
    });
    const caFile = join(dataDir(), "pebble-ca.pem");
    copyFileSync(pebble.acmeCaFile, caFile);
    await pebble.stop();
    const saved = new X509Certificate(readFileSync(join(setup.data, "acme", "certificate.pem")));
    await Bun.sleep(Math.max(0, Date.parse(saved.validFrom) + 31_000 - Date.now()));

    const down = `https://127.0.0.1:${await freePort()}/dir`;
    const again = await serving(acmeArgs({ ...setup, directoryUrl: down, caFile }));
    expect(again.url).toStartWith("https://");
    expect(await peerSerial(setup.endpointPort, root, NAME)).toBe(serial);
    await logged(again, /warn could not obtain a certificate error="Cannot reach the ACME server/);
    expect(again.stderr()).toContain(`serving="certificate until ${new Date(saved.validTo).toISOString()}"`);
    expect(again.process.exitCode).toBeNull();
  }, 90_000);

  test("on loopback without any certificate it serves plain HTTP with a warning and keeps trying", async () => {
    const setup = { data: dataDir(), endpointPort: await freePort(), httpPort: await freePort() };
    const down = `https://127.0.0.1:${await freePort()}/dir`;
    const s = await serving(
      acmeArgs({ ...setup, directoryUrl: down, caFile: "/etc/ssl/certs/ca-certificates.crt" }),
    );
    expect(s.url).toBe(`http://127.0.0.1:${setup.endpointPort}`);
    expect(s.stderr()).toMatch(/error could not obtain a certificate error="Cannot reach the ACME server/);
    expect(s.stderr()).toMatch(
      /warn no certificate from the ACME CA yet: the endpoint speaks plain HTTP on loopback/,
    );
    expect(s.stdout()).toMatch(
      /warning: Cannot get a certificate from https:\/\/127\.0\.0\.1:\d+\/dir: Cannot reach/,
    );
    expect((await fetch(`${s.url}/.well-known/ischedule?action=capabilities`)).status).toBe(200);
    // /readyz warns (200, status warn) while the orders fail.
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
    const report = (await ready.json()) as {
      status: string;
      checks: Record<string, { status: string; output?: string }[]>;
    };
    expect(report.status).toBe("warn");
    expect(report.checks["certificate:acme"]?.[0]).toMatchObject({
      status: "warn",
      output: expect.stringContaining("Cannot get a certificate from https://127.0.0.1:"),
    });
  }, 60_000);

  test("on a public address without any certificate it refuses to start, in one line", async () => {
    const setup = { data: dataDir(), endpointPort: await freePort(), httpPort: await freePort() };
    const down = `https://127.0.0.1:${await freePort()}/dir`;
    const args = acmeArgs({ ...setup, directoryUrl: down, caFile: "/etc/ssl/certs/ca-certificates.crt" });
    args[args.indexOf("--listen") + 1] = `0.0.0.0:${setup.endpointPort}`;
    const exited = await serveProcess(args, { timeoutMs: 60_000 });
    if ("process" in exited) {
      stops.push(() => exited.stop());
      throw new Error("serve started");
    }
    expect(exited.exitCode).toBe(1);
    const last = exited.stderr.trim().split("\n").at(-1)!;
    expect(last).toStartWith("isched: Cannot start: no certificate for isched.example.test (Cannot reach");
  }, 60_000);
});

describe("--acme-* flags", () => {
  test("--tls-cert/--tls-key win over --acme-email, with a warning", async () => {
    const ca = createTestCa();
    const cert = ca.issue(["localhost", "127.0.0.1"]);
    const data = dataDir();
    const s = await serving([
      "--data",
      data,
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--acme-email",
      "admin@example.test",
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
    ]);
    try {
      expect(s.stdout()).toContain(
        "warning: --acme-email is not used: --tls-cert/--tls-key give the certificate",
      );
      expect(await peerSerial(s.port, ca.caCertPem)).toBe(new X509Certificate(cert.certPem).serialNumber);
      expect(existsSync(join(data, "acme"))).toBe(false);
    } finally {
      ca.remove();
    }
  }, 60_000);

  const refused = async (args: string[], env: Record<string, string> = {}) => {
    const r = await serveProcess(
      ["--data", dataDir(), "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", ...args],
      { env },
    );
    if ("process" in r) {
      stops.push(() => r.stop());
      throw new Error("serve started");
    }
    return { code: r.exitCode, text: r.stderr.trim() };
  };
  test("each mistake is one line naming its flag or variable, exit 2", async () => {
    expect(await refused(["--acme-email", "nobody"])).toEqual({
      code: 2,
      text: 'isched: --acme-email: "nobody" is not an email address',
    });
    expect(await refused([], { ISCHED_ACME_EMAIL: "nobody" })).toMatchObject({ code: 2 });
    expect((await refused([], { ISCHED_ACME_EMAIL: "nobody" })).text).toContain("ISCHED_ACME_EMAIL");
    expect(await refused(["--hostname", "isched.example.test"])).toMatchObject({
      code: 2,
      text: expect.stringContaining("--hostname needs --acme-email"),
    });
    expect(
      await refused(["--acme-email", "a@example.test", "--acme-directory", "http://ca.example.test/dir"]),
    ).toMatchObject({ code: 2, text: expect.stringContaining("--acme-directory") });
    expect(await refused(["--acme-email", "a@example.test", "--hostname", "1.2.3.4"])).toMatchObject({
      code: 2,
      text: expect.stringContaining('--hostname: "1.2.3.4" is not a DNS name'),
    });
  }, 60_000);
});
