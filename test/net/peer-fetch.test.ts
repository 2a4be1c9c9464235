/**
 * peerFetch against real HTTPS servers on loopback with certificates from a throwaway CA. Names such as
 * keys.example.test resolve through a static in-test resolver (the system resolver knows none of them,
 * so a request that bypassed the checked address would fail).
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server as NetServer } from "node:net";
import { PeerFetchError, type PeerFetchOptions, peerFetch } from "../../src/net/peer-fetch.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/pki.ts";

type AddressAnswer = Awaited<ReturnType<PeerFetchOptions["resolver"]["addresses"]>>;
type Hit = Pick<Request, "method" | "url" | "headers"> & { body: Uint8Array };

/** `answers[name]` is a list of answers: the n-th lookup gets the n-th (the last one repeats). */
function staticResolver(answers: Record<string, (string[] | AddressAnswer)[]>) {
  const calls: string[] = [];
  return {
    calls,
    async addresses(name: string): Promise<AddressAnswer> {
      const list = answers[name] ?? [{ status: "nxdomain", ttl: 60 }];
      const a = list[Math.min(calls.filter((c) => c === name).length, list.length - 1)]!;
      calls.push(name);
      if (!Array.isArray(a)) return a;
      const records = a.map(
        (address) => ({ address, family: address.includes(":") ? 6 : 4, ttl: 60 }) as const,
      );
      return { status: "ok", records, ttl: 60 };
    },
  };
}

/** Servers to stop and CA directories to delete after the file's tests. */
const stops: (() => void)[] = [];
function newCa(name?: string): TestCa {
  const made = createTestCa(undefined, name);
  stops.push(() => made.remove());
  return made;
}
function serve(
  cert: IssuedCert | null,
  handler?: (r: Request) => Response | Promise<Response>,
  hostname = "127.0.0.1",
  port = 0,
) {
  const hits: Hit[] = [];
  const server = Bun.serve({
    hostname,
    port,
    ...(cert ? { tls: { cert: cert.certPem, key: cert.keyPem } } : {}),
    async fetch(r) {
      const body = new Uint8Array(await r.clone().arrayBuffer());
      hits.push({ method: r.method, url: r.url, headers: r.headers, body });
      return handler ? handler(r) : new Response("hello");
    },
  });
  stops.push(() => server.stop(true));
  return { port: server.port!, hits };
}

async function failure(p: Promise<unknown>): Promise<PeerFetchError> {
  const e: unknown = await p.then(() => null).catch((err: unknown) => err);
  if (!(e instanceof PeerFetchError)) throw new Error(`expected a PeerFetchError, got ${String(e)}`);
  return e;
}

/** A plain TCP listener on 127.0.0.1 (a server that never speaks TLS, or a closed port). */
async function tcpListener(onConnection?: () => void): Promise<{ port: number; server: NetServer }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, server };
}

let ca: TestCa;
let keysCert: IssuedCert;
const resolver = staticResolver({
  "keys.example.test": [["127.0.0.1"]],
  "bogus.example.test": [["127.0.0.1"]],
});
const opts = (extra: Partial<PeerFetchOptions> = {}): PeerFetchOptions => ({
  resolver,
  allowPrivate: true,
  ca: ca.caCertPem,
  ...extra,
});
const get = (url: string, extra?: Partial<PeerFetchOptions>) =>
  peerFetch({ method: "GET", url }, opts(extra));
const keys = (port: number, path = "/"): string => `https://keys.example.test:${port}${path}`;
const text = (body: Uint8Array): string => new TextDecoder().decode(body);

beforeAll(() => {
  ca = newCa();
  keysCert = ca.issue(["keys.example.test", "127.0.0.1", "::1"]);
});
afterAll(() => {
  for (const stop of stops) stop();
});

