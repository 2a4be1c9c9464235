/**
 * A stub DNS resolver that keeps what `node:dns` loses: the character-string boundaries inside one
 * TXT record (DKIM keys span several), the separation of TXT records at one name, and the TTLs of
 * answers, CNAMEs and negative answers (RFC 2308). It asks recursive servers (RD set) and caches
 * nothing: callers cache with the TTLs returned here.
 */
import type * as packet from "dns-packet";
import type { HostPort } from "../net/host-port.ts";
import { isDomainName, isSameOrSubdomain, normalizeDomain } from "./names.ts";
import { loadResolvConf } from "./resolv-conf.ts";
import { exchange, type Query, serverText } from "./transport.ts";

export interface TxtRecord {
  /** The record's character-strings (RFC 1035 section 3.3.14), each at most 255 bytes. */
  readonly strings: readonly Uint8Array[];
  /** The strings joined with "" and decoded as latin1, so that every byte maps to one char. */
  readonly text: string;
  readonly ttl: number;
}

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** Without a trailing dot; "" for the "." target, which means "no service here" (RFC 2782). */
  readonly target: string;
  readonly ttl: number;
}

export interface AddressRecord {
  readonly address: string;
  readonly family: 4 | 6;
  readonly ttl: number;
}

/**
 * A record's `ttl` and the answer's `ttl` are already lowered to the smallest TTL of the CNAMEs
 * followed to reach it: that is how long the records may stand for the name that was asked.
 */
export type DnsAnswer<T> =
  | { readonly status: "ok"; readonly records: readonly T[]; readonly ttl: number }
  | { readonly status: "nxdomain" | "nodata"; readonly ttl: number }
  | { readonly status: "error"; readonly message: string };

export interface DnsResolver {
  txt(name: string): Promise<DnsAnswer<TxtRecord>>;
  srv(name: string): Promise<DnsAnswer<SrvRecord>>;
  /** A and AAAA together (both queried); status ok if either has records. */
  addresses(name: string): Promise<DnsAnswer<AddressRecord>>;
}

export interface ResolverOptions {
  /** Default: the nameservers of /etc/resolv.conf. */
  servers?: readonly HostPort[];
  /** Per attempt (and again for the TCP retry of a truncated answer); default 2000. */
  timeoutMs?: number;
  /** Default 2; attempt N goes to server N modulo the number of servers. */
  attempts?: number;
}

/** RFC 2308 section 5 leaves a negative answer without SOA uncacheable; we allow a minute. */
export const DEFAULT_NEGATIVE_TTL = 60;

/** A longer chain is more likely a loop than a real configuration. */
const MAX_CNAME_HOPS = 16;

const RCODE_NAMES: Record<number, string> = {
  1: "FORMERR",
  2: "SERVFAIL",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
};
const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;

type Convert<T> = (answer: packet.Answer, ttl: number) => T | undefined;

export function createResolver(options: ResolverOptions = {}): DnsResolver {
  const servers =
    options.servers !== undefined && options.servers.length > 0 ? [...options.servers] : loadResolvConf();
  const timeoutMs = options.timeoutMs ?? 2000;
  const attempts = Math.max(1, Math.floor(options.attempts ?? 2));

  async function lookup<T>(
    name: string,
    type: packet.RecordType,
    convert: Convert<T>,
  ): Promise<DnsAnswer<T>> {
    if (!isDomainName(name)) return { status: "error", message: `"${name}" is not a domain name` };
    const query: Query = { name: name.replace(/\.$/, ""), type };
    const failures: string[] = [];
    let timeouts = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const server = servers[attempt % servers.length]!;
      const outcome = await exchange(server, query, timeoutMs);
      if (outcome.kind === "timeout") {
        timeouts++;
        failures.push(`timeout from ${serverText(server)}`);
      } else if (outcome.kind === "failure") {
        failures.push(outcome.message);
      } else if (outcome.rcode === RCODE_NOERROR || outcome.rcode === RCODE_NXDOMAIN) {
        return interpret(outcome.response, outcome.rcode === RCODE_NXDOMAIN, query, convert);
      } else {
        // Another server (or the same one a moment later) may not share this failure.
        const rcode = RCODE_NAMES[outcome.rcode] ?? `RCODE ${outcome.rcode}`;
        failures.push(`${rcode} from ${serverText(server)}`);
      }
    }
    const asked = `for ${query.name} ${type}`;
    if (timeouts === attempts) {
      const tried = [...new Set(servers.slice(0, attempts).map(serverText))].join(", ");
      return {
        status: "error",
        message: `timeout after ${attempts} attempt${attempts === 1 ? "" : "s"} of ${timeoutMs}ms (${tried}) ${asked}`,
      };
    }
    return { status: "error", message: `${[...new Set(failures)].join("; ")} ${asked}` };
  }

  return {
    txt: (name) => lookup(name, "TXT", toTxt),
    srv: (name) => lookup(name, "SRV", toSrv),
    async addresses(name) {
      const [v4, v6] = await Promise.all([lookup(name, "A", toAddress), lookup(name, "AAAA", toAddress)]);
      return combineAddresses(v4, v6);
    },
  };
}

