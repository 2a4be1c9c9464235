/**
 * A small, synchronous MIME reader for the SMTP intake: the tree of entities of a raw RFC 5322
 * message (RFC 2045, RFC 2046 §5.1), each with its media type, Content-Type parameters and IMAP
 * section number (RFC 3501 §6.4.5), and transfer decoding (RFC 2045 §6.7, §6.8).
 *
 * Written here rather than taken from mailparser because the intake needs what mailparser's
 * simpleParser flattens away: the parent of a part (RFC 6047 §2.4 prefers the text/calendar inside
 * multipart/alternative), and a precise reason when a part cannot be decoded. The message is read as
 * latin1, one character per octet, so every slice maps back to the exact bytes.
 *
 * Tolerant where mail in the wild is sloppy (LF-only line ends, a missing close delimiter, junk in
 * quoted-printable), and bounded: entities nested deeper than MAX_DEPTH, or beyond MAX_ENTITIES,
 * are not read. A message/rfc822 part is a leaf: a forwarded invitation is not this message's own.
 */
import { parseHeaderValue } from "nodemailer/lib/mime-funcs";

export interface MimeEntity {
  /** IMAP section number: "1.3"; "" for a multipart root, "1" for a single-part message. */
  readonly path: string;
  /** Lower-case media type; RFC 2045 §5.2 default text/plain. */
  readonly type: string;
  /** Content-Type parameters, names lower-case, values trimmed. */
  readonly params: Readonly<Record<string, string>>;
  /** Content-Disposition filename, else the Content-Type name parameter. */
  readonly filename?: string;
  /** Lower-case Content-Transfer-Encoding; "7bit" when absent (RFC 2045 §6.1). */
  readonly transferEncoding: string;
  /** Media type of the enclosing multipart, if any. */
  readonly parentType?: string;
  /** The body still transfer-encoded, one character per octet. Empty for multiparts. */
  readonly body: string;
  readonly children: readonly MimeEntity[];
}

const MAX_DEPTH = 16;
const MAX_ENTITIES = 512;

export function readMime(raw: Uint8Array): MimeEntity {
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
  const budget = { left: MAX_ENTITIES };
  return readEntity(text, { path: "", depth: 0, budget, root: true });
}

/** Every non-multipart entity, in document order. */
export function leafEntities(root: MimeEntity): MimeEntity[] {
  if (root.children.length === 0) return root.type.startsWith("multipart/") ? [] : [root];
  return root.children.flatMap(leafEntities);
}

/** The decoded octets, or why they cannot be had. */
export function decodeBody(e: MimeEntity): { bytes: Uint8Array } | { error: string } {
  switch (e.transferEncoding) {
    case "7bit":
    case "8bit":
    case "binary":
      return { bytes: Buffer.from(e.body, "latin1") };
    case "base64": {
      const compact = e.body.replace(/[\s]+/g, "");
      // RFC 2045 §6.8: only the 65 characters of the alphabet, "=" at the end.
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
        return { error: "its base64 body holds characters outside the base64 alphabet (RFC 2045 §6.8)" };
      }
      return { bytes: Buffer.from(compact, "base64") };
    }
    case "quoted-printable":
      return { bytes: decodeQuotedPrintable(e.body) };
    default:
      return {
        error: `its Content-Transfer-Encoding "${e.transferEncoding.slice(0, 40)}" is unknown (RFC 2045 §6.1)`,
      };
  }
}

interface Where {
  path: string;
  depth: number;
  budget: { left: number };
  root: boolean;
  parentType?: string;
}

