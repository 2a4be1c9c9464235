/**
 * http/well-known keys (draft §7.3.2): SRV `_domainkey_lookup._tcp.<d>` names the key server, then
 * `GET https://host:port/.well-known/domainkey/<d>/<s>` answers text/plain with one key record per
 * line. Without an SRV record the domain itself on port 443 is asked (what CalendarServer does).
 * Fetched through peerFetch: verified TLS, address checks, size and time limits. The signer's DNS
 * decides how many targets the SRV lists, so only the first MAX_KEY_SERVERS of them (RFC 2782 order)
 * are tried: a forged signature naming eight silent servers must not hold a request for eight
 * connection timeouts.
 */
import type { DnsResolver } from "../dns/client.ts";
import { orderSrvTargets, srvSaysUnavailable } from "../dns/srv-order.ts";
import { PeerFetchError, type PeerFetchOptions, peerFetch } from "../net/peer-fetch.ts";
import type { FoundRecord, KeySource, SourceResult } from "./key-source.ts";

export const KEY_DOCUMENT_MAX_BYTES = 64 * 1024;
export const MAX_KEY_SERVERS = 3;
const DEFAULT_TTL_SECONDS = 3600;

export interface WellKnownSourceOptions {
  resolver: DnsResolver;
  fetch: Omit<PeerFetchOptions, "resolver">;
  random?: () => number;
}

export function wellKnownSource(o: WellKnownSourceOptions): KeySource {
  const fetchOptions: PeerFetchOptions = {
    connectTimeoutMs: 5000,
    totalTimeoutMs: 10_000,
    ...o.fetch,
    maxResponseBytes: Math.min(o.fetch.maxResponseBytes ?? KEY_DOCUMENT_MAX_BYTES, KEY_DOCUMENT_MAX_BYTES),
    resolver: o.resolver,
  };
  return {
    method: "http/well-known",
    async fetch(domain, selector, signal): Promise<SourceResult> {
      const srvName = `_domainkey_lookup._tcp.${domain}`;
      const srv = await o.resolver.srv(srvName);
      let servers: { host: string; port: number }[];
      if (srv.status === "ok") {
        if (srvSaysUnavailable(srv.records))
          return { status: "absent", where: `${srvName} (SRV target ".")`, ttlSeconds: srv.ttl };
        servers = orderSrvTargets(srv.records, o.random)
          .slice(0, MAX_KEY_SERVERS)
          .map((r) => ({ host: r.target, port: r.port }));
      } else if (srv.status === "error") {
        return {
          status: "error",
          message: `DNS lookup of ${srvName} failed: ${srv.message}`,
          temporary: true,
        };
      } else {
        servers = [{ host: domain, port: 443 }];
      }
      const path = `/.well-known/domainkey/${encodeURIComponent(domain)}/${encodeURIComponent(selector)}`;
      const errors: string[] = [];
      let temporary = false;
      for (const server of servers) {
        if (signal?.aborted) {
          errors.push("the deadline passed before the next key server was asked");
          temporary = true;
          break;
        }
        const url = `https://${server.host}${server.port === 443 ? "" : `:${server.port}`}${path}`;
        try {
          const res = await peerFetch(
            { method: "GET", url, headers: { Accept: "text/plain" } },
            { ...fetchOptions, signal },
          );
          if (res.status === 404 || res.status === 410)
            return { status: "absent", where: url, ttlSeconds: 300 };
          if (res.status !== 200) {
            temporary ||= res.status >= 500;
            errors.push(`${url} answered HTTP ${res.status}`);
            continue;
          }
          const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
          if (type !== "text/plain") {
            errors.push(`${url} answered ${type || "no Content-Type"}, not text/plain`);
            continue;
          }
          const records: FoundRecord[] = Buffer.from(res.body)
            .toString("latin1")
            .split(/\r?\n/)
            .map((line) => line.trim())
            .filter((line) => line !== "")
            .map((text) => ({ text, where: url }));
          if (records.length === 0)
            return { status: "absent", where: `${url} (empty document)`, ttlSeconds: 300 };
          return { status: "found", records, ttlSeconds: maxAge(res.headers.get("cache-control")) };
        } catch (e) {
          temporary ||= !(e instanceof PeerFetchError) || e.temporary;
          errors.push(e instanceof PeerFetchError ? e.message : `${url}: ${(e as Error).message}`);
        }
      }
      // Without an SRV record the domain never said it serves keys: a failed guess is an absence
      // (unless the caller's deadline cut it short).
      if (srv.status !== "ok" && !signal?.aborted)
        return { status: "absent", where: errors.join("; "), ttlSeconds: 300 };
      return { status: "error", message: errors.join("; "), temporary };
    },
  };
}

function maxAge(cacheControl: string | null): number {
  if (!cacheControl) return DEFAULT_TTL_SECONDS;
  if (/\bno-(store|cache)\b/i.test(cacheControl)) return 0;
  const m = /\bmax-age\s*=\s*(\d+)/i.exec(cacheControl);
  return m ? Number(m[1]) : DEFAULT_TTL_SECONDS;
}