/** Reads a NOERROR or NXDOMAIN response: follows CNAMEs from the question to the records. */
function interpret<T>(
  response: packet.DecodedPacket,
  nxdomain: boolean,
  query: Query,
  convert: Convert<T>,
): DnsAnswer<T> {
  const answers = response.answers ?? [];
  let owner = normalizeDomain(query.name);
  let chainTtl = Number.POSITIVE_INFINITY;
  // RFC 1034 section 3.6.2: a recursive server puts the CNAME chain and then the target's
  // records in the answer section. Only records reached from the question count.
  for (let hop = 0; hop < MAX_CNAME_HOPS; hop++) {
    const cname = answers.find(
      (a): a is packet.StringAnswer => a.type === "CNAME" && normalizeDomain(a.name) === owner,
    );
    if (cname === undefined) break;
    chainTtl = Math.min(chainTtl, ttlOf(cname));
    owner = normalizeDomain(cname.data);
  }
  const records: T[] = [];
  let ttl = chainTtl;
  if (!nxdomain) {
    for (const a of answers) {
      if (a.type !== query.type || normalizeDomain(a.name) !== owner) continue;
      const recordTtl = Math.min(ttlOf(a), chainTtl);
      const record = convert(a, recordTtl);
      if (record === undefined) continue;
      records.push(record);
      ttl = Math.min(ttl, recordTtl);
    }
  }
  if (records.length > 0) return { status: "ok", records, ttl };
  return { status: nxdomain ? "nxdomain" : "nodata", ttl: Math.min(negativeTtl(response, owner), chainTtl) };
}

/** RFC 2308 section 5: the TTL of a negative answer is min(SOA TTL, SOA MINIMUM). */
function negativeTtl(response: packet.DecodedPacket, owner: string): number {
  for (const a of response.authorities ?? []) {
    if (a.type === "SOA" && isSameOrSubdomain(owner, a.name)) {
      return Math.min(ttlOf(a), clampTtl(a.data.minimum ?? 0));
    }
  }
  return DEFAULT_NEGATIVE_TTL;
}

function ttlOf(a: packet.Answer): number {
  return a.type === "OPT" ? 0 : clampTtl(a.ttl ?? 0);
}

/** RFC 2181 section 8: a TTL with the top bit set is to be taken as zero. */
function clampTtl(ttl: number): number {
  return ttl > 0x7fffffff ? 0 : ttl;
}

function toTxt(a: packet.Answer, ttl: number): TxtRecord | undefined {
  if (a.type !== "TXT") return undefined;
  const parts = Array.isArray(a.data) ? a.data : [a.data];
  // Copies: dns-packet's strings are views into the whole response buffer.
  const strings = parts.map((p) =>
    typeof p === "string" ? new Uint8Array(Buffer.from(p, "latin1")) : new Uint8Array(p),
  );
  // Buffer's latin1 is ISO-8859-1; TextDecoder("latin1") would be windows-1252 (WHATWG Encoding).
  return { strings, text: Buffer.concat(strings).toString("latin1"), ttl };
}

function toSrv(a: packet.Answer, ttl: number): SrvRecord | undefined {
  if (a.type !== "SRV") return undefined;
  const target = a.data.target === "." ? "" : a.data.target.replace(/\.$/, "");
  return { priority: a.data.priority ?? 0, weight: a.data.weight ?? 0, port: a.data.port, target, ttl };
}

function toAddress(a: packet.Answer, ttl: number): AddressRecord | undefined {
  if (a.type === "A") return { address: a.data, family: 4, ttl };
  if (a.type === "AAAA") return { address: a.data, family: 6, ttl };
  return undefined;
}

/** Records of either family win; then an error (we cannot tell); then NXDOMAIN only if both say so. */
function combineAddresses(
  v4: DnsAnswer<AddressRecord>,
  v6: DnsAnswer<AddressRecord>,
): DnsAnswer<AddressRecord> {
  const found = [v4, v6].filter((a) => a.status === "ok");
  if (found.length > 0) {
    return {
      status: "ok",
      records: found.flatMap((a) => a.records),
      ttl: Math.min(...found.map((a) => a.ttl)),
    };
  }
  if (v4.status === "error") return v4;
  if (v6.status === "error") return v6;
  const status = v4.status === "nxdomain" && v6.status === "nxdomain" ? "nxdomain" : "nodata";
  return { status, ttl: Math.min(v4.ttl, v6.ttl) };
}