function readEntity(text: string, at: Where): MimeEntity {
  at.budget.left--;
  const { headers, body } = splitHead(text);
  const ct = parseHeaderValue(headers.get("content-type") ?? "text/plain");
  const type = ct.value.trim().toLowerCase() || "text/plain";
  const params = lowerKeys(ct.params);
  const disposition = headers.get("content-disposition");
  const filename = (disposition && lowerKeys(parseHeaderValue(disposition).params).filename) || params.name;
  const transferEncoding = (headers.get("content-transfer-encoding") ?? "7bit").trim().toLowerCase();
  const multipart = type.startsWith("multipart/") && params.boundary !== undefined;
  const path = at.root && !multipart ? "1" : at.path;
  const base = {
    path,
    type,
    params,
    transferEncoding,
    ...(filename !== undefined && { filename }),
    ...(at.parentType !== undefined && { parentType: at.parentType }),
  };
  if (!multipart || at.depth >= MAX_DEPTH) return { ...base, body: multipart ? "" : body, children: [] };

  const children: MimeEntity[] = [];
  for (const [i, piece] of splitMultipart(body, params.boundary!).entries()) {
    if (at.budget.left <= 0) break;
    children.push(
      readEntity(piece, {
        path: path === "" ? `${i + 1}` : `${path}.${i + 1}`,
        depth: at.depth + 1,
        budget: at.budget,
        root: false,
        parentType: type,
      }),
    );
  }
  return { ...base, body: "", children };
}

/** RFC 5322 §2.2.3 unfolding; the first empty line ends the header section. */
function splitHead(text: string): { headers: Map<string, string>; body: string } {
  const end = /\r?\n\r?\n/.exec(text);
  const emptyFirst = /^\r?\n/.exec(text);
  const headEnd = emptyFirst ? 0 : end ? end.index : text.length;
  const bodyStart = emptyFirst ? emptyFirst[0].length : end ? end.index + end[0].length : text.length;
  const headers = new Map<string, string>();
  for (const line of text
    .slice(0, headEnd)
    .replace(/\r?\n(?=[ \t])/g, "")
    .split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    // The first occurrence counts: a duplicated Content-Type is malformed and the first is what
    // most readers use.
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body: text.slice(bodyStart) };
}

/**
 * RFC 2046 §5.1.1: a delimiter is "--boundary" on a line of its own, possibly followed by transport
 * padding; the line break before it belongs to the delimiter. The close delimiter adds "--". The
 * preamble and epilogue are dropped; a missing close delimiter ends the last part at the end.
 */
function splitMultipart(body: string, boundary: string): string[] {
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${escaped}(--)?[ \\t]*(?=\\r?\\n|$)`, "g");
  const parts: string[] = [];
  let start = -1;
  for (let m = delimiter.exec(body); m !== null; m = delimiter.exec(body)) {
    if (start >= 0) parts.push(body.slice(start, m.index));
    if (m[1] !== undefined) return parts;
    const afterLine = /^\r?\n/.exec(body.slice(m.index + m[0].length, m.index + m[0].length + 2));
    start = m.index + m[0].length + (afterLine ? afterLine[0].length : 0);
  }
  if (start >= 0) parts.push(body.slice(start));
  return parts;
}

/**
 * RFC 2045 §6.7: "=XX" is an octet, "=" at the end of a line is a soft line break, and trailing
 * white space on a line was added in transport and is removed (rule 3). An "=" not followed by two
 * hex digits is kept as it is, as the RFC suggests for robustness. Hard line breaks become CRLF.
 */
function decodeQuotedPrintable(body: string): Uint8Array {
  const lines = body.split(/\r?\n/);
  const out = Buffer.alloc(body.length + 2 * lines.length);
  let n = 0;
  lines.forEach((raw, i) => {
    let line = raw.replace(/[ \t]+$/, "");
    const soft = line.endsWith("=");
    if (soft) line = line.slice(0, -1);
    for (let j = 0; j < line.length; j++) {
      const c = line.charCodeAt(j);
      const hex = c === 0x3d ? line.slice(j + 1, j + 3) : "";
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[n++] = Number.parseInt(hex, 16);
        j += 2;
      } else {
        out[n++] = c & 0xff;
      }
    }
    if (!soft && i < lines.length - 1) {
      out[n++] = 0x0d;
      out[n++] = 0x0a;
    }
  });
  return new Uint8Array(out.subarray(0, n));
}

function lowerKeys(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) out[k.toLowerCase()] = String(v).trim();
  return out;
}
