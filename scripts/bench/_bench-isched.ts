/**
 * The isched that the inbound benchmarks measure: `isched serve --domain org.test --deliver store
 * --peer-key peer.test:s1=KEY` with the command line's defaults (limits, 3 s delivery deadline, retry
 * schedule, sync normal, log level info on stderr), started through startServer() like the CLI does,
 * so the benchmarks do not depend on flag parsing. `src` runs another copy of the sources (the
 * profiling scripts' instrumented one); the configuration is made with this tree's modules, as data.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ServeConfig } from "../../src/config/serve-config.ts";
import { keyRecordFromFile } from "../../src/dkim/private-exchange-source.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import type { RunningServer } from "../../src/server/app.ts";

const SRC = join(import.meta.dir, "..", "..", "src");

export async function startBenchIsched(o: {
  port: number;
  dataDir: string;
  /** The peer's public key (PEM), peer.test selector s1. */
  keyFile: string;
  src?: string;
}): Promise<RunningServer> {
  const src = o.src ?? SRC;
  const { startServer } = (await import(
    join(src, "server/app.ts")
  )) as typeof import("../../src/server/app.ts");
  const { createLogger } = (await import(
    join(src, "log/logger.ts")
  )) as typeof import("../../src/log/logger.ts");
  const config: ServeConfig = {
    domains: ["org.test"],
    listen: { host: "127.0.0.1", port: o.port },
    dataDir: o.dataDir,
    deliver: [{ target: { kind: "store" } }],
    paths: [],
    trust: [],
    limits: DEFAULT_LIMITS,
    administrator: "mailto:postmaster@org.test",
    deliveryDeadlineMs: 3000,
    retryScheduleMs: [60, 300, 900, 3600, 14_400, 43_200].map((s) => s * 1000),
    allowPrivatePeers: false,
    allowSha1: false,
    peerKeys: [
      {
        domain: "peer.test",
        selector: "s1",
        record: keyRecordFromFile(readFileSync(o.keyFile, "utf8")),
        where: o.keyFile,
      },
    ],
    console: { host: "127.0.0.1", port: 0 },
    sync: "normal",
  };
  return startServer({ log: createLogger({ level: "info" }), config });
}
