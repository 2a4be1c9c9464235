/** Domain-name syntax checks shared by DKIM (d=, s=), discovery and flags. */

const isLabelChar = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95;

/**
 * A host or domain name: dot-separated labels of 1-63 letters, digits, '-' and '_' (RFC 6376
 * selectors use '_'), no label starting or ending with '-', 253 characters at most, an optional
 * trailing dot. A plain scan: it runs for d= and s= of every inbound signature.
 */
export function isDomainName(name: string): boolean {
  const n = name.charCodeAt(name.length - 1) === 46 ? name.length - 1 : name.length;
  if (n === 0 || n > 253) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? 46 : name.charCodeAt(i);
    if (c === 46) {
      const length = i - start;
      if (length === 0 || length > 63 || name.charCodeAt(start) === 45 || name.charCodeAt(i - 1) === 45)
        return false;
      start = i + 1;
    } else if (!isLabelChar(c)) {
      return false;
    }
  }
  return true;
}

/** Lower-cased, without a trailing dot. */
export const normalizeDomain = (name: string): string => name.toLowerCase().replace(/\.$/, "");

/** True when `child` equals `parent` or is a sub-domain of it (both normalised). */
export function isSameOrSubdomain(child: string, parent: string): boolean {
  const c = normalizeDomain(child);
  const p = normalizeDomain(parent);
  return c === p || c.endsWith(`.${p}`);
}

/**
 * The domain and each of its parents, nearest first: `a.b.example` gives `a.b.example`, `b.example`,
 * `example`. Policies and hosted domains are looked up along this chain, so that a subdomain can
 * never step around a rule made for its parent.
 */
export function selfAndParents(domain: string): string[] {
  const labels = normalizeDomain(domain).split(".");
  return labels.map((_, i) => labels.slice(i).join(".")).filter((d) => d !== "");
}
