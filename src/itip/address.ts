/**
 * Calendar user addresses: how they are written down (normalised) and how two are compared.
 *
 * `mailto:` addresses compare case-insensitively as a whole: the local part is case-sensitive in
 * theory, but calendar servers (CalendarServer, Cyrus) and mail systems treat it as case-insensitive,
 * and a false mismatch would refuse legitimate replies. Other URIs compare exactly, apart from the
 * scheme, which is always case-insensitive (RFC 3986 §3.1).
 */

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const BARE_EMAIL = /^[^\s@:<>"]+@[^\s@:<>"]+$/;

/** True for something usable as a calendar user address: an absolute URI, or a bare e-mail address. */
export function isCalendarAddress(raw: string): boolean {
  const value = raw.trim();
  if (BARE_EMAIL.test(value)) return true;
  const scheme = SCHEME.exec(value);
  return scheme !== null && value.length > scheme[0].length && !/\s/.test(value);
}

/** `MAILTO:Bernard@Example.COM` → `mailto:Bernard@example.com`; other URIs get a lower-case scheme. */
export function normalizeAddress(raw: string): string {
  // Most addresses are already normal (`mailto:` and a lower-case domain): return them as they are.
  if (raw.startsWith("mailto:") && isNormalMailto(raw)) return raw;
  const value = raw.trim();
  if (BARE_EMAIL.test(value)) return mailto(value);
  const scheme = SCHEME.exec(value);
  if (!scheme) return value;
  const name = scheme[1]!.toLowerCase();
  const rest = value.slice(scheme[0].length);
  return name === "mailto" ? mailto(rest) : `${name}:${rest}`;
}

/** The form two addresses are compared in. */
export function addressKey(raw: string): string {
  const normalized = normalizeAddress(raw);
  return normalized.startsWith("mailto:") ? normalized.toLowerCase() : normalized;
}

export function sameAddress(a: string, b: string): boolean {
  return addressKey(a) === addressKey(b);
}

/** The address without `mailto:`, for people to read. */
export function displayAddress(address: string): string {
  return address.startsWith("mailto:") ? address.slice("mailto:".length) : address;
}

function isNormalMailto(value: string): boolean {
  const at = value.lastIndexOf("@");
  if (at <= 7) return false;
  for (let i = 7; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (
      c <= 32 ||
      c === 34 ||
      c === 60 ||
      c === 62 ||
      (c === 64 && i !== at) ||
      (i > at && c >= 65 && c <= 90)
    )
      return false;
  }
  return true;
}

function mailto(addrSpec: string): string {
  const at = addrSpec.lastIndexOf("@");
  if (at === -1) return `mailto:${addrSpec}`;
  return `mailto:${addrSpec.slice(0, at)}@${addrSpec.slice(at + 1).toLowerCase()}`;
}
