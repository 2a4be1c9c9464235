/**
 * Memory and time that forged signatures can take from the receiver: the compiled `isched serve`
 * (defaults only) gets N concurrent POSTs with 1 MB bodies, each signed with a key nobody publishes,
 * q=http/well-known, by a domain whose `_domainkey_lookup._tcp` SRV (dnsmasq) lists 8 key servers
 * that accept connections and never answer (a black hole). Prints the server's RSS before, at its
 * peak and after, the longest time a request was held, and how many answers were 503.
 *
 *   npx bun scripts/bench/key-fetch-rss.ts [--requests 150] [--binary dist/isched]
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "150" },
    binary: { type: "string", default: join(import.meta.dir, "..", "..", "dist", "isched") },
  },
});
const requests = Number(values.requests);
const { startDnsmasq } = await import("../../test/support/dnsmasq.ts");
const { freePort } = await import("../../test/support/ports.ts");
const { rawExchange, requestBytes } = await import("../../test/support/raw-http.ts");

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
/** VmRSS of a process, in kB. */
async function rssKb(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

// The black hole: accepts, never answers, keeps every connection open.
const held = new Set<net.Socket>();
const hole = net.createServer((s) => {
  held.add(s);
  s.on("error", () => {});
});
await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
const holePort = (hole.address() as net.AddressInfo).port;

const dns = await startDnsmasq({
  zones: ["forger.test"],
  srv: Array.from({ length: 8 }, (_, i) => ({
    name: "_domainkey_lookup._tcp.forger.test",
    target: `k${i}.forger.test`,
    port: holePort,
    priority: i,
  })),
  hosts: Array.from({ length: 8 }, (_, i) => ({ name: `k${i}.forger.test`, address: "127.0.0.1" })),
});

const dir = mkdtempSync(join(tmpdir(), "isched-keyfetch-"));
const port = await freePort();
const consolePort = await freePort();
const child = Bun.spawn(
  [
    values.binary!,
    "serve",
    "--domain",
    "org.test",
    "--listen",
    `127.0.0.1:${port}`,
    "--console",
    `127.0.0.1:${consolePort}`,
    "--data",
    join(dir, "data"),
    "--dns-server",
    `${dns.server.host}:${dns.server.port}`,
    "--allow-private-peers",
    "--log-level",
    "error",
  ],
  { stdout: "ignore", stderr: "inherit" },
);
for (;;) {
  const up = await fetch(`http://127.0.0.1:${port}/.well-known/ischedule?action=capabilities`)
    .then((r) => r.ok)
    .catch(() => false);
  if (up) break;
  await Bun.sleep(100);
}
await Bun.sleep(1000);

const forger = generateDkimKey("rsa");
const body = Buffer.alloc(1_000_000, "A");
function forged(i: number): Uint8Array {
  const fields: HeaderField[] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", `flood-${i}`],
    ["Originator", "mailto:x@forger.test"],
    ["Recipient", "mailto:ann@org.test"],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
  ];
  const signature = signRequest({
    key: loadSigningKey(forger.privateKeyPem, "forger.test", `s${i}`),
    fields,
    body,
    nowMs: Date.now(),
    queryMethods: ["http/well-known"],
  });
  return requestBytes({
    path: "/.well-known/ischedule",
    fields: [["Host", "isched.org.test"], ["DKIM-Signature", signature], ...fields],
    body,
  });
}

const before = await rssKb(child.pid);
let peak = before;
const sampler = setInterval(async () => {
  peak = Math.max(peak, await rssKb(child.pid).catch(() => 0));
}, 100);
const started = performance.now();
const answers = await Promise.all(
  Array.from({ length: requests }, (_, i) =>
    rawExchange({ port, request: forged(i), timeoutMs: 120_000 }).catch((e: Error) => ({
      status: 0,
      elapsedMs: performance.now() - started,
      error: e.message,
    })),
  ),
);
const totalMs = performance.now() - started;
await Bun.sleep(1000);
clearInterval(sampler);
const after = await rssKb(child.pid);

const byStatus = new Map<number, number>();
for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
const longest = Math.max(...answers.map((a) => a.elapsedMs));
console.log(`binary ${values.binary}`);
console.log(`${requests} forged requests with 1 MB bodies, 8 black-hole key servers`);
console.log(`RSS before ${mb(before)}, peak ${mb(peak)}, 1 s after the last answer ${mb(after)}`);
console.log(`answers: ${[...byStatus].map(([s, n]) => `${n} × ${s}`).join(", ")}`);
console.log(
  `longest request ${(longest / 1000).toFixed(1)} s; all answered in ${(totalMs / 1000).toFixed(1)} s`,
);
console.log(`connections the black hole accepted: ${held.size}`);

child.kill("SIGTERM");
await child.exited;
for (const s of held) s.destroy();
hole.close();
await dns.stop();
rmSync(dir, { recursive: true, force: true });
