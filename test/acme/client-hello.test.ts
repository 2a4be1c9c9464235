/** readClientHello over ClientHellos that real TLS clients (Bun's node:tls) send, and broken ones. */
import { describe, expect, test } from "bun:test";
import * as net from "node:net";
import * as tls from "node:tls";
import { MAX_HELLO_BYTES, readClientHello } from "../../src/acme/client-hello.ts";

/** The first bytes a TLS client sends, caught by a plain TCP server. */
async function clientHello(o: tls.ConnectionOptions): Promise<Uint8Array> {
  let bytes = new Uint8Array(0);
  const server = net.createServer((s) => {
    s.on("data", (d: Buffer) => {
      bytes = new Uint8Array([...bytes, ...d]);
      if (readClientHello(bytes).kind !== "incomplete" || bytes.length > 4 * MAX_HELLO_BYTES) s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: "127.0.0.1", port, ...o });
    c.on("error", () => resolve());
    c.on("close", () => resolve());
  });
  server.close();
  return bytes;
}

/** The same handshake message cut into records of at most `size` bytes (RFC 8446 §5.1). */
function reframe(hello: Uint8Array, size: number): Uint8Array {
  const body = hello.subarray(5);
  const out: number[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, at + size);
    out.push(22, 3, 1, part.length >> 8, part.length & 0xff, ...part);
  }
  return new Uint8Array(out);
}

describe("readClientHello", () => {
  test("reads the server name and the ALPN protocols a TLS-ALPN-01 validator offers", async () => {
    const hello = await clientHello({ servername: "Isched.Example.test", ALPNProtocols: ["acme-tls/1"] });
    expect(readClientHello(hello)).toEqual({
      kind: "hello",
      serverName: "isched.example.test",
      alpn: ["acme-tls/1"],
    });
  });

  test("reads a browser-like offer, and a hello without SNI or ALPN", async () => {
    const offer = await clientHello({ servername: "a.example", ALPNProtocols: ["h2", "http/1.1"] });
    expect(readClientHello(offer)).toEqual({
      kind: "hello",
      serverName: "a.example",
      alpn: ["h2", "http/1.1"],
    });
    const bare = await clientHello({});
    expect(readClientHello(bare)).toEqual({ kind: "hello", serverName: undefined, alpn: [] });
  });

  test("is incomplete until the last byte of the hello has come, then complete", async () => {
    const hello = await clientHello({ servername: "a.example", ALPNProtocols: ["acme-tls/1"] });
    for (let n = 0; n < hello.length; n++)
      expect(readClientHello(hello.subarray(0, n)).kind).toBe("incomplete");
    expect(readClientHello(hello).kind).toBe("hello");
  });

  test("joins a hello that spans several records", async () => {
    const hello = await clientHello({ servername: "a.example", ALPNProtocols: ["acme-tls/1"] });
    const split = reframe(hello, 37);
    expect(readClientHello(split)).toEqual(readClientHello(hello));
    expect(readClientHello(split.subarray(0, split.length - 1)).kind).toBe("incomplete");
  });

  test("anything else is 'other': plain HTTP, a truncated extension, an oversized hello", async () => {
    expect(readClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")).kind).toBe("other");
    const hello = await clientHello({ servername: "a.example", ALPNProtocols: ["acme-tls/1"] });
    const broken = new Uint8Array(hello);
    broken[broken.length - 12] = 0xff; // a length inside the last extensions runs past the end
    broken[broken.length - 11] = 0xff;
    expect(readClientHello(broken).kind).toBe("other");
    const huge = new Uint8Array([22, 3, 1, 0x40, 0x01, 1, 0, 0x40, 0]);
    expect(readClientHello(huge).kind).toBe("other");
  });
});
