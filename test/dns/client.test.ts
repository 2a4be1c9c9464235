/**
 * The DNS client over real sockets: against a real dnsmasq (test/support/dnsmasq.ts) for what a
 * normal server does, and against small servers written here for what dnsmasq cannot be made to do
 * (truncate on purpose, send mismatched IDs, stay silent, put chosen SOA TTLs in negative answers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import * as packet from "dns-packet";
import { createResolver, type DnsAnswer, type DnsResolver } from "../../src/dns/client.ts";
import type { HostPort } from "../../src/net/host-port.ts";
import { bindDnsSockets } from "../support/dns-sockets.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";

/** The records of an ok answer; fails the test with the whole answer otherwise. */
function records<T>(answer: DnsAnswer<T>): readonly T[] {
  if (answer.status !== "ok") throw new Error(`expected status ok, got ${JSON.stringify(answer)}`);
  return answer.records;
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");

// A 2048-bit RSA public key in a DKIM record is about 400 characters of base64: longer than one
// character-string, so publishers split it at 255 (RFC 1035 section 3.3.14, RFC 6376 section 3.6.2.2).
const KEY_RECORD = `v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA${"q7Zx+/Ab9".repeat(35)}IDAQAB`;
const KEY_STRINGS = [KEY_RECORD.slice(0, 255), KEY_RECORD.slice(255)];

describe("against dnsmasq", () => {
  let dns: RunningDnsmasq;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dns = await startDnsmasq({
      zones: ["isched.test"],
      ttl: 300,
      txt: [
        { name: "three.isched.test", strings: ["v=DKIM1;", " k=rsa;", " p=AAAA"] },
        { name: "two.isched.test", strings: ["first"] },
        { name: "two.isched.test", strings: ["second", "record"] },
        { name: "key.isched.test", strings: KEY_STRINGS },
        { name: "quotes.isched.test", strings: ['v=DKIM1; p="MIIB+/="', "'single'"] },
        { name: "comma.isched.test", strings: ["a,b", "  leading spaces"] },
        { name: "euro.isched.test", strings: ["€"] },
        { name: "control.isched.test", strings: ["a\u0001b", "\u007f"] },
        // Four strings of 250 bytes do not fit the 512 bytes of a UDP answer without EDNS.
        { name: "big.isched.test", strings: ["a", "b", "c", "d"].map((c) => c.repeat(250)) },
      ],
      srv: [
        {
          name: "_ischedules._tcp.isched.test",
          target: "backup.isched.test",
          port: 8443,
          priority: 20,
          weight: 0,
        },
        {
          name: "_ischedules._tcp.isched.test",
          target: "one.isched.test",
          port: 443,
          priority: 10,
          weight: 60,
        },
        {
          name: "_ischedules._tcp.isched.test",
          target: "two.isched.test",
          port: 443,
          priority: 10,
          weight: 40,
        },
        { name: "_ischedule._tcp.isched.test", target: "", port: 0 },
      ],
      hosts: [
        { name: "dual.isched.test", address: "192.0.2.10" },
        { name: "dual.isched.test", address: "2001:db8::10" },
        { name: "many.isched.test", address: "192.0.2.21" },
        { name: "many.isched.test", address: "192.0.2.22" },
        { name: "six.isched.test", address: "2001:db8::6" },
      ],
      cnames: [
        { name: "alias.isched.test", target: "three.isched.test", ttl: 40 },
        { name: "alias2.isched.test", target: "alias.isched.test" },
      ],
    });
    resolver = createResolver({ servers: [dns.server], timeoutMs: 1000 });
  });
  afterAll(() => dns?.stop());

  test("txt() returns one record per TXT RR with its strings apart", async () => {
    const answer = await resolver.txt("three.isched.test");
    const [record, ...rest] = records(answer);
    expect(rest).toHaveLength(0);
    expect(record!.strings.map(latin1)).toEqual(["v=DKIM1;", " k=rsa;", " p=AAAA"]);
    expect(record!.text).toBe("v=DKIM1; k=rsa; p=AAAA");
    expect(record!.ttl).toBe(300);
    expect(answer.status === "ok" && answer.ttl).toBe(300);
  });

  test("txt() keeps two TXT RRs at one name as two records, never glued", async () => {
    const texts = records(await resolver.txt("two.isched.test")).map((r) => r.text);
    expect(texts.sort()).toEqual(["first", "secondrecord"]);
  });

  test("txt() joins a 2048-bit DKIM key split at 255 bytes back into one text", async () => {
    const [record, ...rest] = records(await resolver.txt("key.isched.test"));
    expect(rest).toHaveLength(0);
    expect(record!.strings.map((s) => s.length)).toEqual([255, KEY_RECORD.length - 255]);
    expect(record!.text).toBe(KEY_RECORD);
  });

  test("txt() returns quotes, commas, '+', '/', '=' and leading spaces byte for byte", async () => {
    const [quoted] = records(await resolver.txt("quotes.isched.test"));
    expect(quoted!.strings.map(latin1)).toEqual(['v=DKIM1; p="MIIB+/="', "'single'"]);
    const [comma] = records(await resolver.txt("comma.isched.test"));
    expect(comma!.strings.map(latin1)).toEqual(["a,b", "  leading spaces"]);
  });

  test("txt() returns control bytes as they are", async () => {
    const [record] = records(await resolver.txt("control.isched.test"));
    expect(record!.strings.map((s) => [...s])).toEqual([[0x61, 0x01, 0x62], [0x7f]]);
  });

  test("txt() decodes each byte as one latin1 character, not as UTF-8 or windows-1252", async () => {
    const [record] = records(await resolver.txt("euro.isched.test"));
    expect([...record!.strings[0]!]).toEqual([0xe2, 0x82, 0xac]);
    // windows-1252 would turn 0x82 into "‚" (U+201A); latin1 keeps it as U+0082.
    expect(record!.text).toBe("\u00e2\u0082\u00ac");
  });

  test("txt() retries over TCP when dnsmasq truncates a large answer", async () => {
    const udp = await rawUdpQuery(dns.server, "big.isched.test", "TXT");
    expect(udp.flag_tc).toBe(true); // the premise: over UDP alone the record is lost
    const [record] = records(await resolver.txt("big.isched.test"));
    expect(record!.strings.map(latin1)).toEqual(["a", "b", "c", "d"].map((c) => c.repeat(250)));
  });

  test("names are case-insensitive and may end with a dot", async () => {
    expect(records(await resolver.txt("THREE.Isched.TEST.")).map((r) => r.text)).toEqual([
      "v=DKIM1; k=rsa; p=AAAA",
    ]);
  });

  test("txt() follows a CNAME chain and lowers the TTL to the smallest along it", async () => {
    const answer = await resolver.txt("alias2.isched.test");
    expect(records(answer).map((r) => [r.text, r.ttl])).toEqual([["v=DKIM1; k=rsa; p=AAAA", 40]]);
    expect(answer.status === "ok" && answer.ttl).toBe(40);
  });

  test("srv() returns every SRV record with priority, weight, port, target and TTL", async () => {
    const found = records(await resolver.srv("_ischedules._tcp.isched.test"));
    const sorted = [...found].sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    expect(sorted).toEqual([
      { priority: 10, weight: 60, port: 443, target: "one.isched.test", ttl: 300 },
      { priority: 10, weight: 40, port: 443, target: "two.isched.test", ttl: 300 },
      { priority: 20, weight: 0, port: 8443, target: "backup.isched.test", ttl: 300 },
    ]);
  });

  test('srv() reports the "." target (service not offered, RFC 2782) as ""', async () => {
    expect(records(await resolver.srv("_ischedule._tcp.isched.test"))).toEqual([
      { priority: 0, weight: 0, port: 0, target: "", ttl: 300 },
    ]);
  });

  test("addresses() returns A and AAAA records with their family", async () => {
    const found = records(await resolver.addresses("dual.isched.test"));
    expect(found).toEqual([
      { address: "192.0.2.10", family: 4, ttl: 300 },
      { address: "2001:db8::10", family: 6, ttl: 300 },
    ]);
    const many = records(await resolver.addresses("many.isched.test")).map((r) => r.address);
    expect(many.sort()).toEqual(["192.0.2.21", "192.0.2.22"]);
  });

  test("addresses() is ok when only one family has records", async () => {
    expect(records(await resolver.addresses("six.isched.test"))).toEqual([
      { address: "2001:db8::6", family: 6, ttl: 300 },
    ]);
  });

  test("an unknown name is nxdomain with the default TTL when the answer has no SOA", async () => {
    expect(await resolver.txt("missing.isched.test")).toEqual({ status: "nxdomain", ttl: 60 });
    expect(await resolver.addresses("missing.isched.test")).toEqual({ status: "nxdomain", ttl: 60 });
  });

  test("a name without records of the asked type is nodata", async () => {
    expect(await resolver.txt("dual.isched.test")).toEqual({ status: "nodata", ttl: 60 });
    expect(await resolver.srv("three.isched.test")).toEqual({ status: "nodata", ttl: 60 });
    expect(await resolver.addresses("three.isched.test")).toEqual({ status: "nodata", ttl: 60 });
  });

  test("REFUSED is an error naming the rcode, the server and the name", async () => {
    const answer = await resolver.txt("elsewhere.example");
    expect(answer).toEqual({
      status: "error",
      message: `REFUSED from 127.0.0.1:${dns.server.port} for elsewhere.example TXT`,
    });
  });

  test("a name that is not a domain name is an error without asking", async () => {
    const answer = await resolver.txt("not a name");
    expect(answer.status).toBe("error");
    expect(answer.status === "error" && answer.message).toContain("not a domain name");
  });
});

