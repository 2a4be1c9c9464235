/** keygen, dkim sign and dkim verify as an administrator runs them, with openssl and a real DNS server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isched } from "../support/cli.ts";
import { FIXTURES } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): { code: number; out: Buffer; err: string } {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout, err: r.stderr.toString() };
}

/** The strings of the zone-file line keygen printed, unescaped. */
function zoneStrings(stdout: string): { name: string; strings: string[] } {
  const line = stdout.split("\n").find((l) => / IN TXT /.test(l));
  if (!line) throw new Error(`no TXT line in:\n${stdout}`);
  const name = line.split(" ")[0]!.replace(/\.$/, "");
  const strings = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, "$1"));
  return { name, strings };
}

const REQUEST = [
  "POST /.well-known/ischedule HTTP/1.1",
  "Host: cal.other.test",
  "iSchedule-Version: 1.0",
  "iSchedule-Message-ID: 5f0c1e7a-1111-4a4a-8b8b-0c0c0c0c0c0c",
  "Originator: mailto:alice@cli.test",
  "Recipient: mailto:bob@other.test",
  "Recipient: mailto:carol@other.test",
  "Content-Type: text/calendar; component=VEVENT; method=REQUEST",
  "Cache-Control: no-cache, no-transform",
  "",
  "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:cli-1\r\nDTSTAMP:20261125T120000Z\r\nORGANIZER:mailto:alice@cli.test\r\nATTENDEE:mailto:bob@other.test\r\nATTENDEE:mailto:carol@other.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
].join("\r\n");

