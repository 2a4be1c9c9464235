/**
 * What the TLS front (src/acme/tls-front.ts) costs: the same Bun.serve HTTPS handler reached directly
 * and through the front, with kept-alive connections and with a new TLS connection per request.
 * Reports requests/s, latency and the server process's CPU per request (from /proc), which is the
 * figure that matters: the load generator, not the server, limits the request rate here.
 *
 *   npx bun scripts/bench/tls-front.ts [--seconds 6] [--runs 2]
 *
 * The server process (backend and front together, as isched would run them) is pinned to CPU 0 with
 * taskset, the load generator (16 fetch loops posting 1.2 KB) to CPU 1. The first second of each run
 * is warm-up. Internal roles: --role server | load.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startTlsFront } from "../../src/acme/tls-front.ts";

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    seconds: { type: "string", default: "6" },
    runs: { type: "string", default: "2" },
    dir: { type: "string" },
    port: { type: "string" },
    mode: { type: "string" },
  },
});
const BUN = process.execPath;
const SCRIPT = new URL(import.meta.url).pathname;

if (args.role === "server") {
  const dir = args.dir!;
  const backend = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: {
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
      key: readFileSync(join(dir, "key.pem"), "utf8"),
    },
    fetch: async (request) => {
      await request.arrayBuffer();
      return new Response("ok");
    },
  });
  const front = startTlsFront({ host: "127.0.0.1", port: 0, backendPort: backend.port! });
  console.log(JSON.stringify({ direct: backend.port, front: front.port }));
} else if (args.role === "load") {
  const seconds = Number(args.seconds);
  const ca = readFileSync(join(args.dir!, "cert.pem"), "utf8");
  const latencies: number[] = [];
  let failed = 0;
  const warmEnd = performance.now() + 1000;
  const end = performance.now() + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const r = await fetch(`https://localhost:${args.port}/`, {
          method: "POST",
          body: "x".repeat(1200),
          headers: args.mode === "new" ? { Connection: "close" } : {},
          tls: { ca },
        });
        await r.text();
        if (t0 > warmEnd) latencies.push(performance.now() - t0);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, loop));
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.floor(p * (latencies.length - 1))] ?? Number.NaN;
  console.log(JSON.stringify({ requests: latencies.length, failed, p50: q(0.5), p99: q(0.99) }));
} else {
  const dir = mkdtempSync(join(tmpdir(), "isched-bench-front-"));
  const made = spawnSync(
    "openssl",
    // biome-ignore format: one option per pair
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
    { stdio: "ignore" },
  );
  if (made.status !== 0) throw new Error("openssl could not make the test certificate");
  const server = spawn("taskset", ["-c", "0", BUN, SCRIPT, "--role", "server", "--dir", dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const ports = await new Promise<{ direct: number; front: number }>((resolve) =>
    server.stdout!.once("data", (d: Buffer) => resolve(JSON.parse(d.toString()))),
  );
  const cpuTicks = (): number => {
    const fields = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime, in 1/100 s
  };
  console.log(`| path | connections | requests/s | p50 ms | p99 ms | failed | server CPU µs/request |`);
  console.log(`|---|---|---:|---:|---:|---:|---:|`);
  for (const mode of ["kept-alive", "new"]) {
    for (let run = 0; run < Number(args.runs); run++) {
      for (const [name, port] of [
        ["direct", ports.direct],
        ["front", ports.front],
      ] as const) {
        const before = cpuTicks();
        const load = spawnSync(
          "taskset",
          [
            "-c",
            "1",
            BUN,
            SCRIPT,
            "--role",
            "load",
            "--dir",
            dir,
            "--port",
            String(port),
            "--mode",
            mode,
            "--seconds",
            args.seconds!,
          ],
          { encoding: "utf8" },
        );
        const cpuUs = (cpuTicks() - before) * 10_000;
        const r = JSON.parse(load.stdout) as { requests: number; failed: number; p50: number; p99: number };
        const measured = Number(args.seconds) - 1;
        // All requests of the run (warm-up included) shared the CPU counted.
        const total = (r.requests / measured) * Number(args.seconds);
        console.log(
          `| ${name} | ${mode} | ${Math.round(r.requests / measured)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.failed} | ${(cpuUs / total).toFixed(1)} |`,
        );
      }
    }
  }
  server.kill();
  rmSync(dir, { recursive: true, force: true });
}
