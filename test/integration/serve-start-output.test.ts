/**
 * What `isched serve` (the compiled binary) tells the operator at start-up: a domain no peer can look
 * up is said (at start-up and on the console's Overview), a new key's TXT record comes with the SRV
 * record beside it, and the effective configuration is printed with its sources and secrets redacted.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { printed, running, serveProcess } from "../support/serve-process.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-start-output-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = () => [
  "--listen",
  "127.0.0.1:0",
  "--console",
  "127.0.0.1:0",
  "--data",
  join(dir, `data-${crypto.randomUUID()}`),
];

test("serving localhost is said at start-up and on the Overview, and the SRV record is printed beside the TXT record", async () => {
  const args = base();
  const s = running(await serveProcess([...args, "--domain", "localhost"]));
  try {
    // The new key's records are printed after the start-up summary, in a write of their own.
    const out = await printed(s, /New DKIM key for localhost: publish these records:\n(?:.+\n){2}/);
    expect(out).toContain('warning: isched serves "localhost", a name no peer can look up');
    expect(out).toContain("Give --domain with your organisation's domain.");
    const block =
      /New DKIM key for localhost: publish these records:\n((?:.+\n)+)/.exec(out)?.[1]?.split("\n") ?? [];
    expect(block[0]).toBe("_ischedules._tcp.localhost. 3600 IN SRV 0 1 443 localhost.");
    expect(block).toContainEqual(
      expect.stringMatching(/^is\d{6}\._domainkey\.localhost\. 3600 IN TXT \( "v=DKIM1; k=rsa;/),
    );
    const token = readFileSync(join(args[5]!, "api-token"), "utf8").trim();
    const res = await fetch(`${s.consoleUrl}/api/v1/overview`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const overview = (await res.json()) as { problems: { id: string; text: string }[] };
    expect(overview.problems.map((p) => p.id)).toContain("local-domain");
  } finally {
    await s.stop();
  }
});

test("a real domain gets no such warning, and its SRV record names the domain on 443 until the console says otherwise", async () => {
  const s = running(await serveProcess([...base(), "--domain", "example.org"]));
  await s.stop();
  expect(s.stdout()).not.toContain("a name no peer can look up");
  expect(s.stdout()).toMatch(/_ischedules\._tcp\.example\.org\. 3600 IN SRV 0 1 443 \S+\.\n/);
});

test("start-up prints the flags given, where each came from, with URL passwords redacted", async () => {
  const s = running(
    await serveProcess([...base(), "--domain", "example.org"], {
      env: {
        ISCHED_SMTP: "smtp://bob:s3cret-pass@127.0.0.1:2525",
        ISCHED_DELIVER: "ischedule:http://cyrus:also-secret@127.0.0.1:8008/ischedule",
        ISCHED_DOMIAN: "typo.example",
      },
    }),
  );
  // The flag table and its warnings follow the summary: stop only once they are out.
  await printed(s, /ISCHED_DOMIAN is set/);
  await s.stop();
  const out = s.stdout();
  expect(out).toMatch(/\n {2}--domain +example\.org +\(flag\)\n/);
  expect(out).toMatch(/\n {2}--smtp +smtp:\/\/bob:\*\*\*@127\.0\.0\.1:2525 +\(env ISCHED_SMTP\)\n/);
  expect(out).toMatch(
    /--deliver +ischedule:http:\/\/cyrus:\*\*\*@127\.0\.0\.1:8008\/ischedule +\(env ISCHED_DELIVER\)/,
  );
  expect(out).toMatch(/and \d+ flags at their defaults/);
  expect(out).toContain(
    "warning: ISCHED_DOMIAN is set but is no flag's variable, so it is ignored (did you mean ISCHED_DOMAIN?)",
  );
  expect(`${out}${s.stderr()}`).not.toContain("s3cret-pass");
  expect(`${out}${s.stderr()}`).not.toContain("also-secret");
});
