/**
 * A key retrieval method of the q= tag (draft §7.3): dns/txt, http/well-known or private-exchange.
 * Each source answers with the record texts it found, "absent", or a temporary error; parsing,
 * caching and the q= order live in key-resolver.ts.
 */
import type { QueryMethod } from "./names.ts";

export interface FoundRecord {
  readonly text: string;
  /** Where the record was found, for messages: `jupiter._domainkey.example.com`, a URL, a file. */
  readonly where: string;
}

export type SourceResult =
  | { readonly status: "found"; readonly records: readonly FoundRecord[]; readonly ttlSeconds: number }
  | { readonly status: "absent"; readonly where: string; readonly ttlSeconds: number }
  /** `temporary`: asking again later may work (timeouts, SERVFAIL), unlike a refused address. */
  | { readonly status: "error"; readonly message: string; readonly temporary: boolean };

export interface KeySource {
  readonly method: QueryMethod;
  /** `signal`: stop when it aborts (the caller's deadline), answering a temporary error. */
  fetch(domain: string, selector: string, signal?: AbortSignal): Promise<SourceResult>;
}

/** Where a key for (domain, selector) lives in DNS (RFC 6376 §3.6.2.1). */
export const dnsKeyName = (domain: string, selector: string): string => `${selector}._domainkey.${domain}`;
