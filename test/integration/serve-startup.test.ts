/**
 * Starting `isched serve` (the compiled binary) as an operator would, with the mistakes operators
 * make: every bad file or flag is one line naming the flag and the file, exit code 2, and nothing is
 * written (no data folder, no DKIM key); a second isched on ports already in use stops with one line
 * and exit code 1 instead of sharing them; and the data folder ends up private whatever it was before
 * (0700, files 0600), or is refused when it belongs to another user.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ED_PUBLIC, RSA_PRIVATE } from "../support/dkim-fixtures.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { type ExitedServe, running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

let dir: string;
let ca: TestCa;
let pair: { certFile: string; keyFile: string };
let other: { certFile: string; keyFile: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-startup-"));
  ca = createTestCa();
  pair = ca.issue(["isched.test"]);
  other = ca.issue(["other.test"]);
  writeFileSync(join(dir, "pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "notes.txt"), "not a certificate\n");
  writeFileSync(join(dir, "rsa.key"), RSA_PRIVATE);
  writeFileSync(join(dir, "accounts"), "no colon on this line\n");
});

afterAll(() => {
  ca?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function exited(s: ServeProcess | ExitedServe): ExitedServe {
  if (!("exitCode" in s)) {
    void s.stop();
    throw new Error(`isched serve started:\n${s.stdout()}`);
  }
  return s;
}

async function refused(args: string[]): Promise<ExitedServe & { data: string }> {
  const data = join(dir, `data-${crypto.randomUUID()}`);
  const base = ["--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", "--data", data];
  return { ...exited(await serveProcess([...base, ...args])), data };
}

describe("bad start-up input is one line naming the flag and the file, exit 2, before anything is written", () => {
  const cases: [string, () => string[], () => string][] = [
    [
      "--tls-cert holding a public key",
      () => ["--tls-cert", join(dir, "pub.pem"), "--tls-key", pair.keyFile],
      () => `--tls-cert ${join(dir, "pub.pem")}: not a PEM certificate (it holds a PUBLIC KEY)`,
    ],
    [
      "--tls-key holding a certificate",
      () => ["--tls-cert", pair.certFile, "--tls-key", pair.certFile],
      () => `--tls-key ${pair.certFile}: not a PEM private key (it holds a CERTIFICATE)`,
    ],
    [
      "--tls-key of another certificate",
      () => ["--tls-cert", pair.certFile, "--tls-key", other.keyFile],
      () =>
        `--tls-key ${other.keyFile}: not the private key of the certificate in --tls-cert ${pair.certFile}`,
    ],
    [
      "--ca-file holding text",
      () => ["--ca-file", join(dir, "notes.txt")],
      () => `--ca-file ${join(dir, "notes.txt")}: not a PEM certificate (it holds no PEM block)`,
    ],
    [
      "--dkim-key holding a public key",
      () => ["--dkim-key", join(dir, "pub.pem"), "--dkim-selector", "s1"],
      () => `--dkim-key ${join(dir, "pub.pem")}: not a PEM private key (it holds a PUBLIC KEY)`,
    ],
    [
      "--dkim-key without --dkim-selector",
      () => ["--dkim-key", join(dir, "rsa.key")],
      () => "--dkim-key needs --dkim-selector",
    ],
    [
      "--peer key= a missing file",
      () => ["--peer", `peer.test=https://peer.test/ischedule,key=${join(dir, "missing.pem")}`],
      () => `--peer peer.test: cannot read key=${join(dir, "missing.pem")} (ENOENT)`,
    ],
    [
      "--smtp-auth-file with a bad line",
      () => ["--smtp-listen", "127.0.0.1:0", "--smtp-auth-file", join(dir, "accounts")],
      () => `--smtp-auth-file ${join(dir, "accounts")} line 1: expected user:secret`,
    ],
    [
      "--deliver webhook without --webhook-secret-file",
      () => ["--deliver", "webhook:https://hooks.test/isched"],
      () => "--deliver webhook:...: needs --webhook-secret-file",
    ],
    [
      "--trust unsigned from every IPv4 address (an open relay)",
      () => ["--trust", "*=unsigned:0.0.0.0/0"],
      () =>
        "--trust *=unsigned:0.0.0.0/0: unsigned requests from every IPv4 address would let anyone speak for every domain without a signature; list your own servers' addresses",
    ],
    [
      "--trust unsigned from ranges that add up to every IPv6 address",
      () => ["--trust", "example.org=unsigned:::/1,8000::/1"],
      () =>
        "--trust example.org=unsigned:::/1,8000::/1: unsigned requests from every IPv6 address would let anyone speak for example.org without a signature; list your own servers' addresses",
    ],
    [
      "--trusted-proxy covering every address",
      () => ["--trusted-proxy", "0.0.0.0/0"],
      () => 'flag --trusted-proxy: "0.0.0.0/0" covers every address: anyone could name any client address',
    ],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const r = await refused(args());
      expect({ exitCode: r.exitCode, stderr: r.stderr, stdout: r.stdout }).toEqual({
        exitCode: 2,
        stderr: `isched: ${message()}\n`,
        stdout: "",
      });
      expect(existsSync(r.data)).toBe(false);
    });
  }
});

describe("one gateway per port", () => {
  let first: ServeProcess;
  let ports: { listen: number; console: number };

  beforeAll(async () => {
    ports = { listen: await freePort(), console: await freePort() };
    first = running(
      await serveProcess([
        "--listen",
        `127.0.0.1:${ports.listen}`,
        "--console",
        `127.0.0.1:${ports.console}`,
        "--data",
        join(dir, "first"),
      ]),
    );
  });

  afterAll(async () => {
    await first?.stop();
  });

  /** Starts another isched on these addresses (with a data folder of its own); it must not start. */
  async function another(listen: string, console_: string, ...extra: string[]) {
    const data = join(dir, `data-${crypto.randomUUID()}`);
    const r = exited(
      await serveProcess(["--listen", listen, "--console", console_, ...extra, "--data", data]),
    );
    return { exitCode: r.exitCode, stderr: r.stderr, wroteData: existsSync(data) };
  }

  test("a second isched serve on the same ports exits 1 with one line, before writing anything", async () => {
    expect(await another(`127.0.0.1:${ports.listen}`, `127.0.0.1:${ports.console}`)).toEqual({
      exitCode: 1,
      stderr: `isched: --listen 127.0.0.1:${ports.listen}: the address is in use (is another isched or server running there?)\n`,
      wroteData: false,
    });
    // The first one still answers every request.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${first.url}/.well-known/ischedule?action=capabilities`);
      expect(res.status).toBe(200);
    }
  });

  test("a second isched serve whose console port is taken exits 1 naming --console", async () => {
    expect(await another("127.0.0.1:0", `127.0.0.1:${ports.console}`)).toEqual({
      exitCode: 1,
      stderr: `isched: --console 127.0.0.1:${ports.console}: the address is in use (is another isched or server running there?)\n`,
      wroteData: false,
    });
  });

  test("the endpoint and the console on one port is refused", async () => {
    const port = await freePort();
    expect(await another(`127.0.0.1:${port}`, `0.0.0.0:${port}`, "--console-insecure")).toEqual({
      exitCode: 1,
      stderr: `isched: --console 0.0.0.0:${port}: the same port as --listen 127.0.0.1:${port}\n`,
      wroteData: false,
    });
  });
});

