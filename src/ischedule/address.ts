/**
 * Calendar user addresses (draft §4.1, §8.5, §8.6): which strings are acceptable, their normal form,
 * their domain (what discovery and the DKIM d= check use) and how two of them compare.
 */

/** Longer addresses are refused: no real calendar user address comes close. */
export const MAX_ADDRESS_LENGTH = 2048;

// RFC 3986 §4.3 absolute-URI = scheme ":" hier-part [ "?" query ]: no fragment, only URI characters.
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?[\]]|%[0-9A-Fa-f]{2})+$/;
// A mailto: calendar user is one addr-spec (RFC 6068 §2), optionally followed by hfields we ignore.
const MAILTO = /^mailto:([^@?]+)@([^@?]+)(\?.*)?$/i;
const HOSTNAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$/;
const IP_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/;
const AUTHORITY = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/;

/**
 * True when `value` can be a calendar user address: an absolute URI (RFC 3986 §4.3) of at most
 * MAX_ADDRESS_LENGTH characters, and for mailto: exactly one address with a valid domain.
 */
export function isCalendarUserAddress(value: string): boolean {
  if (value.length > MAX_ADDRESS_LENGTH || !ABSOLUTE_URI.test(value)) return false;
  if (!/^mailto:/i.test(value)) return true;
  const m = MAILTO.exec(value);
  if (!m) return false;
  const local = m[1]!;
  const domain = m[2]!;
  // A comma in the local part would be a second address (RFC 6068 §2 "to" is a list).
  if (local.includes(",")) return false;
  return HOSTNAME.test(domain) || IP_LITERAL.test(domain);
}

/**
 * Lower-cases what is case-insensitive and keeps the rest: the scheme (RFC 3986 §3.1), the mailto:
 * domain and the host of hierarchical URIs (§3.2.2). The mailto: local part is preserved
 * ("MAILTO:Cyrus@Example.ORG" → "mailto:Cyrus@example.org"). Surrounding whitespace is removed.
 */
export function normalizeAddress(address: string): string {
  const value = address.trim();
  const colon = value.indexOf(":");
  if (colon <= 0) return value;
  const scheme = value.slice(0, colon).toLowerCase();
  const rest = value.slice(colon + 1);
  if (scheme === "mailto") {
    const at = rest.lastIndexOf("@");
    if (at === -1) return `${scheme}:${rest}`;
    const query = rest.indexOf("?", at);
    const domainEnd = query === -1 ? rest.length : query;
    return `${scheme}:${rest.slice(0, at + 1)}${rest.slice(at + 1, domainEnd).toLowerCase()}${rest.slice(domainEnd)}`;
  }
  const m = AUTHORITY.exec(`${scheme}:${rest}`);
  if (m) {
    const authority = m[2]!;
    const at = authority.lastIndexOf("@");
    const host = authority.slice(at + 1).toLowerCase();
    return `${scheme}://${authority.slice(0, at + 1)}${host}${m[3]!}`;
  }
  return `${scheme}:${rest}`;
}

/**
 * The domain discovery uses (draft §4.1): for mailto: the part after "@"; for URIs with an
 * authority, the host (no user info, no port); otherwise undefined. Lower-case, no trailing dot.
 */
export function addressDomain(address: string): string | undefined {
  const value = address.trim();
  const mailto = MAILTO.exec(value);
  if (mailto) return trimDot(mailto[2]!.toLowerCase());
  if (/^mailto:/i.test(value)) return undefined;
  const m = AUTHORITY.exec(value);
  if (!m) return undefined;
  const authority = m[2]!;
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    return end === -1 ? undefined : hostPort.slice(0, end + 1).toLowerCase();
  }
  const host = hostPort.replace(/:\d*$/, "").toLowerCase();
  return host === "" ? undefined : trimDot(host);
}

/**
 * Whether two addresses name the same calendar user. mailto: addresses compare case-insensitively as
 * a whole: RFC 5321 lets local parts be case-sensitive, but CalendarServer, Cyrus and DAViCal all
 * compare them ignoring case, and a peer re-casing an address must not make it a stranger
 * (draft §6.1 matches Originator and Recipient to ORGANIZER and ATTENDEE). Other URIs compare
 * in normal form.
 */
export function sameAddress(a: string, b: string): boolean {
  return addressKey(a) === addressKey(b);
}

/** A key under which sameAddress() addresses collide, for maps and de-duplication. */
export function addressKey(address: string): string {
  const n = normalizeAddress(address);
  // RFC 4122 §3: UUIDs are case-insensitive on input; urn:uuid: is what CalDAV servers use.
  return n.startsWith("mailto:") || /^urn:uuid:/i.test(n) ? n.toLowerCase() : n;
}

function trimDot(domain: string): string {
  return domain.endsWith(".") ? domain.slice(0, -1) : domain;
}
