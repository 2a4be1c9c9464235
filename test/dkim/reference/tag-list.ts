/**
 * REFERENCE ONLY (tests): src/dkim/tag-list.ts as it was at b949fb3, before the single-pass
 * scanner; scanner-differential.test.ts checks the current one against it.
 *
 * DKIM tag=value lists (RFC 6376 §3.2), shared by DKIM-Signature headers and key records.
 *
 *   tag-list  = tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  = ALPHA *ALNUMPUNC
 *   tag-value = [ tval *( 1*(WSP / FWS) tval ) ]       tval = 1*VALCHAR, VALCHAR = %x21-3A / %x3C-7E
 *
 * Tags are case-sensitive, a duplicate tag makes the whole list invalid, and unknown tags are kept
 * (callers ignore what they do not know). Values keep their inner whitespace: b=, bh= and p= strip it.
 */

export type TagList = ReadonlyMap<string, string>;

export type TagListResult = { ok: true; tags: TagList } | { ok: false; error: string };

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

// Hand-written scanning: this runs on every inbound request, and the equivalent regular expressions
// (with their fold lookaheads) cost several times more than the RSA verification itself.

const isWsp = (c: number): boolean => c === 32 || c === 9;

/** Index just past folding whitespace starting at i (WSP, or CRLF/LF followed by WSP). */
function skipFws(s: string, i: number, end: number): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (isWsp(c)) i++;
    else if (c === 13 && s.charCodeAt(i + 1) === 10 && isWsp(s.charCodeAt(i + 2)) && i + 2 < end) i += 3;
    else if (c === 10 && isWsp(s.charCodeAt(i + 1)) && i + 1 < end) i += 2;
    else break;
  }
  return i;
}

/** Index of the end of the value once trailing folding whitespace is removed. */
function trimFwsEnd(s: string, start: number, end: number): number {
  while (end > start) {
    const c = s.charCodeAt(end - 1);
    if (isWsp(c)) end--;
    else if ((c === 10 || c === 13) && end - 1 > start) end--;
    else break;
  }
  return end;
}

const PLAIN_VALUE = /^[\x21-\x3a\x3c-\x7e \t]*$/;
const PRINTABLE_LINE = /^[\x20-\x7e\t]*$/;

/** VALCHAR or whitespace, where a line break must be a fold (followed by WSP). */
function validValue(s: string, start: number, end: number): boolean {
  const value = s.slice(start, end);
  if (PLAIN_VALUE.test(value)) return true;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x21 && c <= 0x7e && c !== 0x3b) || isWsp(c)) continue;
    if (c === 13 && s.charCodeAt(i + 1) === 10 && isWsp(s.charCodeAt(i + 2))) {
      i++;
      continue;
    }
    if (c === 10 && isWsp(s.charCodeAt(i + 1))) continue;
    return false;
  }
  return true;
}

/** Parses a tag list; the error names the offending tag or position. */
export function parseTagList(text: string): TagListResult {
  const tags = new Map<string, string>();
  // Printable ASCII and blanks only (the usual one-line header): every value is valid as it stands.
  const plain = PRINTABLE_LINE.test(text);
  let pos = 0;
  const length = text.length;
  while (pos <= length) {
    let semi = text.indexOf(";", pos);
    if (semi === -1) semi = length;
    const from = skipFws(text, pos, semi);
    if (from === semi) {
      // A trailing ";" (optionally followed by whitespace) is allowed; an empty spec elsewhere is not.
      if (semi === length && pos > 0) break;
      return { ok: false, error: semi === length ? "the tag list is empty" : 'empty tag (";;")' };
    }
    const eq = text.indexOf("=", from);
    if (eq === -1 || eq > semi) {
      return {
        ok: false,
        error: `"${clip(text.slice(from, trimFwsEnd(text, from, semi)))}" is not tag=value`,
      };
    }
    const name = text.slice(from, trimFwsEnd(text, from, eq));
    if (!NAME.test(name)) return { ok: false, error: `"${clip(name)}" is not a valid tag name` };
    const valueStart = skipFws(text, eq + 1, semi);
    const valueEnd = trimFwsEnd(text, valueStart, semi);
    if (!plain && !validValue(text, valueStart, valueEnd)) {
      return { ok: false, error: `tag ${name}= has a character not allowed in a value` };
    }
    if (tags.has(name)) return { ok: false, error: `tag ${name}= appears twice` };
    tags.set(name, text.slice(valueStart, valueEnd));
    pos = semi + 1;
  }
  return { ok: true, tags };
}

/** Removes all whitespace (including folds) from a value, as for b=, bh= and p=. */
export const stripWhitespace = (value: string): string => value.replace(/[ \t\r\n]+/g, "");

const HAS_WHITESPACE = /[ \t\r\n]/;
const WHITESPACE_RUN = /[ \t\r\n]+/g;

/** Splits a colon-separated list value (h=, q=, k= lists) into items without whitespace. */
export function colonList(value: string): string[] {
  const items = value.split(":");
  return HAS_WHITESPACE.test(value) ? items.map((item) => item.replace(WHITESPACE_RUN, "")) : items;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