describe("the data folder is private", () => {
  const mode = (path: string) => statSync(path).mode & 0o777;

  test("a pre-existing 0755 folder becomes 0700, and the database, its WAL and the API token 0600", async () => {
    const data = join(dir, "state-0755");
    mkdirSync(data, { mode: 0o755 });
    // Files an older isched or another tool left readable.
    writeFileSync(join(data, "api-token"), "old-token-for-tests\n", { mode: 0o644 });
    const s = running(
      await serveProcess(["--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", "--data", data]),
    );
    try {
      expect(mode(data)).toBe(0o700);
      const files = readdirSync(data).sort();
      expect(files).toEqual(
        expect.arrayContaining(["api-token", "isched.db", "isched.db-shm", "isched.db-wal"]),
      );
      for (const f of files) expect({ file: f, mode: mode(join(data, f)) }).toEqual({ file: f, mode: 0o600 });
    } finally {
      await s.stop();
    }
  });

  test.skipIf(process.getuid?.() !== 0)(
    "a folder that belongs to another user is refused, exit 2",
    async () => {
      const data = join(dir, "someone-else");
      mkdirSync(data, { mode: 0o755 });
      chownSync(data, 65534, 65534);
      const r = exited(
        await serveProcess(["--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", "--data", data]),
      );
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toBe(
        `isched: --data ${data}: the folder belongs to uid 65534, not to the user isched runs as (uid 0); run isched as its owner, or give it a folder of its own\n`,
      );
      expect(readdirSync(data)).toEqual([]);
    },
  );
});

describe("risky settings are said at start-up", () => {
  const start = async (...extra: string[]) => {
    const s = running(
      await serveProcess([
        ...[
          "--listen",
          "127.0.0.1:0",
          "--console",
          "127.0.0.1:0",
          "--data",
          join(dir, `risky-${crypto.randomUUID()}`),
        ],
        ...extra,
      ]),
    );
    await s.stop();
    return s.stdout();
  };

  test("unsigned trust for loopback without TLS is a warning, unless --trusted-proxy says where clients come from", async () => {
    const warning =
      "warning: --trust peer.test=unsigned:127.0.0.1 trusts unsigned requests from loopback, and the endpoint has no TLS";
    expect(await start("--trust", "peer.test=unsigned:127.0.0.1")).toContain(warning);
    expect(
      await start("--trust", "peer.test=unsigned:127.0.0.1", "--trusted-proxy", "127.0.0.1"),
    ).not.toContain("trusts unsigned requests from loopback");
    expect(await start("--trust", "peer.test=unsigned:10.1.2.3")).not.toContain(
      "trusts unsigned requests from loopback",
    );
  });
});
