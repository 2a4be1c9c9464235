/**
 * Where peers reach isched's endpoint, for the SRV record (draft §4.2) published beside each key: the
 * console's setting, else a guess. Also what `isched serve` prints beside a new key's TXT record and
 * what `isched doctor` expects the SRV record to name.
 */
import { hostname } from "node:os";
import { type PublicEndpoint, parsePublicEndpoint } from "./dns-records.ts";

export const ENDPOINT_SETTING = "console.public-endpoint";

/**
 * The console's setting, else a guess: this host's name if it has a domain, on 443 behind a TLS proxy
 * or the TLS port itself.
 */
export function publicEndpointOf(o: {
  /** The ENDPOINT_SETTING the operator stored, if any (else only the guess). */
  stored?: string;
  domains: readonly string[];
  tls: boolean;
  listenPort: number;
}): { url: string; endpoint: PublicEndpoint; fromSetting: boolean } {
  const stored = o.stored;
  const parsed = stored ? parsePublicEndpoint(stored) : undefined;
  if (stored && parsed) return { url: stored, endpoint: parsed, fromSetting: true };
  // A guess: this host's name if it has a domain, on 443 behind a TLS proxy or the TLS port itself.
  const port = o.tls ? o.listenPort : 443;
  const guess = (host: string) => `https://${host}${port === 443 ? "" : `:${port}`}/.well-known/ischedule`;
  const named = hostname().includes(".") ? guess(hostname()) : undefined;
  const url = named && parsePublicEndpoint(named) ? named : guess(o.domains[0] ?? "localhost");
  return { url, endpoint: parsePublicEndpoint(url)!, fromSetting: false };
}
