/**
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

/**
 * Where the tags of one list are: tag i is `names[i]`, its value `text.slice(valueStarts[i],
 * valueEnds[i])`. The scanner reuses one of these for every scan, so it is valid only until the next
 * call: read what you need and let it go (nothing is copied out of the text until a caller asks).
 */
export interface TagSpans {
  readonly count: number;
  readonly names: readonly string[];
  readonly valueStarts: readonly number[];
  readonly valueEnds: readonly number[];
}

const spans = { count: 0, names: [] as string[], valueStarts: [] as number[], valueEnds: [] as number[] };

// Duplicate names are found by comparing with the names before; past this many tags (only a
// hostile list has them) a set keeps the check linear.
const LINEAR_DUPLICATE_CHECK = 16;
const seen = new Set<string>();

function isDuplicate(name: string, count: number): boolean {
  if (count < LINEAR_DUPLICATE_CHECK) {
    for (let k = 0; k < count; k++) if (spans.names[k] === name) return true;
    return false;
  }
  if (count === LINEAR_DUPLICATE_CHECK) {
    seen.clear();
    for (let k = 0; k < count; k++) seen.add(spans.names[k]!);
  }
  if (seen.has(name)) return true;
  seen.add(name);
  return false;
}

const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** tag-name = ALPHA *ALNUMPUNC (RFC 6376 §3.2: ALNUMPUNC is ALPHA / DIGIT / "_"). */
function isTagName(s: string, start: number, end: number): boolean {
  if (start === end || !isAlpha(s.charCodeAt(start))) return false;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!isAlpha(c) && !(c >= 48 && c <= 57) && c !== 95) return false;
  }
  return true;
}

/**
 * Scans a tag list in one pass without building a map or copying values: the spans of its tags, or
 * the error that names the offending tag or position. The spans are reused by the next call.
 */
export function scanTagList(text: string): TagSpans | string {
  // Printable ASCII and blanks only (the usual one-line header): every value is valid as it stands.
  const plain = PRINTABLE_LINE.test(text);
  let count = 0;
  let pos = 0;
  const length = text.length;
  while (pos <= length) {
    let semi = text.indexOf(";", pos);
    if (semi === -1) semi = length;
    const from = skipFws(text, pos, semi);
    if (from === semi) {
      // A trailing ";" (optionally followed by whitespace) is allowed; an empty spec elsewhere is not.
      if (semi === length && pos > 0) break;
      return semi === length ? "the tag list is empty" : 'empty tag (";;")';
    }
    let eq = from;
    while (eq < semi && text.charCodeAt(eq) !== 61 /* = */) eq++;
    if (eq === semi) {
      return `"${clip(text.slice(from, trimFwsEnd(text, from, semi)))}" is not tag=value`;
    }
    const nameEnd = trimFwsEnd(text, from, eq);
    const name = text.slice(from, nameEnd);
    if (!isTagName(text, from, nameEnd)) return `"${clip(name)}" is not a valid tag name`;
    const valueStart = skipFws(text, eq + 1, semi);
    const valueEnd = trimFwsEnd(text, valueStart, semi);
    if (!plain && !validValue(text, valueStart, valueEnd)) {
      return `tag ${name}= has a character not allowed in a value`;
    }
    if (isDuplicate(name, count)) return `tag ${name}= appears twice`;
    spans.names[count] = name;
    spans.valueStarts[count] = valueStart;
    spans.valueEnds[count] = valueEnd;
    count++;
    pos = semi + 1;
  }
  spans.count = count;
  return spans;
}

/** Parses a tag list into a map; the error names the offending tag or position. */
export function parseTagList(text: string): TagListResult {
  const scanned = scanTagList(text);
  if (typeof scanned === "string") return { ok: false, error: scanned };
  const tags = new Map<string, string>();
  for (let k = 0; k < scanned.count; k++) {
    tags.set(scanned.names[k]!, text.slice(scanned.valueStarts[k], scanned.valueEnds[k]));
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
