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

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
// VALCHAR or whitespace, where a line break must be a fold (followed by WSP).
const VALUE = /^(?:[\x21-\x3a\x3c-\x7e]|[ \t]|\r?\n(?=[ \t]))*$/;
const FWS_EDGES = /^(?:[ \t]|\r?\n(?=[ \t]))+|(?:[ \t]|\r?\n(?=[ \t]))+$/g;

/** Parses a tag list; the error names the offending tag or position. */
export function parseTagList(text: string): TagListResult {
  const tags = new Map<string, string>();
  const specs = text.split(";");
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    const eq = spec.indexOf("=");
    if (eq === -1) {
      // A trailing ";" (optionally followed by whitespace) is allowed.
      if (i === specs.length - 1 && spec.replace(FWS_EDGES, "") === "") break;
      const shown = spec.trim();
      return { ok: false, error: shown === "" ? 'empty tag (";;")' : `"${clip(shown)}" is not tag=value` };
    }
    const name = spec.slice(0, eq).replace(FWS_EDGES, "");
    const value = spec.slice(eq + 1).replace(FWS_EDGES, "");
    if (!NAME.test(name)) return { ok: false, error: `"${clip(name)}" is not a valid tag name` };
    if (!VALUE.test(value))
      return { ok: false, error: `tag ${name}= has a character not allowed in a value` };
    if (tags.has(name)) return { ok: false, error: `tag ${name}= appears twice` };
    tags.set(name, value);
  }
  return { ok: true, tags };
}

/** Removes all whitespace (including folds) from a value, as for b=, bh= and p=. */
export const stripWhitespace = (value: string): string => value.replace(/[ \t\r\n]+/g, "");

/** Splits a colon-separated list value (h=, q=, k= lists) into trimmed items. */
export const colonList = (value: string): string[] =>
  value.split(":").map((s) => s.replace(/[ \t\r\n]+/g, ""));

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
