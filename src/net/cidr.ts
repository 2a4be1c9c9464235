/**
 * Address ranges an operator writes in flags (`--trust example.com=unsigned:10.0.0.0/8,::1`,
 * `--smtp-allow`): parsing with precise errors, and matching a client address (IPv4-mapped IPv6
 * clients match IPv4 ranges, as dual-stack sockets report them).
 */
import { parseV4, parseV6 } from "./address-policy.ts";

export interface Cidr {
  readonly text: string;
  readonly family: 4 | 6;
  /** 32 bits for IPv4 as one number; eight 16-bit groups for IPv6. */
  readonly groups: readonly number[];
  readonly bits: number;
}

/** `10.0.0.0/8`, `192.168.1.5` (a /32), `fd00::/8`, `::1`. Throws Error with a sentence. */
export function parseCidr(text: string): Cidr {
  const [address = "", prefix, extra] = text.trim().split("/");
  if (extra !== undefined) throw new Error(`"${text}" is not an address or ADDRESS/PREFIX`);
  const v4 = parseV4(address);
  const v6 = v4 === null ? parseV6(address) : null;
  if (v4 === null && v6 === null) throw new Error(`"${text}" is not an IP address or range`);
  const max = v4 !== null ? 32 : 128;
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (!(bits >= 0 && bits <= max)) throw new Error(`"${text}": the prefix length must be 0..${max}`);
  return v4 !== null ? { text, family: 4, groups: [v4], bits } : { text, family: 6, groups: v6!, bits };
}

export function parseCidrList(text: string): Cidr[] {
  return text
    .split(/[,+ ]+/)
    .filter((s) => s !== "")
    .map(parseCidr);
}

/** The address as IPv4 (one number) when it is IPv4 or IPv4-mapped IPv6, else its IPv6 groups. */
function normalize(ip: string): { family: 4 | 6; groups: number[] } | null {
  const v4 = parseV4(ip);
  if (v4 !== null) return { family: 4, groups: [v4] };
  const v6 = parseV6(ip);
  if (v6 === null) return null;
  if (v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff) {
    return { family: 4, groups: [(v6[6]! * 0x10000 + v6[7]!) >>> 0] };
  }
  return { family: 6, groups: v6 };
}

export function cidrContains(range: Cidr, ip: string): boolean {
  const a = normalize(ip);
  if (!a || a.family !== range.family) return false;
  if (range.family === 4) {
    if (range.bits === 0) return true;
    const mask = (0xffffffff << (32 - range.bits)) >>> 0;
    return (a.groups[0]! & mask) >>> 0 === (range.groups[0]! & mask) >>> 0;
  }
  let left = range.bits;
  for (let i = 0; i < 8 && left > 0; i++, left -= 16) {
    const take = Math.min(16, left);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((a.groups[i]! & mask) !== (range.groups[i]! & mask)) return false;
  }
  return true;
}

export const anyContains = (ranges: readonly Cidr[], ip: string): boolean =>
  ranges.some((r) => cidrContains(r, ip));

/** The first and last address of a range, as integers (IPv4 in 32 bits, IPv6 in 128). */
function bounds(range: Cidr): [bigint, bigint] {
  const width = range.family === 4 ? 32 : 128;
  const value =
    range.family === 4
      ? BigInt(range.groups[0]!)
      : range.groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
  const hostBits = BigInt(width - range.bits);
  const first = (value >> hostBits) << hostBits;
  return [first, first + (1n << hostBits) - 1n];
}

/**
 * The family (4 or 6) of which these ranges together cover every address, or undefined: `0.0.0.0/0`,
 * `::/0`, or pieces that add up to them (`0.0.0.0/1,128.0.0.0/1`).
 */
export function coversEveryAddress(ranges: readonly Cidr[]): 4 | 6 | undefined {
  for (const family of [4, 6] as const) {
    const spans = ranges
      .filter((r) => r.family === family)
      .map(bounds)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let next = 0n;
    for (const [first, last] of spans) {
      if (first > next) break;
      if (last + 1n > next) next = last + 1n;
    }
    if (next === 1n << (family === 4 ? 32n : 128n)) return family;
  }
  return undefined;
}
