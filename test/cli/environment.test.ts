/**
 * Environment twins: every flag can be set as ISCHED_NAME (systemd EnvironmentFile=, containers); the
 * command line wins; a mistake in a variable names the variable; help lists both names.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isched } from "../support/cli.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "isched-env-"));
  dirs.push(d);
  return d;
};

test("a flag's ISCHED_ variable sets it when the flag is not given", () => {
  const out = tempDir();
  const r = isched(["keygen", "--selector", "s1", "--type", "ed25519"], {
    env: { ISCHED_DOMAIN: "example.org", ISCHED_OUT: out },
  });
  expect(r.stderr).not.toContain("isched: ISCHED_");
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain("s1._domainkey.example.org.");
  expect(readdirSync(out).sort()).toEqual(["example.org.s1.key.pem", "example.org.s1.pub.pem"]);
});

test("the command line wins over the environment", () => {
  const out = tempDir();
  const r = isched(
    ["keygen", "--domain", "example.com", "--selector", "s1", "--out", out, "--type", "ed25519"],
    {
      env: { ISCHED_DOMAIN: "example.org", ISCHED_SELECTOR: "other" },
    },
  );
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain("s1._domainkey.example.com.");
  expect(r.stdout).not.toContain("example.org");
});

test("a bad value in a variable is one line naming the variable and its flag, exit 2", () => {
  const r = isched(["keygen", "--domain", "example.org", "--selector", "s1"], {
    env: { ISCHED_BITS: "512" },
  });
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toBe("isched: ISCHED_BITS (--bits): 512 is outside 1024..8192\n");
  const b = isched(["keygen", "--domain", "example.org", "--selector", "s1"], {
    env: { ISCHED_TYPE: "dsa" },
  });
  expect(b.stderr).toBe('isched: ISCHED_TYPE (--type): "dsa" is not one of rsa, ed25519\n');
});

test("an empty variable counts as unset", () => {
  const r = isched(["keygen", "--selector", "s1"], { env: { ISCHED_DOMAIN: "" } });
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toBe("isched: keygen needs --domain\n");
});

test("confirmations have no twin: ISCHED_FORCE does not make keygen overwrite a key", () => {
  const out = tempDir();
  const args = ["keygen", "--domain", "example.org", "--selector", "s1", "--out", out, "--type", "ed25519"];
  expect(isched(args).exitCode).toBe(0);
  const again = isched(args, { env: { ISCHED_FORCE: "true" } });
  expect(again.exitCode).toBe(1);
  expect(again.stderr).toContain("exists; use --force to overwrite it");
});

test("help lists each flag with its variable", () => {
  const r = isched(["help", "serve"]);
  expect(r.stdout).toMatch(
    /--tls-cert FILE +TLS certificate chain \(PEM\) for the endpoint \[env ISCHED_TLS_CERT\]/,
  );
  expect(r.stdout).toContain("[env ISCHED_SMTP_RELAY]");
  expect(r.stdout).toContain(
    "Each flag can also be set by the environment variable shown with it; the command line wins.",
  );
  const k = isched(["help", "keygen"]);
  expect(k.stdout).toMatch(/--force +overwrite existing key files\n/);
});
