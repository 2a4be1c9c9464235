/**
 * The signing algorithms (RFC 6376 §3.3 a=, RFC 8463 for Ed25519; rsa-sha1 only when allowed, RFC
 * 8301) and key query methods (q=: dns/txt, and the draft's http/well-known and private-exchange,
 * draft §7.3) a DKIM-Signature for HTTP may name.
 */
export type Algorithm = "rsa-sha256" | "ed25519-sha256" | "rsa-sha1";
export type QueryMethod = "dns/txt" | "http/well-known" | "private-exchange";
export const QUERY_METHODS: readonly QueryMethod[] = ["dns/txt", "http/well-known", "private-exchange"];