describe("against authoritative dnsmasq", () => {
  let dns: RunningDnsmasq;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dns = await startDnsmasq({
      zones: ["auth.test"],
      ttl: 120,
      soa: true,
      txt: [{ name: "k._domainkey.auth.test", strings: ["v=DKIM1; p=AAAA"] }],
      hosts: [{ name: "www.auth.test", address: "192.0.2.80" }],
    });
    resolver = createResolver({ servers: [dns.server], timeoutMs: 1000 });
  });
  afterAll(() => dns?.stop());

  test("negative answers take their TTL from the SOA in the authority section", async () => {
    expect(await resolver.txt("gone._domainkey.auth.test")).toEqual({ status: "nxdomain", ttl: 120 });
    expect(await resolver.txt("www.auth.test")).toEqual({ status: "nodata", ttl: 120 });
  });

  test("answers carry the zone TTL", async () => {
    expect(records(await resolver.txt("k._domainkey.auth.test")).map((r) => [r.text, r.ttl])).toEqual([
      ["v=DKIM1; p=AAAA", 120],
    ]);
    expect(records(await resolver.addresses("www.auth.test"))).toEqual([
      { address: "192.0.2.80", family: 4, ttl: 120 },
    ]);
  });
});

describe("the dnsmasq fixture", () => {
  test("a refused start fails with dnsmasq's own message", async () => {
    const start = startDnsmasq({
      zones: ["bad.test"],
      cnames: [
        { name: "a.bad.test", target: "b.bad.test" },
        { name: "a.bad.test", target: "c.bad.test" },
      ],
    });
    await expect(start).rejects.toThrow("duplicate CNAME");
  });
});

