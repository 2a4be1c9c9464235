/**
 * What the HTTP stack costs the endpoint, between two source trees (a change to the listeners
 * against the code before it): each tree's isched, started as scripts/bench/inbound.ts starts it,
 * answers OPTIONS /.well-known/ischedule, which the endpoint answers at once, so the CPU a request
 * costs is routing, Elysia's context and Bun's HTTP. The figure is the server's CPU per request
 * (from /proc), which other work on a shared machine does not inflate as much as it does the rate;
 * the two trees alternate, medians of the rounds.
 *
 *   npx bun scripts/bench/http-overhead.ts --a BEFORE_TREE --b AFTER_TREE [--rounds 6] [--seconds 5]
 *
 * Each tree needs node_modules (a symlink to this one's will do). As in inbound.ts, the server is
 * pinned to CPU 0 and the load generator (inbound.ts --role load, 16 keep-alive connections) to CPU 1.
 */
import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "5" },
  },
});
if (!args.a || !args.b) {
  console.error("usage: bun scripts/bench/http-overhead.ts --a BEFORE_TREE --b AFTER_TREE [--rounds N]");
  process.exit(2);
}

const BUN = process.execPath;
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU time (ms) a process has used so far. */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

interface Round {
  rps: number;
  cpuUsPerRequest: number;
}

async function round(tree: string, dir: string, run: number): Promise<Round> {
  const script = join(tree, "scripts", "bench", "inbound.ts");
  const port = await freePort();
  const isched = spawn(
    "taskset",
    [
      ...["-c", "0", BUN, script, "--role", "isched", "--port", String(port)],
      ...["--key", join(dir, "peer.pub"), "--data", join(dir, `data-${run}`)],
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  await new Promise<void>((resolve) => isched.stdout!.once("data", () => resolve()));
  try {
    const before = cpuMsOf(isched.pid!);
    const started = performance.now();
    const load = spawnSync(
      "taskset",
      [
        ...["-c", "1", BUN, script, "--role", "load", "--port", String(port)],
        ...["--requests", join(dir, "options.bin"), "--cycle", "--expect", ""],
        ...["--seconds", args.seconds!, "--warmup", "1", "--concurrency", "16"],
      ],
      { encoding: "utf8" },
    );
    const wallMs = performance.now() - started;
    const usedMs = cpuMsOf(isched.pid!) - before;
    const result = JSON.parse(load.stdout.trim().split("\n").at(-1)!) as { rps: number };
    // The requests of the whole load run (warm-up included), at the rate measured.
    return { rps: result.rps, cpuUsPerRequest: (usedMs * 1000) / (result.rps * (wallMs / 1000)) };
  } finally {
    isched.kill("SIGTERM");
    await new Promise((resolve) => isched.once("exit", resolve));
    rmSync(join(dir, `data-${run}`), { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const dir = mkdtempSync(join(tmpdir(), "isched-http-overhead-"));
try {
  // The isched role needs a peer key; no request here is signed.
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(dir, "peer.pub"), publicKey.export({ type: "spki", format: "pem" }));
  const request = Buffer.from("OPTIONS /.well-known/ischedule HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(request.length);
  writeFileSync(join(dir, "options.bin"), Buffer.concat([length, request]));
  const rounds: Record<"a" | "b", Round[]> = { a: [], b: [] };
  let run = 0;
  for (let i = 0; i < Number(args.rounds); i++) {
    for (const side of ["a", "b"] as const) {
      const r = await round(args[side]!, dir, run++);
      rounds[side].push(r);
      console.log(
        `${side} round ${i + 1}: ${r.rps.toFixed(0)} requests/s, ${r.cpuUsPerRequest.toFixed(1)} µs CPU/request`,
      );
    }
  }
  for (const side of ["a", "b"] as const) {
    const cpu = rounds[side].map((r) => r.cpuUsPerRequest);
    const rps = rounds[side].map((r) => r.rps);
    console.log(
      `${side} (${args[side]}): ${median(cpu).toFixed(1)} µs CPU/request (${Math.min(...cpu).toFixed(1)}-${Math.max(...cpu).toFixed(1)}), ${median(rps).toFixed(0)} requests/s (${Math.min(...rps).toFixed(0)}-${Math.max(...rps).toFixed(0)})`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
