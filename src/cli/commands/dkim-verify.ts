/** `isched dkim verify`: the verdict isched's endpoint would reach on a raw HTTP request file. */

import { flag } from "../../config/flags.ts";
import { dnsServerFlag } from "../../config/shared-flags.ts";
import { createNetworkKeyResolver } from "../../dkim/network-key-resolver.ts";
import { keyRecordFromFile } from "../../dkim/private-exchange-source.ts";
import { parseSignature } from "../../dkim/signature.ts";
import type { DkimVerdict } from "../../dkim/verdict.ts";
import { verifyRequest } from "../../dkim/verify.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { readRequestFile, readTextInput } from "../io.ts";

export const dkimVerifyCommand = defineCommand({
  name: "dkim verify",
  summary: "Verify the DKIM-Signature of a raw HTTP/1.1 request file",
  usage: "dkim verify [--pub-key FILE] [--dns-server HOST:PORT] [--at UNIX_TIME] REQUEST",
  description: [
    "Prints 'valid: ...' and exits 0, or 'invalid (REASON): ...' and exits 1. Without --pub-key the",
    "key is retrieved as the signature's q= says (dns/txt, http/well-known), as the endpoint does.",
  ].join("\n"),
  flags: {
    pubKey: flag.string({
      help: "use this public key (PEM or DKIM record) instead of retrieving one",
      placeholder: "FILE",
    }),
    dnsServer: dnsServerFlag(),
    at: flag.optionalInt({
      help: "verify as if the time were this (seconds since 1970)",
      placeholder: "UNIX_TIME",
      min: 0,
    }),
    allowSha1: flag.bool({ help: "accept a=rsa-sha1 (refused by default, RFC 8301)" }),
    allowPrivatePeers: flag.bool({ help: "let http/well-known key retrieval reach private addresses" }),
    caFile: flag.string({
      help: "extra CA certificates (PEM) for http/well-known key servers",
      placeholder: "FILE",
    }),
  },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    const path = positionals[0]!;
    const request = readRequestFile(path);
    const nowMs = flags.at !== undefined ? flags.at * 1000 : Date.now();
    let peerKeys: { domain: string; selector: string; record: string; where: string }[] = [];
    if (flags.pubKey) {
      // The key applies to whatever d= and s= the signature names.
      const value = request.fields.find(([n]) => n.toLowerCase() === "dkim-signature")?.[1] ?? "";
      const sig = parseSignature(value, { allowSha1: flags.allowSha1 });
      let record: string;
      try {
        record = keyRecordFromFile(readTextInput(flags.pubKey, "public key file"));
      } catch (e) {
        if (e instanceof CommandError) throw e;
        throw new CommandError(`cannot use the key ${flags.pubKey}: ${(e as Error).message}`);
      }
      if (sig.ok)
        peerKeys = [
          { domain: sig.signature.domain, selector: sig.signature.selector, record, where: flags.pubKey },
        ];
    }
    const keys = createNetworkKeyResolver({
      peerKeys,
      onlyPeerKeys: flags.pubKey !== undefined,
      dnsServer: flags.dnsServer,
      allowPrivatePeers: flags.allowPrivatePeers,
      ca: flags.caFile ? readTextInput(flags.caFile, "CA file") : undefined,
      nowMs: () => nowMs,
    });
    const verdict = await verifyRequest(request, { keys, nowMs, allowSha1: flags.allowSha1 });
    process.stdout.write(`${describeVerdict(verdict)}\n`);
    return verdict.ok ? 0 : 1;
  },
});

export function describeVerdict(v: DkimVerdict): string {
  if (!v.ok) return `invalid (${v.reason})${v.temporary ? " [temporary]" : ""}: ${v.message}`;
  const when = (s?: number) => (s === undefined ? "-" : new Date(s * 1000).toISOString());
  return [
    `valid: d=${v.domain} s=${v.selector} a=${v.algorithm} c=${v.canonicalization}`,
    `key from ${v.keySource} (${v.keyBits} bits), signed ${when(v.signedAt)}, expires ${when(v.expiresAt)}`,
    `signed headers: ${v.signedHeaders.join(", ")}`,
  ].join("\n");
}
