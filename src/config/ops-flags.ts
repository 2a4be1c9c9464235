/**
 * The flags of `isched serve` that shape how it is operated rather than what it does: how long it
 * keeps messages (retention), the form of its log lines, and where /metrics is served besides the
 * console. Kept together here, to be spread into serveFlags (`...opsFlags`) and checked with
 * opsSettings() in configFromFlags.
 */

import type { LogFormat } from "../log/logger.ts";
import { type HostPort, parseListenAddress } from "../net/host-port.ts";
import type { RetentionPolicy } from "../store/retention-policy.ts";
import {
  BENCHMARK_RETENTION_VARIABLE,
  DEFAULT_RETAIN_BODIES_MS,
  DEFAULT_RETAIN_MS,
  formatRetentionPeriod,
  parseBenchmarkRetention,
  parseRetain,
  parseRetainBodies,
  retentionPolicy,
} from "../store/retention-policy.ts";
import { ConfigError } from "./errors.ts";
import { flag } from "./flags.ts";

export const opsFlags = {
  retain: flag.custom<number | undefined>(parseRetain, {
    help: "delete a message with its deliveries and attempts this long after it was received (at least 7d), or forever",
    placeholder: "DURATION",
    defaultValue: DEFAULT_RETAIN_MS,
    defaultText: formatRetentionPeriod(DEFAULT_RETAIN_MS),
  }),
  retainBodies: flag.custom<number | undefined>(parseRetainBodies, {
    help: "empty a message's body this long after it was received, keeping what it was and what became of it (at least 1d, at most --retain), or forever",
    placeholder: "DURATION",
    defaultValue: DEFAULT_RETAIN_BODIES_MS,
    defaultText: formatRetentionPeriod(DEFAULT_RETAIN_BODIES_MS),
  }),
  logFormat: flag.oneOf(["text", "json"], {
    help: "log lines as text (TIME LEVEL message key=value) or as one JSON object each",
    defaultValue: "text",
  }),
  metricsListen: flag.custom<HostPort | undefined>(parseListenAddress, {
    help: "also serve /metrics here, without the API token (the console's /metrics needs it off loopback)",
    placeholder: "HOST:PORT",
    defaultValue: undefined,
  }),
};

export interface OpsSettings {
  readonly retention: RetentionPolicy;
  /** Between two pruner runs; undefined: the pruner's hour. */
  readonly pruneIntervalMs?: number;
  /** Set when BENCHMARK_RETENTION_VARIABLE replaced --retain and --retain-bodies: its value. */
  readonly benchmarkRetention?: string;
  readonly logFormat: LogFormat;
  readonly metricsListen: HostPort | undefined;
}

/** The checked settings; a ConfigError (one line naming the flags) when they conflict. */
export function opsSettings(f: {
  retain: number | undefined;
  retainBodies: number | undefined;
  logFormat: string;
  metricsListen: HostPort | undefined;
  /** The process's environment, for BENCHMARK_RETENTION_VARIABLE. */
  env?: Readonly<Record<string, string | undefined>>;
}): OpsSettings {
  let retention: RetentionPolicy;
  try {
    retention = retentionPolicy({ retainMs: f.retain, retainBodiesMs: f.retainBodies });
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const logFormat = f.logFormat === "json" ? "json" : "text";
  const bench = f.env?.[BENCHMARK_RETENTION_VARIABLE];
  if (bench === undefined || bench === "") return { retention, logFormat, metricsListen: f.metricsListen };
  try {
    const { policy, intervalMs } = parseBenchmarkRetention(bench);
    return {
      retention: policy,
      pruneIntervalMs: intervalMs,
      benchmarkRetention: bench,
      logFormat,
      metricsListen: f.metricsListen,
    };
  } catch (e) {
    throw new ConfigError(`${BENCHMARK_RETENTION_VARIABLE}: ${(e as Error).message}`);
  }
}