describe.each(["rsa", "ed25519"] as const)("isched keygen --type %s", (type) => {
  let out: ReturnType<typeof isched>;
  let keyFile: string;
  let pubFile: string;
  let dns: RunningDnsmasq | undefined;
  const selector = `k${type}`;

  beforeAll(() => {
    out = isched(["keygen", "--domain", "cli.test", "--selector", selector, "--type", type, "--out", dir]);
    keyFile = join(dir, `cli.test.${selector}.key.pem`);
    pubFile = join(dir, `cli.test.${selector}.pub.pem`);
  });
  afterAll(async () => dns?.stop());

  test("says plainly when the key type is one CalendarServer and Cyrus cannot verify", () => {
    if (type === "rsa") expect(out.stderr).toBe("");
    else
      expect(out.stderr).toBe(
        "isched: note: CalendarServer and Cyrus verify only RSA signatures: they will refuse requests signed with this Ed25519 key. Use it only with peers known to verify ed25519-sha256; RSA 2048 (the default) works with every peer.\n",
      );
  });

  test("writes the private key with mode 0600 and prints the record", () => {
    expect(out.exitCode).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(out.stdout).toContain(`${selector}._domainkey.cli.test. 3600 IN TXT`);
    expect(out.stdout).toContain(`/.well-known/domainkey/cli.test/${selector}`);
  });

  test("openssl accepts the key pair, and p= is the public key openssl derives", () => {
    const check = openssl(
      type === "rsa"
        ? ["rsa", "-in", keyFile, "-check", "-noout"]
        : ["pkey", "-in", keyFile, "-noout", "-text"],
    );
    expect(check.code).toBe(0);
    if (type === "rsa") {
      expect(check.out.toString()).toContain("RSA key ok");
      expect(openssl(["rsa", "-in", keyFile, "-noout", "-text"]).out.toString()).toContain(
        "Private-Key: (2048 bit",
      );
    }
    const der = openssl(["pkey", "-in", keyFile, "-pubout", "-outform", "DER"]).out;
    const pubDer = openssl(["pkey", "-pubin", "-in", pubFile, "-outform", "DER"]).out;
    expect(pubDer.equals(der)).toBe(true);
    const p = zoneStrings(out.stdout).strings.join("").replace(/.*p=/, "");
    // RSA: the SubjectPublicKeyInfo; Ed25519: the raw 32-byte key (RFC 8463), the SPKI's last 32 bytes.
    expect(p).toBe(
      type === "rsa" ? der.toString("base64") : der.subarray(der.length - 32).toString("base64"),
    );
  });

  test("refuses to overwrite without --force", () => {
    const again = isched([
      "keygen",
      "--domain",
      "cli.test",
      "--selector",
      selector,
      "--type",
      type,
      "--out",
      dir,
    ]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toBe(`isched: ${keyFile} exists; use --force to overwrite it\n`);
  });

  test("its TXT record, served by a real DNS server, verifies what dkim sign signed", async () => {
    const { name, strings } = zoneStrings(out.stdout);
    if (type === "rsa") expect(strings.length).toBeGreaterThan(1);
    for (const s of strings) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(255);
    dns = await startDnsmasq({ zones: ["cli.test"], txt: [{ name, strings }] });
    const requestFile = join(dir, `request-${type}.http`);
    writeFileSync(requestFile, REQUEST);
    const signedFile = join(dir, `signed-${type}.http`);
    const signed = isched([
      "dkim",
      "sign",
      "--key",
      keyFile,
      "--domain",
      "cli.test",
      "--selector",
      selector,
      "--out",
      signedFile,
      requestFile,
    ]);
    expect(signed.exitCode).toBe(0);
    const server = `${dns.server.host}:${dns.server.port}`;
    const verify = isched(["dkim", "verify", "--dns-server", server, signedFile]);
    expect(verify.stderr).toBe("");
    expect(verify.exitCode).toBe(0);
    expect(verify.stdout).toStartWith(
      `valid: d=cli.test s=${selector} a=${type === "rsa" ? "rsa-sha256" : "ed25519-sha256"}`,
    );
    expect(verify.stdout).toContain("key from dns/txt");

    const tampered = join(dir, `tampered-${type}.http`);
    writeFileSync(tampered, readFileSync(signedFile, "latin1").replace("UID:cli-1", "UID:cli-2"), "latin1");
    const bad = isched(["dkim", "verify", "--dns-server", server, tampered]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toStartWith("invalid (body-hash-mismatch): ");
  });
});

describe("isched dkim verify", () => {
  const v1 = join(FIXTURES, "v1-invite-rsa.http");
  const pub = join(FIXTURES, "test-rsa-2048.pub.pem");

  test("verifies the draft A.1 vector with --pub-key at --at", () => {
    const r = isched(["dkim", "verify", "--pub-key", pub, "--at", "1268069860", v1]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("valid: d=example.com s=jupiter a=rsa-sha256 c=ischedule-relaxed/simple");
  });

  test("says the signature expired without --at", () => {
    const r = isched(["dkim", "verify", "--pub-key", pub, v1]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toStartWith("invalid (signature-expired): The signature expired at x=1283918400");
  });

  test("reads the request from standard input with -", () => {
    const r = isched(["dkim", "verify", "--pub-key", pub, "--at", "1268069860", "-"], {
      stdin: readFileSync(v1),
    });
    expect(r.exitCode).toBe(0);
  });

  test("a missing file and a file that is not a request are one-line failures", () => {
    const missing = isched(["dkim", "verify", join(dir, "nope.http")]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe(
      `isched: cannot read the request file ${join(dir, "nope.http")}: no such file\n`,
    );
    const junk = join(dir, "junk.http");
    writeFileSync(junk, "hello world\r\n\r\n");
    const r = isched(["dkim", "verify", junk]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(
      `isched: ${junk} is not an HTTP request: line 1 is not a request line (METHOD TARGET HTTP/1.1): "hello world"\n`,
    );
  });
});

describe("isched dkim sign", () => {
  test("refuses a request without Originator, naming it", () => {
    const file = join(dir, "no-originator.http");
    writeFileSync(file, REQUEST.replace("Originator: mailto:alice@cli.test\r\n", ""));
    const r = isched([
      "dkim",
      "sign",
      "--key",
      join(FIXTURES, "test-rsa-2048.pem"),
      "--domain",
      "cli.test",
      "--selector",
      "s",
      file,
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`isched: ${file}: cannot sign: the request has no Originator header\n`);
  });

  test("refuses a key file that is not a private key", () => {
    const file = join(dir, "req.http");
    writeFileSync(file, REQUEST);
    const r = isched([
      "dkim",
      "sign",
      "--key",
      join(FIXTURES, "test-rsa-2048.pub.pem"),
      "--domain",
      "cli.test",
      "--selector",
      "s",
      file,
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("does not hold a PEM private key");
  });

  test("signs to standard output, DKIM-Signature first, leaving the rest byte for byte", () => {
    const file = join(dir, "req2.http");
    writeFileSync(file, REQUEST);
    const r = isched([
      "dkim",
      "sign",
      "--key",
      join(FIXTURES, "test-rsa-2048.pem"),
      "--domain",
      "cli.test",
      "--selector",
      "s",
      "--expire",
      "600",
      file,
    ]);
    expect(r.exitCode).toBe(0);
    const [requestLine, signatureLine, ...rest] = r.stdout.split("\r\n");
    expect(requestLine).toBe("POST /.well-known/ischedule HTTP/1.1");
    expect(signatureLine).toMatch(
      /^DKIM-Signature: v=1; a=rsa-sha256; d=cli.test; s=s; c=ischedule-relaxed\/simple; q=dns\/txt:http\/well-known; t=(\d+); x=(\d+); h=Originator:Recipient:Content-Type:iSchedule-Version:iSchedule-Message-ID; bh=/,
    );
    const [, t, x] = /t=(\d+); x=(\d+)/.exec(signatureLine!)!;
    expect(Number(x) - Number(t)).toBe(600);
    expect(rest.join("\r\n")).toBe(REQUEST.split("\r\n").slice(1).join("\r\n"));
  });
});
