/** Domain-name syntax checks shared by DKIM (d=, s=), discovery and flags. */

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** A host or domain name: dot-separated labels of letters, digits, '-' and '_' (RFC 6376 selectors use '_'). */
export function isDomainName(name: string): boolean {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253) return false;
  return n.split(".").every((label) => LABEL.test(label));
}

/** Lower-cased, without a trailing dot. */
export const normalizeDomain = (name: string): string => name.toLowerCase().replace(/\.$/, "");

/** True when `child` equals `parent` or is a sub-domain of it (both normalised). */
export function isSameOrSubdomain(child: string, parent: string): boolean {
  const c = normalizeDomain(child);
  const p = normalizeDomain(parent);
  return c === p || c.endsWith(`.${p}`);
}
