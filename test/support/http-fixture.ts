/**
 * HTTP messages captured in files (test/fixtures/calendarserver/*.http): a request to replay byte for
 * byte over a socket, or a response for a stand-in server to answer with, exactly as captured.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dir, "..", "fixtures");

export interface HttpFixture {
  /** The request line or status line. */
  readonly startLine: string;
  /** Header fields in order, as written. */
  readonly fields: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

/** Splits a captured message at the first empty line (CRLF or LF). */
export function readHttpFixture(path: string): HttpFixture {
  const bytes = readFileSync(path.startsWith("/") ? path : join(FIXTURES, path));
  const text = bytes.toString("latin1");
  const crlf = text.indexOf("\r\n\r\n");
  const lf = text.indexOf("\n\n");
  const [end, gap] = crlf !== -1 && (lf === -1 || crlf < lf) ? [crlf, 4] : [lf, 2];
  if (end === -1) throw new Error(`${path}: no empty line after the header`);
  const [startLine = "", ...lines] = text.slice(0, end).split(/\r?\n/);
  const fields = lines.map((l) => {
    const colon = l.indexOf(":");
    return [l.slice(0, colon), l.slice(colon + 1).trim()] as const;
  });
  return { startLine, fields, body: bytes.subarray(end + gap) };
}

/** The captured request's bytes, with its Host field replaced (the only field a replay changes). */
export function replayBytes(f: HttpFixture, host: string): Buffer {
  const fields = f.fields.map(([n, v]) =>
    n.toLowerCase() === "host" ? ([n, host] as const) : ([n, v] as const),
  );
  const head = `${f.startLine}\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), f.body]);
}

/** A captured response as a fetch Response (status, every field but Content-Length, the body). */
export function fixtureResponse(f: HttpFixture): Response {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(f.startLine)?.[1]);
  const headers = new Headers();
  for (const [n, v] of f.fields) if (n.toLowerCase() !== "content-length") headers.append(n, v);
  return new Response(new Uint8Array(f.body), { status, headers });
}
