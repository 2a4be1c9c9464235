/** `isched keygen`: a DKIM key pair and the records to publish for it. */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { domainFlag, selectorFlag } from "../../config/shared-flags.ts";
import { txtZoneLine } from "../../dkim/dns-record.ts";
import { dnsKeyName } from "../../dkim/key-source.ts";
import { DEFAULT_RSA_BITS, generateDkimKey } from "../../dkim/keygen.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { describeFsError } from "../io.ts";

/**
 * No deployed iSchedule peer verifies ed25519-sha256 (RFC 8463): CalendarServer's dkim.py knows
 * rsa-sha1 and rsa-sha256 only, Cyrus's libopendkim builds rarely have Ed25519 (docs/interop.md).
 */
const ED25519_NOTE =
  "CalendarServer and Cyrus verify only RSA signatures: they will refuse requests signed with this Ed25519 key. Use it only with peers known to verify ed25519-sha256; RSA 2048 (the default) works with every peer.";

export const keygenCommand = defineCommand({
  name: "keygen",
  summary: "Make a DKIM key pair and print the DNS TXT record to publish",
  usage: "keygen --domain D --selector S [--type rsa|ed25519] [--bits N] [--out DIR] [--force]",
  description: [
    "Writes DIR/D.S.key.pem (the private key, mode 0600) and DIR/D.S.pub.pem, then prints the",
    "TXT record for S._domainkey.D as a zone-file line (strings split at 255 bytes) and the body",
    "to serve at /.well-known/domainkey/D/S for http/well-known key retrieval.",
  ].join("\n"),
  flags: {
    domain: domainFlag("the signing domain (d=)"),
    selector: selectorFlag("the selector (s=)"),
    type: flag.oneOf(["rsa", "ed25519"], {
      help: "key type: rsa works with every peer; CalendarServer and Cyrus cannot verify ed25519",
      defaultValue: "rsa",
    }),
    bits: flag.optionalInt({
      help: `RSA modulus length [default: ${DEFAULT_RSA_BITS}]`,
      min: 1024,
      max: 8192,
    }),
    out: flag.stringWithDefault({ help: "folder for the key files", placeholder: "DIR", defaultValue: "." }),
    // Typed each time: an environment that overwrites keys would do it to every keygen.
    force: flag.bool({ help: "overwrite existing key files", env: false }),
  },
  positionals: { min: 0, max: 0 },
  async run({ flags }) {
    if (!flags.domain) throw new UsageError("keygen needs --domain");
    if (!flags.selector) throw new UsageError("keygen needs --selector");
    if (flags.type === "ed25519" && flags.bits !== undefined)
      throw new UsageError("--bits applies to RSA keys only");
    if (flags.bits !== undefined && flags.bits % 8 !== 0)
      throw new UsageError("flag --bits: use a multiple of 8 (e.g. 2048)");
    const base = join(flags.out, `${flags.domain}.${flags.selector}`);
    const privatePath = `${base}.key.pem`;
    const publicPath = `${base}.pub.pem`;
    for (const p of [privatePath, publicPath]) {
      if (existsSync(p) && !flags.force) throw new CommandError(`${p} exists; use --force to overwrite it`);
    }
    const key = generateDkimKey(flags.type, flags.bits ?? DEFAULT_RSA_BITS);
    try {
      mkdirSync(flags.out, { recursive: true });
      writeFileSync(privatePath, key.privateKeyPem, { mode: 0o600 });
      writeFileSync(publicPath, key.publicKeyPem, { mode: 0o644 });
    } catch (e) {
      throw new CommandError(`cannot write the key files in ${flags.out}: ${describeFsError(e)}`);
    }
    if (key.type === "ed25519") process.stderr.write(`isched: note: ${ED25519_NOTE}\n`);
    const name = dnsKeyName(flags.domain, flags.selector);
    process.stdout.write(
      [
        `Wrote ${privatePath} (private key, mode 0600) and ${publicPath} (${key.type === "rsa" ? `RSA ${key.bits} bits` : "Ed25519"}).`,
        "",
        `Publish this TXT record at ${name}:`,
        txtZoneLine(name, key.record),
        "",
        `Or serve this text/plain body at https://<key server>/.well-known/domainkey/${flags.domain}/${flags.selector}:`,
        key.record,
        "",
      ].join("\n"),
    );
    return 0;
  },
});
