/**
 * The client's address when isched runs behind reverse proxies (`--trusted-proxy CIDR,...`). Only a
 * connection from a trusted proxy is believed about whom it forwards for, through RFC 7239's
 * `Forwarded: for=` (§5.2) or else the de facto `X-Forwarded-For`; anyone else's headers are ignored,
 * since anybody can write them.
 *
 * The chain of hops is read from the nearest end (the connection itself, then the header's entries
 * from right to left), skipping trusted proxies: the first address that is not one is the client.
 * A proxy appends what it saw, so entries a client wrote itself sit further left and are never
 * reached. A chain of nothing but trusted proxies ends at its leftmost entry, and a request from a
 * trusted proxy without either header is the proxy host's own (a calendar server on the same host).
 *
 * The client is unknown (""), which matches no address range and so earns no trust, when an entry
 * met on the way is not an address ("unknown", an obfuscated identifier, RFC 7239 §6), or when
 * both headers are present and name different clients (a proxy maintains one of them; the other may
 * be the client's own invention).
 */
import { parseV4, parseV6 } from "./address-policy.ts";
import { anyContains, type Cidr } from "./cidr.ts";

export interface ClientAddressInput {
  /** The address the connection comes from. */
  readonly peer: string;
  readonly headers: Headers;
  readonly trustedProxies: readonly Cidr[];
}

export function clientAddress(i: ClientAddressInput): string {
  if (i.trustedProxies.length === 0 || !anyContains(i.trustedProxies, i.peer)) return i.peer;
  const forwarded = i.headers.get("forwarded");
  const xff = i.headers.get("x-forwarded-for");
  const viaForwarded = forwarded === null ? undefined : walk(forwardedFor(forwarded), i);
  const viaXff = xff === null ? undefined : walk(xff.split(",").map(bareAddress), i);
  if (viaForwarded !== undefined && viaXff !== undefined && viaForwarded !== viaXff) return "";
  return viaForwarded ?? viaXff ?? i.peer;
}

/** The client of a chain: the first hop from the right that is not a trusted proxy. */
function walk(chain: readonly (string | undefined)[], i: ClientAddressInput): string {
  for (let k = chain.length - 1; k >= 0; k--) {
    const hop = chain[k];
    if (hop === undefined) return "";
    if (!anyContains(i.trustedProxies, hop)) return hop;
  }
  return chain[0] ?? i.peer;
}

/** The `for=` values of a Forwarded field, in order (RFC 7239 §4: elements, then pairs). */
function forwardedFor(value: string): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  for (const element of splitOutsideQuotes(value, ",")) {
    for (const pair of splitOutsideQuotes(element, ";")) {
      const eq = pair.indexOf("=");
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== "for") continue;
      out.push(
        bareAddress(
          pair
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, "$1"),
        ),
      );
    }
  }
  return out;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let k = 0; k < text.length; k++) {
    if (text[k] === '"') quoted = !quoted;
    else if (text[k] === separator && !quoted) {
      parts.push(text.slice(start, k));
      start = k + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711` as a bare address; else undefined. */
function bareAddress(raw: string): string | undefined {
  const text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return parseV6(bracketed[1]!) ? bracketed[1]! : undefined;
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?::\d+)?$/.exec(text);
  if (v4) return parseV4(v4[1]!) !== null ? v4[1]! : undefined;
  return parseV6(text) ? text : undefined;
}
