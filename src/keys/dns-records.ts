/**
 * Every DNS record a peer needs to reach and verify us, presented for copying into a DNS panel or a
 * zone file: the owner name in full (with its final dot) and relative to the zone, the value as one
 * string and as quoted strings of at most 255 bytes (RFC 1035 §3.3), and a zone-file line.
 *
 * - `_ischedules._tcp.DOMAIN` SRV: where our endpoint is (draft §4.2);
 * - `_ischedules._tcp.DOMAIN` TXT `path=...`: only needed when the path is not the well-known one (§4.3);
 * - `_domainkey_lookup._tcp.DOMAIN` SRV: where peers that fetch keys by http/well-known (§7.3.2) find
 *   them, which is isched's endpoint too (it serves /.well-known/domainkey/DOMAIN/SELECTOR); without it
 *   they ask https://DOMAIN/, the domain's main web server;
 * - `SELECTOR._domainkey.DOMAIN` TXT: each key we publish (pending, active or retiring; RFC 6376 §3.6.2).
 */
import { quotedTxtStrings, relativeName, splitTxtValue, txtZoneLine } from "../dkim/dns-record.ts";
import { isDomainName } from "../dns/names.ts";

export interface DnsRecordView {
  purpose: string;
  type: "TXT" | "SRV";
  /** With its final dot. */
  name: string;
  /** Relative to the zone (the hosted domain), as most DNS panels want it. */
  relative: string;
  value: string;
  /** TXT only: the value cut into character-strings of at most 255 bytes. */
  strings: string[];
  /** TXT: `"..." "..."`; SRV: the value. */
  quoted: string;
  zoneLine: string;
  optional: boolean;
  /** Why the record is optional, or what to know about it. */
  note?: string;
  selector?: string;
}

export interface PublicEndpoint {
  host: string;
  port: number;
  path: string;
}

export const TTL_SECONDS = 3600;
const WELL_KNOWN = "/.well-known/ischedule";

function txt(purpose: string, owner: string, zone: string, value: string, optional: boolean): DnsRecordView {
  return {
    purpose,
    type: "TXT",
    name: `${owner}.`,
    relative: relativeName(owner, zone),
    value,
    strings: splitTxtValue(value),
    quoted: quotedTxtStrings(value),
    zoneLine: txtZoneLine(owner, value, TTL_SECONDS),
    optional,
  };
}

function srv(purpose: string, owner: string, zone: string, e: PublicEndpoint): DnsRecordView {
  const value = `0 1 ${e.port} ${e.host.replace(/\.$/, "")}.`;
  return {
    purpose,
    type: "SRV",
    name: `${owner}.`,
    relative: relativeName(owner, zone),
    value,
    strings: [],
    quoted: value,
    zoneLine: `${owner}. ${TTL_SECONDS} IN SRV ${value}`,
    optional: false,
  };
}

export function endpointRecords(domain: string, e: PublicEndpoint): DnsRecordView[] {
  const owner = `_ischedules._tcp.${domain}`;
  const path = txt("request path", owner, domain, `path=${e.path}`, e.path === WELL_KNOWN);
  if (path.optional) path.note = `peers use ${WELL_KNOWN} without it`;
  return [
    srv("where peers send iSchedule requests", owner, domain, e),
    path,
    srv("where peers fetch our keys by http/well-known", `_domainkey_lookup._tcp.${domain}`, domain, e),
  ];
}

export function keyRecord(domain: string, selector: string, record: string, state: string): DnsRecordView {
  return {
    ...txt(`DKIM key ${selector} (${state})`, `${selector}._domainkey.${domain}`, domain, record, false),
    selector,
  };
}

/** A zone-file fragment with every record of a domain. */
export function zoneFile(domain: string, records: readonly DnsRecordView[], generatedAt: Date): string {
  const lines = [
    `; DNS records for isched, ${domain} (generated ${generatedAt.toISOString()})`,
    `; Paste into the zone of ${domain}; names are absolute (they end with a dot).`,
    "",
  ];
  for (const r of records) {
    lines.push(`; ${r.purpose}${r.optional ? " [optional]" : ""}`);
    lines.push(r.optional ? `; ${r.zoneLine}` : r.zoneLine);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * `https://host[:port]/path` as the SRV and TXT records need it; undefined when it is not such a URL.
 * The host becomes the SRV target, so it must be a domain name (RFC 2782); credentials have no place
 * in a record peers read.
 */
export function parsePublicEndpoint(url: string): PublicEndpoint | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "https:" || !isDomainName(u.hostname) || u.username || u.password || u.search || u.hash)
    return undefined;
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 443,
    path: u.pathname === "/" ? WELL_KNOWN : u.pathname,
  };
}
