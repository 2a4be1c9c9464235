/**
 * dns/txt keys (draft §7.3.1, RFC 6376 §3.6.2): the TXT record at `<s>._domainkey.<d>`. The strings
 * of one record are joined without separators (§3.6.2.2); separate records stay separate and each is
 * tried as a candidate, so two records at one name are never glued together.
 */
import type { DnsResolver } from "../dns/client.ts";
import { dnsKeyName, type KeySource, type SourceResult } from "./key-source.ts";

export function dnsTxtSource(resolver: DnsResolver): KeySource {
  return {
    method: "dns/txt",
    async fetch(domain, selector): Promise<SourceResult> {
      const name = dnsKeyName(domain, selector);
      const answer = await resolver.txt(name);
      switch (answer.status) {
        case "ok":
          return {
            status: "found",
            records: answer.records.map((r) => ({ text: r.text, where: name })),
            ttlSeconds: answer.ttl,
          };
        case "nxdomain":
        case "nodata":
          return { status: "absent", where: name, ttlSeconds: answer.ttl };
        default:
          return {
            status: "error",
            message: `DNS lookup of ${name} failed: ${answer.message}`,
            temporary: true,
          };
      }
    },
  };
}
