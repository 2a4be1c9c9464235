/** Flags that several commands share, so they parse and read the same everywhere. */
import { isDomainName, normalizeDomain } from "../dns/names.ts";
import { type HostPort, parseHostOptionalPort } from "../net/host-port.ts";
import { flag } from "./flags.ts";

export const domainFlag = (help: string) =>
  flag.custom<string | undefined>(
    (raw) => {
      if (!isDomainName(raw)) throw new Error(`"${raw}" is not a domain name`);
      return normalizeDomain(raw);
    },
    { help, placeholder: "DOMAIN", defaultValue: undefined },
  );

export const selectorFlag = (help: string) =>
  flag.custom<string | undefined>(
    (raw) => {
      if (!isDomainName(raw))
        throw new Error(`"${raw}" is not a valid selector (letters, digits, '-', '_', dots)`);
      return raw;
    },
    { help, placeholder: "SELECTOR", defaultValue: undefined },
  );

export const dnsServerFlag = () =>
  flag.custom<HostPort | undefined>((raw) => parseHostOptionalPort(raw, 53), {
    help: "DNS server to ask instead of /etc/resolv.conf",
    placeholder: "HOST[:PORT]",
    defaultValue: undefined,
  });
