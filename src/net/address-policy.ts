/**
 * Which IP addresses isched may connect to when it fetches from a peer. A peer is named by DNS that
 * someone else controls, so an answer pointing at loopback, the LAN or a cloud metadata address must be
 * refused unless the operator opted in (--allow-private-peers). Pure functions, no I/O.
 */

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "unique-local"
  | "carrier-nat"
  | "unspecified"
  | "multicast"
  | "reserved"
  | "documentation";

/** Classes that --allow-private-peers unlocks; unspecified and multicast are never a peer. */
const ALLOWED_WHEN_PRIVATE: ReadonlySet<AddressClass> = new Set([
  "public",
  "loopback",
  "private",
  "link-local",
  "unique-local",
  "carrier-nat",
  "reserved",
  "documentation",
]);

const DESCRIPTION: Record<AddressClass, string> = {
  public: "a public address",
  loopback: "a loopback address",
  private: "a private address",
  "link-local": "a link-local address",
  "unique-local": "a unique local (private IPv6) address",
  "carrier-nat": "a carrier-grade NAT address",
  unspecified: "an unspecified address",
  multicast: "a multicast address",
  reserved: "a reserved address",
  documentation: "a documentation address",
};

/** IPv4 ranges as [network, prefix length, class]; first match wins, anything else is public. */
const V4_TABLE: readonly (readonly [string, number, AddressClass])[] = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-nat"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "reserved"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "reserved"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

export function parseV4(ip: string): number | null {
  const parts = ip.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    // Leading zeros are refused: some resolvers read them as octal, so the meaning is ambiguous.
    if (!/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

const V4_RANGES = V4_TABLE.map(([network, bits, cls]) => {
  const mask = (0xffffffff << (32 - bits)) >>> 0;
  return { network: (parseV4(network)! & mask) >>> 0, mask, cls };
});

function classifyV4(value: number): AddressClass {
  for (const { network, mask, cls } of V4_RANGES) if ((value & mask) >>> 0 === network) return cls;
  return "public";
}

/** Eight 16-bit groups, or null (also used by cidr.ts). Accepts `::` compression, an embedded dotted quad and a `%zone`. */
export function parseV6(ip: string): number[] | null {
  let text = ip.replace(/%[^%]*$/, "");
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseV4(dotted[2]!);
    if (v4 === null) return null;
    tail.push(v4 >>> 16, v4 & 0xffff);
    text = dotted[1]!.endsWith("::") ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || rest === null) return null;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 2 ? known > 7 : known !== 8) return null;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

function classifyV6(g: readonly number[]): AddressClass {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const embeddedV4 = ((g6 << 16) | g7) >>> 0;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0) {
    if (g5 === 0xffff) return classifyV4(embeddedV4); // ::ffff:a.b.c.d reaches a.b.c.d itself
    if (g5 === 0 && g6 === 0 && g7 === 0) return "unspecified";
    if (g5 === 0 && g6 === 0 && g7 === 1) return "loopback";
    return "reserved";
  }
  // NAT64 (well-known prefix): the gateway connects to the embedded IPv4 address, so judge that one.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return classifyV4(embeddedV4);
  }
  if ((g0 & 0xff00) === 0xff00) return "multicast";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local";
  if ((g0 & 0xfe00) === 0xfc00) return "unique-local";
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation";
  if ((g0 & 0xfff0) === 0x3ff0) return "documentation"; // 3fff::/20, RFC 9637
  if (g0 === 0x2001 && g1 === 0) return "reserved"; // Teredo tunnels to an obfuscated IPv4 address
  if (g0 === 0x2002) return classifyV4(((g1 << 16) | g2) >>> 0); // 6to4 relays to the embedded IPv4
  // Everything outside global unicast 2000::/3 (site-local, discard, ORCHID...) is not a peer.
  if ((g0 & 0xe000) !== 0x2000) return "reserved";
  return "public";
}

/** The kind of an IPv4 or IPv6 address. Throws for a string that is not an IP address. */
export function classifyAddress(ip: string): AddressClass {
  const v4 = parseV4(ip);
  if (v4 !== null) return classifyV4(v4);
  const v6 = ip.includes(":") ? parseV6(ip) : null;
  if (v6 !== null) return classifyV6(v6);
  throw new Error(`"${ip}" is not an IP address`);
}

/** True for an address on the public internet; false for any other class and for a non-address. */
export function isPublicAddress(ip: string): boolean {
  return isIpAddress(ip) && classifyAddress(ip) === "public";
}

/** True when `text` is an IPv4 dotted quad or an IPv6 address (optionally with a zone). */
export function isIpAddress(text: string): boolean {
  return parseV4(text) !== null || (text.includes(":") && parseV6(text) !== null);
}

/** Whether isched may connect to `ip`; `allowPrivate` mirrors --allow-private-peers. */
export function isAllowedPeerAddress(ip: string, allowPrivate: boolean): boolean {
  if (!isIpAddress(ip)) return false;
  const cls = classifyAddress(ip);
  return cls === "public" || (allowPrivate && ALLOWED_WHEN_PRIVATE.has(cls));
}

/** "a private address", "a loopback address"... for messages. */
export function describeAddressClass(cls: AddressClass): string {
  return DESCRIPTION[cls];
}

/**
 * One sentence saying why isched will not connect to `host` at `addresses`, e.g.
 * `Refusing to connect to cal.example.com at 10.0.0.5: a private address (start with
 * --allow-private-peers to allow it)`. The hint appears only when that flag would help.
 */
export function refusalSentence(host: string, addresses: readonly string[]): string {
  const classes = addresses.map((a) => (isIpAddress(a) ? classifyAddress(a) : null));
  const what = (cls: AddressClass | null): string => (cls === null ? "not an IP address" : DESCRIPTION[cls]);
  const flagHelps = classes.every((c) => c !== null && ALLOWED_WHEN_PRIVATE.has(c));
  const hint = flagHelps
    ? ` (start with --allow-private-peers to allow ${addresses.length === 1 ? "it" : "them"})`
    : "";
  if (addresses.length === 1) {
    const at = addresses[0] === host ? "" : ` at ${addresses[0]}`;
    return `Refusing to connect to ${host}${at}: ${what(classes[0]!)}${hint}`;
  }
  const list = addresses.map((a, i) => `${a} is ${what(classes[i]!)}`).join(", ");
  return `Refusing to connect to ${host}: ${list}${hint}`;
}
