/**
 * A deliberately small MIME reader for the tests, independent of the builder: it splits a raw message
 * into its tree of parts (RFC 2046 §5.1.1) so tests can assert the nesting, which mailparser flattens.
 * Content-Type values are read with nodemailer's parser, decoding is left to mailparser.
 */
import { parseHeaderValue } from "nodemailer/lib/mime-funcs";

export interface MimePart {
  /** Lower-case media type: "multipart/mixed". */
  type: string;
  /** Content-Type parameters, names lower-case. */
  params: Record<string, string>;
  /** Unfolded header fields by lower-case name, in order. */
  headers: Map<string, string[]>;
  children: MimePart[];
  /** The encoded body (leaf parts only). */
  body: string;
}

export function mimeTree(raw: Uint8Array | string): MimePart {
  const text = typeof raw === "string" ? raw : Buffer.from(raw).toString("latin1");
  return readPart(text);
}

/** The tree as indented lines: "multipart/mixed", "  multipart/alternative", "    text/plain", ... */
export function outline(part: MimePart, depth = 0): string[] {
  return [`${"  ".repeat(depth)}${part.type}`, ...part.children.flatMap((c) => outline(c, depth + 1))];
}

export function header(part: MimePart, name: string): string | undefined {
  return part.headers.get(name.toLowerCase())?.[0];
}

function readPart(text: string): MimePart {
  const split = text.indexOf("\r\n\r\n");
  const head = split === -1 ? text : text.slice(0, split);
  const body = split === -1 ? "" : text.slice(split + 4);
  const headers = new Map<string, string[]>();
  for (const line of head.replace(/\r\n(?=[ \t])/g, "").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`not a header field: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const ct = parseHeaderValue(headers.get("content-type")?.[0] ?? "text/plain");
  const type = ct.value.toLowerCase();
  const part: MimePart = { type, params: ct.params, headers, children: [], body: "" };
  if (!type.startsWith("multipart/")) {
    part.body = body;
    return part;
  }
  const boundary = ct.params.boundary;
  if (!boundary) throw new Error(`${type} without a boundary`);
  const delimiter = `\r\n--${boundary}`;
  const pieces = `\r\n${body}`.split(delimiter);
  let closed = false;
  for (const piece of pieces.slice(1)) {
    if (piece.startsWith("--")) {
      closed = true;
      break;
    }
    // What follows the delimiter on its line is transport padding (RFC 2046 §5.1.1).
    part.children.push(readPart(piece.slice(piece.indexOf("\r\n") + 2)));
  }
  if (!closed) throw new Error(`${type} has no close delimiter`);
  return part;
}
