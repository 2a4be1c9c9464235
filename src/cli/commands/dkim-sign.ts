/** `isched dkim sign`: sign a raw HTTP request file, as isched signs its outbound requests. */
import { writeFileSync } from "node:fs";
import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { domainFlag, selectorFlag } from "../../config/shared-flags.ts";
import { DEFAULT_EXPIRE_SECONDS, loadSigningKey, signRequest } from "../../dkim/sign.ts";
import { serializeRawRequest } from "../../http/raw-request.ts";
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { describeFsError, readRequestFile, readTextInput } from "../io.ts";

export const dkimSignCommand = defineCommand({
  name: "dkim sign",
  summary: "Sign a raw HTTP/1.1 request file with DKIM-for-HTTP",
  usage: "dkim sign --key FILE --domain D --selector S [--expire SECONDS] [--out FILE] REQUEST",
  description: [
    "REQUEST is a file holding an HTTP/1.1 request (request line, headers, blank line, body), or -",
    "for standard input. The signed request (DKIM-Signature first) goes to standard output or --out.",
    "Signs Originator, Recipient, Content-Type, iSchedule-Version and, when present,",
    "iSchedule-Message-ID, User-Agent and Authorization, with c=ischedule-relaxed/simple.",
  ].join("\n"),
  flags: {
    key: flag.string({ help: "PEM private key (RSA or Ed25519)", placeholder: "FILE" }),
    domain: domainFlag("signing domain (d=)"),
    selector: selectorFlag("selector (s=)"),
    expire: flag.int({
      help: "seconds until x= (0: no x=)",
      placeholder: "SECONDS",
      defaultValue: DEFAULT_EXPIRE_SECONDS,
      min: 0,
    }),
    out: flag.string({
      help: "write the signed request here instead of standard output",
      placeholder: "FILE",
    }),
  },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    if (!flags.key) throw new UsageError("dkim sign needs --key");
    if (!flags.domain) throw new UsageError("dkim sign needs --domain");
    if (!flags.selector) throw new UsageError("dkim sign needs --selector");
    if (flags.expire > 0 && flags.expire < 60)
      throw new UsageError("flag --expire: use 0 or at least 60 seconds (draft §7.1)");
    let key: ReturnType<typeof loadSigningKey>;
    try {
      key = loadSigningKey(readTextInput(flags.key, "key file"), flags.domain, flags.selector);
    } catch (e) {
      if (e instanceof CommandError) throw e;
      throw new CommandError(`cannot use the key ${flags.key}: ${(e as Error).message}`);
    }
    const path = positionals[0]!;
    const request = readRequestFile(path);
    if (request.fields.some(([n]) => n.toLowerCase() === "dkim-signature")) {
      throw new CommandError(`${path} already has a DKIM-Signature; remove it to sign again`);
    }
    let value: string;
    try {
      value = signRequest({
        key,
        fields: request.fields,
        body: request.body,
        nowMs: Date.now(),
        expireSeconds: flags.expire,
      });
    } catch (e) {
      throw new CommandError(`${path}: ${(e as Error).message}`);
    }
    const signed = serializeRawRequest({
      ...request,
      fields: [["DKIM-Signature", value], ...request.fields],
    });
    if (flags.out) {
      try {
        writeFileSync(flags.out, signed);
      } catch (e) {
        throw new CommandError(`cannot write ${flags.out}: ${describeFsError(e)}`);
      }
    } else {
      process.stdout.write(signed);
    }
    return 0;
  },
});