describe("peerFetch over verified TLS", () => {
  test("GET reaches the checked address with the Host header, path and query intact", async () => {
    const s = serve(keysCert);
    const url = keys(s.port, "/.well-known/domainkey/a%20b/s1?x=1&y=%2F");
    const res = await peerFetch({ method: "GET", url, headers: { Accept: "text/plain" } }, opts());
    expect(res.status).toBe(200);
    expect(text(res.body)).toBe("hello");
    expect(res.address).toBe("127.0.0.1");
    expect(res.url).toBe(url);
    expect(s.hits).toHaveLength(1);
    expect(s.hits[0]!.headers.get("host")).toBe(`keys.example.test:${s.port}`);
    expect(new URL(s.hits[0]!.url).pathname + new URL(s.hits[0]!.url).search).toBe(
      "/.well-known/domainkey/a%20b/s1?x=1&y=%2F",
    );
    expect(s.hits[0]!.headers.get("accept")).toBe("text/plain");
    expect(s.hits[0]!.headers.get("accept-encoding")).toBe("identity");
  });

  test("POST delivers the body byte for byte", async () => {
    const s = serve(keysCert, async (r) => new Response(await r.arrayBuffer()));
    const body = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    const headers: [string, string][] = [["Content-Type", "application/octet-stream"]];
    const res = await peerFetch({ method: "POST", url: keys(s.port, "/post"), headers, body }, opts());
    expect(s.hits[0]!.method).toBe("POST");
    expect(s.hits[0]!.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(s.hits[0]!.body).equals(Buffer.from(body))).toBe(true);
    expect(Buffer.from(res.body).equals(Buffer.from(body))).toBe(true);
  });

  test("a certificate for another name is a tls error, even after a good request to the same address", async () => {
    const s = serve(keysCert);
    await get(keys(s.port));
    const e = await failure(get(`https://bogus.example.test:${s.port}/`));
    expect(e.kind).toBe("tls");
    expect(e.temporary).toBe(false);
    expect(e.message).toContain("bogus.example.test");
    expect(s.hits).toHaveLength(1);
  });

  test("sends the host name as SNI, so a server with several certificates presents the right one", async () => {
    const other = ca.issue(["other.example.test"]);
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      // The first entry is what a client without SNI gets: the wrong certificate for keys.example.test.
      tls: [
        { serverName: "other.example.test", cert: other.certPem, key: other.keyPem },
        { serverName: "keys.example.test", cert: keysCert.certPem, key: keysCert.keyPem },
      ],
      fetch: () => new Response("virtual host"),
    });
    stops.push(() => server.stop(true));
    const res = await get(keys(server.port!));
    expect(text(res.body)).toBe("virtual host");
  });

  test("a certificate from a CA nobody trusts is a tls error; a ca bundle naming that CA too trusts it", async () => {
    const strangerCa = newCa("stranger CA");
    const s = serve(strangerCa.issue(["keys.example.test"]));
    const e = await failure(get(keys(s.port)));
    expect(e.kind).toBe("tls");
    expect(s.hits).toHaveLength(0);
    const res = await get(keys(s.port), { ca: ca.caCertPem + strangerCa.caCertPem });
    expect(res.status).toBe(200);
  });

  test("a port that does not speak TLS is a tls error", async () => {
    const s = serve(null);
    expect((await failure(get(keys(s.port)))).kind).toBe("tls");
  });

  test("without the ca option the test CA is not trusted", async () => {
    const s = serve(keysCert);
    const e = await failure(get(keys(s.port), { ca: undefined }));
    expect(e.kind).toBe("tls");
  });

  test("the ca option adds to the default trust store instead of replacing it", async () => {
    // NODE_EXTRA_CA_CERTS stands in for the system store: it is part of Bun's default store.
    const systemCa = newCa("stand-in system CA");
    const bySystem = serve(systemCa.issue(["keys.example.test"]));
    const byOperator = serve(keysCert);
    const child = Bun.spawn([process.execPath, "-e", CHILD_SCRIPT], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: systemCa.caCertFile,
        OPERATOR_CA: ca.caCertPem,
        PORTS: `${bySystem.port},${byOperator.port}`,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    expect(err).toBe("");
    // Bun's own tls.ca replaces the store (the raw fetch fails); peerFetch trusts both CAs.
    expect(JSON.parse(out)).toEqual({ peerFetch: [200, 200], rawFetchWithCa: "failed" });
  });
});

const CHILD_SCRIPT = `
const { peerFetch } = await import(${JSON.stringify(new URL("../../src/net/peer-fetch.ts", import.meta.url).pathname)});
const ca = process.env.OPERATOR_CA;
const resolver = { addresses: async () => ({ status: "ok", ttl: 60, records: [{ address: "127.0.0.1", family: 4, ttl: 60 }] }) };
const [systemPort, operatorPort] = process.env.PORTS.split(",");
const result = { peerFetch: [], rawFetchWithCa: "ok" };
for (const port of [systemPort, operatorPort]) {
  const r = await peerFetch({ method: "GET", url: "https://keys.example.test:" + port + "/" }, { resolver, allowPrivate: true, ca }).catch((e) => e);
  result.peerFetch.push(r.status ?? r.kind);
}
await fetch("https://127.0.0.1:" + systemPort + "/", { tls: { serverName: "keys.example.test", ca } }).catch(() => { result.rawFetchWithCa = "failed"; });
console.log(JSON.stringify(result));
`;

