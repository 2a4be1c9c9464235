/**
 * The name servers of /etc/resolv.conf, for the DNS client when no servers are configured.
 * Only `nameserver` lines matter here; the client has its own timeout and attempt settings.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { HostPort } from "../net/host-port.ts";

/** What the system resolver assumes too when resolv.conf names no server (resolv.conf(5)). */
export const DEFAULT_NAME_SERVER: HostPort = { host: "127.0.0.1", port: 53 };

/**
 * The `nameserver` addresses of resolv.conf text, in file order, each on port 53; the default
 * server when there is none. Lines that are not `nameserver ADDRESS` with an IPv4 or IPv6 address
 * (an IPv6 address may carry a `%zone`) are skipped, as glibc skips them.
 */
export function parseResolvConf(text: string): HostPort[] {
  const servers: HostPort[] = [];
  for (const line of text.split(/\r?\n/)) {
    // Comments start with '#' or ';' at the start of a line; glibc also stops reading the
    // address at whitespace, so anything after it (an inline comment) is ignored too.
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const address = m[1]!;
    const plain = address.replace(/%[^%]+$/, "");
    const family = isIP(plain);
    if (family === 0 || (family === 4 && plain !== address)) continue;
    servers.push({ host: address, port: 53 });
  }
  return servers.length > 0 ? servers : [{ ...DEFAULT_NAME_SERVER }];
}

/** The name servers of `path`; the default server when the file cannot be read. */
export function loadResolvConf(path = "/etc/resolv.conf"): HostPort[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [{ ...DEFAULT_NAME_SERVER }];
  }
  return parseResolvConf(text);
}
