import { expect, test } from "bun:test";
import pkg from "../../package.json" with { type: "json" };
import { isched } from "../support/cli.ts";

test("--version prints the package version", () => {
  const r = isched(["--version"]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout.trim()).toBe(`isched ${pkg.version}`);
});

test("--help lists every command; help COMMAND shows its flags", () => {
  const r = isched(["--help"]);
  expect(r.exitCode).toBe(0);
  for (const c of ["keygen", "dkim sign", "dkim verify"]) expect(r.stdout).toContain(c);
  const h = isched(["help", "dkim", "verify"]);
  expect(h.exitCode).toBe(0);
  expect(h.stdout).toContain("--dns-server HOST[:PORT]");
  expect(isched(["keygen", "--help"]).stdout).toContain("--selector SELECTOR");
});

const usageErrors: [string[], string][] = [
  [
    ["keygen", "--domian", "example.com"],
    "isched: unknown flag --domian for 'keygen' (did you mean --domain?)",
  ],
  [["keygen", "--domain"], "isched: flag --domain needs a value (DOMAIN)"],
  [
    ["keygen", "--domain", "a.com", "--selector", "s", "--bits", "many"],
    'isched: flag --bits: "many" is not a whole number',
  ],
  [
    ["keygen", "--domain", "a.com", "--selector", "s", "--bits", "512"],
    "isched: flag --bits: 512 is outside 1024..8192",
  ],
  [
    ["keygen", "--domain", "a.com", "--selector", "s", "--type", "dsa"],
    'isched: flag --type: "dsa" is not one of rsa, ed25519',
  ],
  [
    ["keygen", "--domain", "not a domain", "--selector", "s"],
    'isched: flag --domain: "not a domain" is not a domain name',
  ],
  [
    ["keygen", "--domain", "a.com", "--domain", "b.com", "--selector", "s"],
    "isched: flag --domain is given more than once",
  ],
  [["keygen", "--selector", "s"], "isched: keygen needs --domain"],
  [["kegen"], "isched: unknown command 'kegen' (did you mean 'keygen'?)"],
  [["dkim"], "isched: 'dkim' needs a subcommand: sign, verify"],
  [["dkim", "verfy", "x"], "isched: unknown command 'dkim verfy' (did you mean 'dkim verify'?)"],
  [
    ["dkim", "verify"],
    "isched: 'dkim verify' needs 1 argument(s): isched dkim verify [--pub-key FILE] [--dns-server HOST:PORT] [--at UNIX_TIME] REQUEST",
  ],
  [["dkim", "verify", "--at", "yesterday", "x"], 'isched: flag --at: "yesterday" is not a whole number'],
  [
    ["dkim", "verify", "--dns-server", "1.2.3.4:99999", "x"],
    "isched: flag --dns-server: port 99999 is outside 1..65535",
  ],
  [["serve", "--verify-deadline", "0s"], "isched: flag --verify-deadline: 0s is outside 1s..2m"],
  [
    ["serve", "--verify-deadline", "soon"],
    'isched: flag --verify-deadline: "soon" is not a duration (examples: 30s, 5m, 1h30m, 2d)',
  ],
  [["serve", "--max-key-fetches", "0"], "isched: flag --max-key-fetches: 0 is outside 1..10000"],
  [["serve", "--max-signature-age", "30s"], "isched: flag --max-signature-age: 30s is outside 1m..1d"],
  [["serve", "--max-signature-age", "2d"], "isched: flag --max-signature-age: 2d is outside 1m..1d"],
  [
    ["serve", "--max-key-fetches-per-domain", "-1"],
    "isched: flag --max-key-fetches-per-domain: -1 is outside 1..10000",
  ],
  [["serve", "--alignment", "loose"], 'isched: flag --alignment: "loose" is not one of relaxed, strict'],
  [
    ["serve", "--domain", "org.test", "--trust", "sub.org.test=dkim,signers=cal.peer.test"],
    "isched: --trust sub.org.test: signers= on sub.org.test: org.test is served by this server, and only this server signs for it",
  ],
  [
    ["serve", "--domain", "org.test", "--trust", "peer.test=dkim,signers=mail.org.test"],
    "isched: --trust peer.test: signers=: mail.org.test is under org.test, a domain served by this server, not a peer's signer",
  ],
  [
    ["serve", "--trust", "peer.test=dkim,signers=co.uk"],
    "isched: --trust peer.test: signers=: co.uk is a public suffix, which cannot sign for anyone",
  ],
  [
    ["serve", "--trust", "*=dkim,signers=cal.peer.test"],
    "isched: --trust *: signers= needs a domain: on * they could speak for every domain",
  ],
  [
    ["serve", "--trust", "peer.test=deny,signers=cal.peer.test"],
    "isched: --trust peer.test=deny: signers= does not go with deny",
  ],
];
for (const [args, message] of usageErrors) {
  test(`'isched ${args.join(" ")}' exits 2 with one line`, () => {
    const r = isched(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`${message}\n`);
    expect(r.stdout).toBe("");
  });
}
