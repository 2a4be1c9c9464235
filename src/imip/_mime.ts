/**
 * The few RFC 5322 and MIME encodings the iMIP builder needs, written out so that building a message
 * stays a pure, synchronous function whose every byte is known: encoded-words (RFC 2047), quoted-
 * printable and base64 bodies (RFC 2045 §6.7, §6.8), header folding (RFC 5322 §2.2.3), dates (RFC 5322
 * §3.3) and addresses (RFC 5322 §3.4). Everything produced is 7-bit with lines of at most 78 octets.
 */

export const CRLF = "\r\n";
const utf8 = new TextEncoder();

/** RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters. */
const FOLD_WIDTH = 78;
/**
 * RFC 2047 §2: a line holding an encoded-word is at most 76 characters. 36 octets make 48 base64
 * characters, a 60-character word with "=?UTF-8?B?" and "?=": it fits after "Reply-To: " on the first
 * line of a field, and after the folding space on the others.
 */
const WORD_OCTETS = 36;

// RFC 5322 §3.2.3 atext; dot-atom-text is atext separated by single dots.
const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-";
const DOT_ATOM = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** A domain name as used in addresses and Message-IDs: LDH labels, ASCII only. */
export function isHostName(value: string): boolean {
  return value.length <= 253 && HOST_NAME.test(value);
}

/** RFC 5322 §3.6.4 id-left (dot-atom-text), also the local part of the addresses isched sends. */
export function isDotAtom(value: string): boolean {
  return DOT_ATOM.test(value);
}

/**
 * An RFC 5321 mailbox isched can put in an envelope and an RFC 5322 header as it is: dot-atom local
 * part and a host name. Quoted local parts, address literals and non-ASCII (SMTPUTF8) are refused.
 */
export function isPlainAddress(value: string): boolean {
  const at = value.lastIndexOf("@");
  if (at <= 0 || value.length > 254) return false;
  const local = value.slice(0, at);
  return local.length <= 64 && isDotAtom(local) && isHostName(value.slice(at + 1));
}

/** Replaces control characters (CR and LF above all: header injection) and runs of blanks by a space. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029\s]+/gu, " ").trim();
}

function isPrintableAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * RFC 2047 §4.1 "B" encoded-words for `text`. B rather than Q because it is valid in every place an
 * encoded-word may appear (§5), phrases included, without a per-place list of allowed characters.
 * Words end on character boundaries: §5 requires each word to hold whole characters.
 */
export function encodedWords(text: string): string[] {
  const words: string[] = [];
  let chunk: number[] = [];
  for (const ch of text) {
    const bytes = utf8.encode(ch);
    if (chunk.length + bytes.length > WORD_OCTETS) {
      words.push(`=?UTF-8?B?${base64(Uint8Array.from(chunk))}?=`);
      chunk = [];
    }
    chunk.push(...bytes);
  }
  if (chunk.length > 0 || words.length === 0) words.push(`=?UTF-8?B?${base64(Uint8Array.from(chunk))}?=`);
  return words;
}

/**
 * Joins `name: ` and the tokens, folding (RFC 5322 §2.2.3) before a token that would pass 78
 * columns. `separator` goes between tokens on one line; a fold is CRLF followed by a space.
 */
function fold(name: string, tokens: readonly string[], separator: string): string {
  let out = `${name}:`;
  let column = out.length;
  tokens.forEach((token, i) => {
    const sep = i === 0 ? " " : separator;
    if (i > 0 && column + sep.length + token.length > FOLD_WIDTH) {
      const trimmed = sep.trimEnd();
      out += `${trimmed}${CRLF} ${token}`;
      column = 1 + token.length;
    } else {
      out += `${sep}${token}`;
      column += sep.length + token.length;
    }
  });
  return out;
}

/**
 * An unstructured header field (Subject, RFC 5322 §3.6.5). Printable ASCII folds at spaces; anything
 * else, and any word too long to fold, becomes encoded-words, one per line (RFC 2047 §2: a line
 * holding encoded-words stays within 76 characters).
 */
export function unstructuredField(name: string, value: string): string {
  const text = oneLine(value);
  const words = text.split(" ");
  const plain =
    isPrintableAscii(text) &&
    words.every((w) => w.length <= FOLD_WIDTH - name.length - 2 && !w.includes("=?"));
  if (plain) return fold(name, text === "" ? [] : words, " ");
  return fold(name, encodedWords(text), " ");
}

/**
 * An RFC 5322 §3.4 mailbox: `"Display Name" <addr>` or the bare address. A display name is an atom
 * sequence when it can be, a quoted-string when it has specials, and encoded-words (RFC 2047 §5(3))
 * when it is not ASCII or is long.
 */
export function mailbox(address: string, name?: string): string[] {
  const display = oneLine(name ?? "");
  if (display === "") return [address];
  // Text that looks like an encoded-word is encoded too, so it is shown as written, not decoded.
  if (isPrintableAscii(display) && display.length <= 60 && !display.includes("=?")) {
    const phrase = new RegExp(`^[ ${ATEXT}]+$`).test(display)
      ? display
      : `"${display.replace(/[\\"]/g, "\\$&")}"`;
    return [phrase, `<${address}>`];
  }
  return [...encodedWords(display), `<${address}>`];
}

/** An address header field (From, To, Reply-To), one mailbox or a comma-separated list. */
export function addressField(name: string, mailboxes: readonly string[][]): string {
  // The comma goes on the mailbox's last token, so a fold never starts a line with it.
  const tokens = mailboxes.flatMap((parts, i) =>
    i === mailboxes.length - 1 ? parts : [...parts.slice(0, -1), `${parts.at(-1)},`],
  );
  return fold(name, tokens, " ");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 §3.3 date-time in UTC: "Thu, 02 Sep 2004 13:00:00 +0000". */
export function rfc5322Date(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError("Cannot format an invalid Date for a Date header");
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ` +
    `${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:` +
    `${two(date.getUTCSeconds())} +0000`
  );
}

/**
 * RFC 2045 §6.7 quoted-printable of `text` as UTF-8. A CRLF in the text is a hard line break (rule 4)
 * so it decodes back to CRLF; a lone CR or LF is encoded as =0D or =0A, so the decoded octets are
 * exactly the input's. Lines are at most 76 characters (rule 5); blanks before a line end are encoded
 * (rule 3). "=" is always encoded, so no encoded line can contain a boundary starting "=_".
 */
export function quotedPrintable(text: string): string {
  const bytes = utf8.encode(text);
  const lines: string[] = [];
  let line = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d && bytes[i + 1] === 0x0a) {
      lines.push(line);
      line = "";
      i++;
      continue;
    }
    const atLineEnd = i + 1 === bytes.length || (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a);
    const literal = (b > 0x20 && b < 0x7f && b !== 0x3d) || ((b === 0x20 || b === 0x09) && !atLineEnd);
    const token = literal ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
    // 75 plus the "=" of the soft line break makes the 76 of rule 5.
    if (line.length + token.length > 75) {
      lines.push(`${line}=`);
      line = "";
    }
    line += token;
  }
  lines.push(line);
  return lines.join(CRLF);
}

/** RFC 2045 §6.8 base64 in lines of 76 characters. */
export function base64Lines(bytes: Uint8Array): string {
  return (base64(bytes).match(/.{1,76}/g) ?? []).join(CRLF);
}

export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}
