/**
 * The organisational domain of a name, as DMARC defines it (RFC 7489 §3.2): the name's public
 * suffix plus one label, so `cal.example.net` and `example.net` both belong to `example.net`, while
 * `a.co.uk` and `b.co.uk` belong to different organisations. A name that is itself a public suffix
 * (`co.uk`, `github.io`) has none: nobody can align with it.
 *
 * The Public Suffix List comes from the npm package tldts (7.6.4 published 2026-11-30). It embeds the
 * list in its code, so nothing is downloaded at run time and it works inside the compiled executable;
 * its maintainers publish a new version whenever the upstream list changes, so `npm update` refreshes
 * it. Checked when chosen: of the 9,506 rules in Debian's February 2023 list, 953 (the 2024-2025
 * clean-ups such as nom.ad, info.au, *.bd) are gone from it. The `psl` package was last published in
 * 2024; `parse-domain` needs a build step to fetch the list.
 *
 * Both sections of the list count (ICANN and private): `alice.github.io` and `bob.github.io` are
 * different organisations (RFC 7489 §3.2 uses the whole list). A name under a top-level domain that
 * the list does not know (`a.test`) gets the list's default rule `*`: its organisational domain is
 * the last two labels.
 */
import { getDomain, getPublicSuffix } from "tldts";
import { normalizeDomain } from "./names.ts";

const OPTIONS = {
  allowPrivateDomains: true,
  // The input is a domain name already checked by isDomainName(), not a URL.
  extractHostname: false,
  mixedInputs: false,
  detectIp: false,
} as const;

/** `example.net` for `cal.example.net`; undefined for a public suffix (`co.uk`) or a name tldts refuses. */
export function organizationalDomain(domain: string): string | undefined {
  return getDomain(normalizeDomain(domain), OPTIONS) ?? undefined;
}

/** True for `co.uk`, `net`, `github.io`, and any single label (the list's default rule `*`). */
export function isPublicSuffix(domain: string): boolean {
  const name = normalizeDomain(domain);
  return getPublicSuffix(name, OPTIONS) === name;
}
