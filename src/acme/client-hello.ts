/**
 * Reads the server name (SNI, RFC 6066 §3) and the offered application protocols (ALPN, RFC 7301
 * §3.1) from the first bytes a TLS client sends: its ClientHello (RFC 8446 §4.1.2), which may span
 * several records (§5.1). A pure function over bytes, for the TLS front (src/acme/tls-front.ts),
 * which must decide where a connection goes before any TLS library sees it: RFC 8737 §3 has the CA
 * offer ALPN `acme-tls/1`, and such a connection must get the challenge certificate.
 *
 * Anything that is not a well-formed ClientHello is "other": the caller hands it on unread, and the
 * TLS server behind refuses it as it would have anyway. The ClientHello is bounded (MAX_HELLO_BYTES)
 * so a stranger cannot make the front buffer more than that.
 */

export const MAX_HELLO_BYTES = 16 * 1024;

export type ClientHelloResult =
  | { kind: "incomplete" }
  | { kind: "other" }
  | { kind: "hello"; serverName?: string; alpn: string[] };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const OTHER: ClientHelloResult = { kind: "other" };
const INCOMPLETE: ClientHelloResult = { kind: "incomplete" };

export function readClientHello(bytes: Uint8Array): ClientHelloResult {
  // Join the handshake fragments of the records received so far (RFC 8446 §5.1).
  const fragments: Uint8Array[] = [];
  let have = 0;
  let at = 0;
  let needed: number | undefined;
  for (;;) {
    if (bytes.length < at + 5) return bytes.length > MAX_HELLO_BYTES ? OTHER : INCOMPLETE;
    if (bytes[at] !== RECORD_HANDSHAKE || bytes[at + 1] !== 3) return OTHER;
    const length = (bytes[at + 3]! << 8) | bytes[at + 4]!;
    if (length === 0) return OTHER;
    if (bytes.length < at + 5 + length) return at + 5 + length > MAX_HELLO_BYTES + 5 ? OTHER : INCOMPLETE;
    fragments.push(bytes.subarray(at + 5, at + 5 + length));
    have += length;
    at += 5 + length;
    if (needed === undefined && have >= 4) {
      const head = join(fragments, have);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return OTHER;
      needed = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (needed > MAX_HELLO_BYTES) return OTHER;
    }
    if (needed !== undefined && have >= needed) return parseHello(join(fragments, have).subarray(4, needed));
  }
}

function join(parts: readonly Uint8Array[], total: number): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}

/** The ClientHello body: version, random, session id, cipher suites, compression, extensions. */
function parseHello(b: Uint8Array): ClientHelloResult {
  const r = new Reader(b);
  r.skip(2 + 32);
  r.skip(r.u8());
  r.skip(r.u16());
  r.skip(r.u8());
  if (r.failed) return OTHER;
  if (r.left === 0) return { kind: "hello", alpn: [] }; // no extensions at all
  const extensions = r.sub(r.u16());
  let serverName: string | undefined;
  const alpn: string[] = [];
  while (!extensions.failed && extensions.left > 0) {
    const type = extensions.u16();
    const data = extensions.sub(extensions.u16());
    if (type === EXT_SERVER_NAME) {
      const list = data.sub(data.u16());
      while (!list.failed && list.left > 0) {
        const nameType = list.u8();
        const name = list.bytes(list.u16());
        if (nameType === 0 && serverName === undefined && name) serverName = new TextDecoder().decode(name);
      }
      if (list.failed) return OTHER;
    } else if (type === EXT_ALPN) {
      const list = data.sub(data.u16());
      while (!list.failed && list.left > 0) {
        const name = list.bytes(list.u8());
        if (name) alpn.push(new TextDecoder().decode(name));
      }
      if (list.failed) return OTHER;
    }
  }
  if (r.failed || extensions.failed) return OTHER;
  return { kind: "hello", serverName: serverName?.toLowerCase(), alpn };
}

/** A bounds-checked reader: any read past the end sets `failed` and returns zeros. */
class Reader {
  private at = 0;
  failed = false;
  constructor(private readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.at;
  }
  u8(): number {
    return this.bytes(1)?.[0] ?? 0;
  }
  u16(): number {
    const x = this.bytes(2);
    return x ? (x[0]! << 8) | x[1]! : 0;
  }
  skip(n: number): void {
    this.bytes(n);
  }
  bytes(n: number): Uint8Array | undefined {
    if (this.failed || this.left < n) {
      this.failed = true;
      return undefined;
    }
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  sub(n: number): Reader {
    const part = this.bytes(n);
    const r = new Reader(part ?? new Uint8Array(0));
    r.failed = part === undefined;
    return r;
  }
}
