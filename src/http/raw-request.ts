/**
 * Raw HTTP/1.1 request files, as `isched dkim sign|verify` read and write them: request line, header
 * fields in wire order (repeated names kept apart, folded lines kept with their fold so that
 * canonicalisation sees what was sent), blank line, body. Lines may end in CRLF or LF.
 */
import type { HeaderField } from "../dkim/canonicalize.ts";

export interface RawRequest {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly fields: readonly HeaderField[];
  readonly body: Uint8Array;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Throws SyntaxError naming the line that is wrong. */
export function parseRawRequest(bytes: Uint8Array): RawRequest {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  const headEnd = findHeadEnd(text);
  if (headEnd === undefined) throw new SyntaxError("no blank line ends the header section");
  const lines = text.slice(0, headEnd.start).split(/\r?\n/);
  const requestLine = lines[0] ?? "";
  const m = /^([A-Z]+) (\S+) (HTTP\/\d\.\d)$/.exec(requestLine.trimEnd());
  if (!m)
    throw new SyntaxError(`line 1 is not a request line (METHOD TARGET HTTP/1.1): "${clip(requestLine)}"`);
  const fields: [string, string][] = [];
  const ends = text.slice(0, headEnd.start).match(/\r?\n/g) ?? [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^[ \t]/.test(line)) {
      const last = fields[fields.length - 1];
      if (!last) throw new SyntaxError(`line ${i + 1} continues a header but none precedes it`);
      last[1] += `${ends[i - 1] ?? "\r\n"}${line}`;
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name))
      throw new SyntaxError(`line ${i + 1} is not a header field (Name: value): "${clip(line)}"`);
    fields.push([name, line.slice(colon + 1).replace(/^[ \t]+/, "")]);
  }
  for (const f of fields) f[1] = f[1].replace(/[ \t]+$/, "");

  let body = bytes.subarray(headEnd.end);
  const lengths = fields.filter(([n]) => n.toLowerCase() === "content-length").map(([, v]) => v.trim());
  if (fields.some(([n, v]) => n.toLowerCase() === "transfer-encoding" && v.toLowerCase() !== "identity")) {
    throw new SyntaxError(
      "chunked or encoded request files are not supported: save the decoded body with a Content-Length",
    );
  }
  if (lengths.length > 0) {
    if (new Set(lengths).size > 1 || !/^\d+$/.test(lengths[0]!)) {
      throw new SyntaxError(`Content-Length "${lengths.join(", ")}" is not one whole number`);
    }
    const n = Number(lengths[0]);
    if (n > body.length)
      throw new SyntaxError(
        `Content-Length says ${n} bytes but the file holds ${body.length} after the headers`,
      );
    body = body.subarray(0, n);
  }
  return { method: m[1]!, target: m[2]!, version: m[3]!, fields, body };
}

function findHeadEnd(text: string): { start: number; end: number } | undefined {
  const m = /\r?\n\r?\n/.exec(text);
  return m ? { start: m.index, end: m.index + m[0].length } : undefined;
}

/** Writes a request back with CRLF line endings; field values are written as stored. */
export function serializeRawRequest(r: RawRequest): Uint8Array {
  const head = `${r.method} ${r.target} ${r.version}\r\n${r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), r.body]);
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