describe("against scripted servers", () => {
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  test("a truncated UDP answer is asked again over TCP, with a 2-byte length prefix", async () => {
    const fake = await scriptedServer((q, via) => {
      if (via === "udp") return [reply(q, { tc: true, answers: [txt(q, ["partial"])] })];
      return [reply(q, { answers: [txt(q, ["full", "answer"]), txt(q, ["second"])] })];
    });
    stops.push(fake.stop);
    const answer = await createResolver({ servers: [fake.server], timeoutMs: 1000 }).txt("tc.example");
    expect(records(answer).map((r) => r.strings.map(latin1))).toEqual([["full", "answer"], ["second"]]);
    expect(fake.seen).toEqual(["udp", "tcp"]);
  });

  test("responses with another ID or another question are ignored, the matching one is used", async () => {
    const fake = await scriptedServer((q) => [
      reply(q, { id: (q.id! + 1) & 0xffff, answers: [txt(q, ["wrong id"])] }),
      reply(
        { ...q, questions: [{ name: "other.example", type: "TXT", class: "IN" }] },
        {
          answers: [txt(q, ["wrong question"])],
        },
      ),
      reply(
        { ...q, questions: [{ name: q.questions![0]!.name, type: "SRV", class: "IN" }] },
        {
          answers: [txt(q, ["wrong type"])],
        },
      ),
      Buffer.from("not a DNS message"),
      reply(q, { answers: [txt(q, ["genuine"])] }),
    ]);
    stops.push(fake.stop);
    const answer = await createResolver({ servers: [fake.server], timeoutMs: 1000 }).txt("spoof.example");
    expect(records(answer).map((r) => r.text)).toEqual(["genuine"]);
  });

  test("a mismatched response alone does not end the wait: the query times out", async () => {
    const fake = await scriptedServer((q) => [
      reply(q, { id: (q.id! + 1) & 0xffff, answers: [txt(q, ["x"])] }),
    ]);
    stops.push(fake.stop);
    const answer = await createResolver({ servers: [fake.server], timeoutMs: 150, attempts: 1 }).txt(
      "x.example",
    );
    expect(answer.status === "error" && answer.message).toStartWith("timeout after 1 attempt of 150ms");
  });

  test("queries carry a random ID and the RD flag", async () => {
    const ids: number[] = [];
    const rd: boolean[] = [];
    const fake = await scriptedServer((q) => {
      ids.push(q.id!);
      rd.push(q.flag_rd);
      return [reply(q, { answers: [txt(q, ["ok"])] })];
    });
    stops.push(fake.stop);
    const resolver = createResolver({ servers: [fake.server], timeoutMs: 1000 });
    for (let i = 0; i < 8; i++) records(await resolver.txt("id.example"));
    expect(new Set(ids).size).toBeGreaterThan(4);
    expect(rd).toEqual(Array(8).fill(true));
  });

  test("a server that never answers gives a timeout error after all attempts", async () => {
    const silent = await scriptedServer(() => []);
    stops.push(silent.stop);
    const resolver = createResolver({ servers: [silent.server], timeoutMs: 120, attempts: 2 });
    const started = performance.now();
    const answer = await resolver.txt("silent.example");
    const elapsed = performance.now() - started;
    expect(answer).toEqual({
      status: "error",
      message: `timeout after 2 attempts of 120ms (127.0.0.1:${silent.server.port}) for silent.example TXT`,
    });
    expect(elapsed).toBeGreaterThanOrEqual(230);
    expect(elapsed).toBeLessThan(1000);
    expect(silent.seen).toEqual(["udp", "udp"]);
  });

  test("a UDP port nobody listens on is an error well before the timeout", async () => {
    const port = await closedPort();
    const resolver = createResolver({ servers: [{ host: "127.0.0.1", port }], timeoutMs: 2000, attempts: 2 });
    const started = performance.now();
    const answer = await resolver.srv("_ischedules._tcp.example.com");
    expect(answer.status).toBe("error");
    expect(answer.status === "error" && answer.message).toContain(`127.0.0.1:${port}`);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  test("the next attempt goes to the next server", async () => {
    const silent = await scriptedServer(() => []);
    const good = await scriptedServer((q) => [reply(q, { answers: [txt(q, ["from the second"])] })]);
    stops.push(silent.stop, good.stop);
    const resolver = createResolver({ servers: [silent.server, good.server], timeoutMs: 150, attempts: 2 });
    expect(records(await resolver.txt("rotate.example")).map((r) => r.text)).toEqual(["from the second"]);
    expect(silent.seen).toEqual(["udp"]);
  });

  test("SERVFAIL, FORMERR and NOTIMP are errors that name the rcode and the server", async () => {
    for (const [rcode, name] of [
      [2, "SERVFAIL"],
      [1, "FORMERR"],
      [4, "NOTIMP"],
    ] as const) {
      const fake = await scriptedServer((q) => [reply(q, { rcode })]);
      stops.push(fake.stop);
      const answer = await createResolver({ servers: [fake.server], timeoutMs: 500 }).srv(
        "_ischedules._tcp.example.com",
      );
      expect(answer).toEqual({
        status: "error",
        message: `${name} from 127.0.0.1:${fake.server.port} for _ischedules._tcp.example.com SRV`,
      });
    }
  });

  test("the negative TTL is min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5)", async () => {
    const fake = await scriptedServer((q) => {
      const name = q.questions![0]!.name;
      const [ttl, minimum] = name.startsWith("short-minimum") ? [3600, 30] : [20, 86400];
      return [
        reply(q, { rcode: name.startsWith("nodata") ? 0 : 3, authorities: [soa("example", ttl, minimum)] }),
      ];
    });
    stops.push(fake.stop);
    const resolver = createResolver({ servers: [fake.server], timeoutMs: 1000 });
    expect(await resolver.txt("short-minimum.example")).toEqual({ status: "nxdomain", ttl: 30 });
    expect(await resolver.txt("short-ttl.example")).toEqual({ status: "nxdomain", ttl: 20 });
    expect(await resolver.txt("nodata.example")).toEqual({ status: "nodata", ttl: 20 });
  });

  test("records reached through a CNAME outside the answer chain are not taken", async () => {
    const fake = await scriptedServer((q) => [
      reply(q, {
        answers: [
          { type: "CNAME", name: "c.example", ttl: 50, data: "target.example" },
          { type: "TXT", name: "c.example", ttl: 50, data: ["unrelated owner"] },
          { type: "TXT", name: "TARGET.example", ttl: 90, data: ["via cname"] },
        ],
      }),
    ]);
    stops.push(fake.stop);
    const answer = await createResolver({ servers: [fake.server], timeoutMs: 1000 }).txt("c.example");
    expect(answer).toMatchObject({ status: "ok", ttl: 50 });
    expect(records(answer).map((r) => [r.text, r.ttl])).toEqual([["via cname", 50]]);
  });

  test("a TTL with the top bit set counts as zero (RFC 2181 section 8)", async () => {
    const fake = await scriptedServer((q) => [
      reply(q, { answers: [{ ...txt(q, ["x"]), ttl: 0x80000000 }] }),
    ]);
    stops.push(fake.stop);
    const answer = await createResolver({ servers: [fake.server], timeoutMs: 1000 }).txt("big-ttl.example");
    expect(answer).toMatchObject({ status: "ok", ttl: 0 });
  });
});

/** One query over UDP without the client, to see what the server itself sends. */
async function rawUdpQuery(
  server: HostPort,
  name: string,
  type: packet.RecordType,
): Promise<packet.DecodedPacket> {
  const socket = dgram.createSocket("udp4");
  try {
    return await new Promise((resolve, reject) => {
      socket.on("message", (msg: Buffer) => resolve(packet.decode(msg)));
      socket.on("error", reject);
      setTimeout(() => reject(new Error("no UDP answer")), 2000);
      socket.send(
        packet.encode({ type: "query", id: 1, questions: [{ name, type }] }),
        server.port,
        server.host,
      );
    });
  } finally {
    socket.close();
  }
}

type Via = "udp" | "tcp";

/**
 * A DNS server on 127.0.0.1 (UDP and TCP on one port) that sends, for each query, the messages
 * `script` returns, in order; `seen` lists the transport of each query received.
 */
async function scriptedServer(
  script: (query: packet.DecodedPacket, via: Via) => Buffer[],
): Promise<{ server: HostPort; seen: Via[]; stop: () => Promise<void> }> {
  const seen: Via[] = [];
  const sockets = await bindDnsSockets((socket) => {
    let pending = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 2 || pending.length < 2 + pending.readUInt16BE(0)) return;
      seen.push("tcp");
      const query = packet.decode(pending.subarray(2, 2 + pending.readUInt16BE(0)));
      for (const out of script(query, "tcp")) {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(out.length);
        socket.write(Buffer.concat([length, out]));
      }
    });
  });
  const { udp, port } = sockets;
  udp.on("message", (msg: Buffer, from) => {
    seen.push("udp");
    for (const out of script(packet.decode(msg), "udp")) udp.send(out, from.port, from.address);
  });
  return {
    server: { host: "127.0.0.1", port },
    seen,
    stop: () => sockets.close(),
  };
}

function reply(
  query: packet.Packet,
  options: {
    id?: number;
    rcode?: number;
    tc?: boolean;
    answers?: packet.Answer[];
    authorities?: packet.Answer[];
  },
): Buffer {
  const flags =
    packet.RECURSION_DESIRED |
    packet.RECURSION_AVAILABLE |
    (options.rcode ?? 0) |
    (options.tc ? packet.TRUNCATED_RESPONSE : 0);
  return packet.encode({
    type: "response",
    id: options.id ?? query.id ?? 0,
    flags,
    questions: query.questions ?? [],
    answers: options.answers ?? [],
    authorities: options.authorities ?? [],
  });
}

function txt(query: packet.Packet, strings: string[]): packet.TxtAnswer {
  return { type: "TXT", name: query.questions![0]!.name, ttl: 300, data: strings.map((s) => Buffer.from(s)) };
}

function soa(zone: string, ttl: number, minimum: number): packet.Answer {
  return {
    type: "SOA",
    name: zone,
    ttl,
    data: {
      mname: `ns.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum,
    },
  };
}

/** A UDP port with nothing bound to it (just released by us). */
async function closedPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
