/**
 * `isched validate`: what serve would check, without starting or writing anything, with the
 * effective configuration printed (sources, secrets redacted), run as a real process.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SCHEMA_VERSION } from "../../src/store/sqlite/migrations.ts";
import { runIsched } from "../support/binary-run.ts";
import { ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { running, serveProcess } from "../support/serve-process.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-validate-"));
  writeFileSync(join(dir, "pub.pem"), ED_PUBLIC);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fresh = () => join(dir, `data-${crypto.randomUUID()}`);
const base = (data: string, listen = "127.0.0.1:0") => [
  "--domain",
  "example.org",
  "--listen",
  listen,
  "--console",
  "127.0.0.1:0",
  "--data",
  data,
];

test("a valid configuration: the effective configuration with sources and redacted secrets, passes, exit 0, nothing written", async () => {
  const data = fresh();
  const r = await runIsched(["validate", ...base(data)], {
    env: { ISCHED_SMTP: "smtp://relay-user:hunter2@127.0.0.1:25" },
  });
  expect(r.stderr).toBe("");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/\n {2}--domain +example\.org +\(flag\)\n/);
  expect(r.stdout).toMatch(/\n {2}--smtp +smtp:\/\/relay-user:\*\*\*@127\.0\.0\.1:25 +\(env ISCHED_SMTP\)\n/);
  expect(r.stdout).toMatch(/\n {2}--max-recipients +100 +\(default\)\n/);
  expect(r.stdout).not.toContain("hunter2");
  expect(r.stdout).toContain("pass  configuration: every flag, variable and file it names is valid\n");
  expect(r.stdout).toContain(
    `pass  data folder ${data}: does not exist yet: start-up creates it (mode 0700)\n`,
  );
  expect(r.stdout).toContain("pass  database");
  expect(r.stdout).toMatch(/\n\d+ passed, \d+ warnings, 0 failed\n$/);
  expect(existsSync(data)).toBe(false);
});

test("a mistake is the line serve prints, as a failed check, exit 1; from a variable it names the variable", async () => {
  const pub = join(dir, "pub.pem");
  const data = fresh();
  const r = await runIsched(["validate", ...base(data), "--tls-cert", pub, "--tls-key", pub]);
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toContain(
    `fail  configuration: --tls-cert ${pub}: not a PEM certificate (it holds a PUBLIC KEY)\n`,
  );
  const serve = await serveProcess([...base(data), "--tls-cert", pub, "--tls-key", pub]);
  expect("exitCode" in serve && serve.stderr).toBe(
    `isched: --tls-cert ${pub}: not a PEM certificate (it holds a PUBLIC KEY)\n`,
  );

  const env = await runIsched(["validate", ...base(data)], { env: { ISCHED_DELIVER: "imip" } });
  expect(env.exitCode).toBe(1);
  expect(env.stdout).toContain("fail  configuration: ISCHED_DELIVER (--deliver) imip: needs --smtp\n");
  expect(existsSync(data)).toBe(false);
});

test("an address in use fails; the one the gateway of this data folder holds is a warning", async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = await runIsched(["validate", ...base(fresh(), `127.0.0.1:${port}`)]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      `fail  addresses: --listen 127.0.0.1:${port}: the address is in use (is another isched or server running there?)\n`,
    );
  } finally {
    blocker.close();
  }

  const data = fresh();
  const s = running(await serveProcess(base(data)));
  try {
    const r = await runIsched(["validate", ...base(data, `127.0.0.1:${s.port}`)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(
      `warn  addresses: --listen 127.0.0.1:${s.port}: the address is in use, by the isched running on ${data} (pid ${s.process.pid})\n`,
    );
    expect(r.stdout).toMatch(
      new RegExp(
        `pass {2}database \\S+: schema ${SCHEMA_VERSION}, 0 messages, 1 DKIM keys; in use by isched pid \\d+\n`,
      ),
    );
    expect(r.stdout).toMatch(/pass {2}DKIM key of example\.org: selector is\d{6} signs \(rsa-sha256\)\n/);
  } finally {
    await s.stop();
  }
});

test("a data folder others can read is a warning saying what start-up will change; a newer database fails", async () => {
  const data = fresh();
  const s = running(await serveProcess(base(data)));
  await s.stop();
  chmodSync(data, 0o755);
  const open = await runIsched(["validate", ...base(data)]);
  expect(open.exitCode).toBe(0);
  expect(open.stdout).toContain(
    `warn  data folder ${data}: readable by others; start-up will make ${data} private (mode 0755 to 0700)\n`,
  );
  expect(statSync(data).mode & 0o777).toBe(0o755);

  const db = new Database(join(data, "isched.db"));
  db.run("PRAGMA user_version = 42");
  db.close();
  const newer = await runIsched(["validate", ...base(data)]);
  expect(newer.exitCode).toBe(1);
  expect(newer.stdout).toMatch(
    new RegExp(
      `fail {2}database \\S+: it was written by a newer isched \\(schema 42\\), and this isched \\S+ knows schema ${SCHEMA_VERSION} at most`,
    ),
  );
});

test("--json gives the configuration and every check; a stray ISCHED_ variable is a warning", async () => {
  const data = fresh();
  mkdirSync(data, { mode: 0o700 });
  const r = await runIsched(["validate", ...base(data), "--json"], { env: { ISCHED_LISTN: "0.0.0.0:443" } });
  expect(r.exitCode).toBe(0);
  const out = JSON.parse(r.stdout) as {
    configuration: { flag: string; value: string; from: string }[];
    checks: { id: string; status: string; subject: string; detail: string; fix?: string }[];
  };
  expect(out.configuration.find((c) => c.flag === "--domain")).toEqual({
    flag: "--domain",
    value: "example.org",
    from: "flag",
  });
  expect(out.checks.map((c) => c.id)).toEqual(
    expect.arrayContaining(["configuration", "addresses", "data-folder", "database"]),
  );
  expect(out.checks.find((c) => c.id === "environment")).toEqual({
    id: "environment",
    status: "warn",
    subject: "ISCHED_LISTN",
    detail: "set, but no flag's variable: ignored",
    fix: "did you mean ISCHED_LISTEN?",
  });
});