describe("peerFetch address checks", () => {
  test("a name resolving to a loopback address is refused without allowPrivate, before any connection", async () => {
    const s = serve(keysCert);
    const e = await failure(get(keys(s.port), { allowPrivate: false }));
    expect(e.kind).toBe("refused-address");
    expect(e.temporary).toBe(false);
    expect(e.message).toBe(
      "Refusing to connect to keys.example.test at 127.0.0.1: a loopback address (start with --allow-private-peers to allow it)",
    );
    expect(s.hits).toHaveLength(0);
  });

  test("an IP-literal URL is checked directly, without DNS, and verified against the IP SAN", async () => {
    const r = staticResolver({});
    const s = serve(keysCert);
    const refused = await failure(get(`https://127.0.0.1:${s.port}/`, { resolver: r, allowPrivate: false }));
    expect(refused.kind).toBe("refused-address");
    expect(s.hits).toHaveLength(0);
    const res = await get(`https://127.0.0.1:${s.port}/ip`, { resolver: r });
    expect(res.address).toBe("127.0.0.1");
    const v6 = serve(keysCert, undefined, "::1");
    const res6 = await get(`https://[::1]:${v6.port}/ip`, { resolver: r });
    expect(res6.address).toBe("::1");
    expect(v6.hits[0]!.headers.get("host")).toBe(`[::1]:${v6.port}`);
    expect(r.calls).toEqual([]);
  });

  test("connects to the address it checked even when DNS answers differently later", async () => {
    const real = serve(keysCert);
    const decoy = serve(keysCert, () => new Response("decoy"), "127.0.0.2", real.port);
    const r = staticResolver({ "keys.example.test": [["127.0.0.1"], ["127.0.0.2"]] });
    const res = await get(keys(real.port), { resolver: r });
    expect(text(res.body)).toBe("hello");
    expect(res.address).toBe("127.0.0.1");
    expect(r.calls).toEqual(["keys.example.test"]);
    expect(decoy.hits).toHaveLength(0);
  });

  test("tries the next checked address when one refuses the connection", async () => {
    const s = serve(keysCert);
    const r = staticResolver({ "keys.example.test": [["127.0.0.3", "127.0.0.1"]] });
    const res = await get(keys(s.port), { resolver: r });
    expect(res.address).toBe("127.0.0.1");
  });

  test("a DNS failure is a temporary dns error; a missing name is no-address", async () => {
    const r = staticResolver({ "keys.example.test": [{ status: "error", message: "SERVFAIL" }] });
    const e = await failure(get("https://keys.example.test/", { resolver: r }));
    expect([e.kind, e.temporary]).toEqual(["dns", true]);
    const none = await failure(get("https://missing.example.test/"));
    expect(none.kind).toBe("no-address");
  });

  test("http URLs are refused unless the request allows them (a legacy-http peer)", async () => {
    const s = serve(null);
    const e = await failure(get(`http://keys.example.test:${s.port}/`));
    expect(e.kind).toBe("bad-url");
    expect(s.hits).toHaveLength(0);
    const res = await peerFetch(
      { method: "GET", url: `http://keys.example.test:${s.port}/plain`, allowHttp: true },
      opts(),
    );
    expect(res.status).toBe(200);
    expect(s.hits[0]!.headers.get("host")).toBe(`keys.example.test:${s.port}`);
  });

  test("redirects are returned to the caller, not followed", async () => {
    const s = serve(
      keysCert,
      () => new Response(null, { status: 302, headers: { location: "https://10.0.0.1/" } }),
    );
    const res = await get(keys(s.port));
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://10.0.0.1/");
    expect(s.hits).toHaveLength(1);
  });
});

describe("peerFetch limits and failures", () => {
  test("a body streaming past the cap is too-large and is not read to the end", async () => {
    let sent = 0;
    const chunk = new Uint8Array(16 * 1024);
    // Endless: a client that read to the end would never finish.
    const pull = (c: ReadableStreamDefaultController<Uint8Array>): void => {
      sent += chunk.byteLength;
      c.enqueue(chunk);
    };
    const s = serve(keysCert, () => new Response(new ReadableStream({ pull })));
    const e = await failure(get(keys(s.port), { maxResponseBytes: 64 * 1024 }));
    expect([e.kind, e.temporary]).toEqual(["too-large", false]);
    await Bun.sleep(100);
    const after = sent;
    await Bun.sleep(100);
    expect(sent).toBe(after);
  });

  test("a declared Content-Length above the cap is too-large", async () => {
    const s = serve(keysCert, () => new Response(new Uint8Array(200_000)));
    const e = await failure(get(keys(s.port), { maxResponseBytes: 100_000 }));
    expect(e.kind).toBe("too-large");
  });

  test("a slow response is a temporary timeout within the total limit", async () => {
    const s = serve(keysCert, async () => {
      await Bun.sleep(3000);
      return new Response("late");
    });
    const t0 = performance.now();
    const e = await failure(get(keys(s.port), { totalTimeoutMs: 300 }));
    expect([e.kind, e.temporary]).toEqual(["timeout", true]);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  test("a server that never completes the TLS handshake times out after the connect timeout", async () => {
    const { port, server } = await tcpListener(() => {});
    stops.push(() => server.close());
    const t0 = performance.now();
    const e = await failure(get(keys(port), { connectTimeoutMs: 200 }));
    expect([e.kind, e.temporary]).toEqual(["timeout", true]);
    expect(e.message).toContain("No answer from keys.example.test at 127.0.0.1");
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  test("a refused connection is a temporary connect error", async () => {
    const { port, server } = await tcpListener();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const e = await failure(get(keys(port)));
    expect([e.kind, e.temporary]).toEqual(["connect", true]);
  });
});
