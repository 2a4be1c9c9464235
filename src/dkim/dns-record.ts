/**
 * Presenting a TXT record for an administrator: the owner name (full and relative to the zone), the
 * value as one string, and as quoted strings of at most 255 bytes (RFC 1035 §3.3: a character-string
 * holds 255 bytes; longer values are several strings of one record, joined without spaces on read).
 */

export const MAX_TXT_STRING_BYTES = 255;

/** Splits a value into character-strings of at most 255 bytes (the record text is ASCII). */
export function splitTxtValue(value: string, max = MAX_TXT_STRING_BYTES): string[] {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += max) parts.push(value.slice(i, i + max));
  return parts.length > 0 ? parts : [""];
}

/** `"part1" "part2"`, with `"` and `\` escaped as zone files require. */
export function quotedTxtStrings(value: string): string {
  return splitTxtValue(value)
    .map((p) => `"${p.replace(/[\\"]/g, (c) => `\\${c}`)}"`)
    .join(" ");
}

/** A zone-file line: `name. TTL IN TXT ( "..." "..." )`. */
export function txtZoneLine(ownerName: string, value: string, ttlSeconds = 3600): string {
  const name = ownerName.endsWith(".") ? ownerName : `${ownerName}.`;
  const strings = splitTxtValue(value);
  if (strings.length === 1) return `${name} ${ttlSeconds} IN TXT ${quotedTxtStrings(value)}`;
  return `${name} ${ttlSeconds} IN TXT ( ${quotedTxtStrings(value)} )`;
}

/** The owner name relative to a zone (`jupiter._domainkey` in zone `example.com`). */
export function relativeName(ownerName: string, zone: string): string {
  const n = ownerName.replace(/\.$/, "");
  const z = zone.replace(/\.$/, "");
  if (n === z) return "@";
  return n.endsWith(`.${z}`) ? n.slice(0, -(z.length + 1)) : `${n}.`;
}
