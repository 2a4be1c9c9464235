/**
 * A small XML parser for the documents peers send us (schedule-response, error, query-result), built
 * to be safe on hostile input (draft §10: a peer is not trusted; no DTDs, no external entities):
 * - DOCTYPE and any other markup declaration are refused outright, so there is no entity expansion
 *   (billion laughs) and no external entity (XXE); only the five predefined entities and character
 *   references are decoded (XML 1.0 §4.6, §4.1);
 * - a size cap (default 1 MiB) checked before parsing, and a nesting depth cap;
 * - namespaces (Namespaces in XML 1.0) resolved, so elements are matched by namespace URI + local name.
 * Comments and processing instructions are skipped, CDATA is text. Line ends are normalised to LF
 * first (XML 1.0 §2.11), so a CR survives only as "&#13;", which is how xml-writer.ts writes one.
 * Every refusal is an XmlSyntaxError naming the line and column.
 */

import { Parser, type XmlElement, XmlSyntaxError } from "./_xml-parser.ts";

export { type XmlElement, XmlSyntaxError } from "./_xml-parser.ts";

export interface XmlReadOptions {
  /** Default 1 MiB. */
  readonly maxBytes?: number;
  /** Default 32; our documents are at most 5 deep. */
  readonly maxDepth?: number;
}

export const DEFAULT_MAX_XML_BYTES = 1024 * 1024;
export const DEFAULT_MAX_XML_DEPTH = 32;

/**
 * Parses a whole document and returns its root element. Bytes are decoded as UTF-8 unless a BOM or
 * the XML declaration says UTF-16 or ISO-8859-1; the size cap counts bytes (UTF-8 bytes for a string).
 */
export function parseXml(input: string | Uint8Array, options: XmlReadOptions = {}): XmlElement {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_XML_BYTES;
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_XML_DEPTH;
  // A string longer than the cap in UTF-16 units is over it in UTF-8 bytes too: no need to count.
  const size =
    typeof input === "string"
      ? input.length > maxBytes
        ? input.length
        : Buffer.byteLength(input)
      : input.length;
  if (size > maxBytes) throw new XmlSyntaxError(`XML document is larger than the limit of ${maxBytes} bytes`);
  const text = (typeof input === "string" ? input : decode(input)).replace(/\r\n?/g, "\n");
  return new Parser(text, maxDepth).document();
}

/** The first child element with this local name in one of the namespaces. */
export function childElement(
  el: XmlElement,
  namespaces: readonly string[],
  name: string,
): XmlElement | undefined {
  return el.children.find((c) => c.name === name && namespaces.includes(c.ns));
}

/** All child elements with this local name in one of the namespaces. */
export function childElements(el: XmlElement, namespaces: readonly string[], name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name && namespaces.includes(c.ns));
}

/** Text of an element and all its descendants, in document order of elements (not interleaved). */
export function deepText(el: XmlElement): string {
  return el.text + el.children.map(deepText).join("");
}

function decode(bytes: Uint8Array): string {
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return strictDecode("utf-16be", bytes.subarray(2));
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return strictDecode("utf-16le", bytes.subarray(2));
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 200));
  const declared = /^(?:\uFEFF|\xEF\xBB\xBF)?<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(
    head,
  )?.[1];
  const encoding = (declared ?? "utf-8").toLowerCase();
  if (encoding === "utf-8" || encoding === "utf8" || encoding === "us-ascii" || encoding === "ascii") {
    return strictDecode("utf-8", bytes);
  }
  if (encoding === "iso-8859-1" || encoding === "latin1") return new TextDecoder("latin1").decode(bytes);
  throw new XmlSyntaxError(
    `XML document declares encoding "${encoding}", which is not supported (use UTF-8)`,
  );
}

function strictDecode(encoding: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder(encoding, { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new XmlSyntaxError(`XML document is not valid ${encoding.toUpperCase()}`);
  }
}
