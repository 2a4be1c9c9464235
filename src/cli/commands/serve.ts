/** `isched serve`: run the gateway. */

import { ConfigError, UsageError } from "../../config/errors.ts";
import { attributeToSource, type ParsedArgs } from "../../config/flags.ts";
import { configFromFlags, configurationWarnings } from "../../config/from-flags.ts";
import { describeTarget, type ServeConfig, targetFor } from "../../config/serve-config.ts";
import { serveFlags } from "../../config/serve-flags.ts";
import { formatRetrySchedule } from "../../delivery/policy.ts";
import { redactSmtpUrl } from "../../imip/index.ts";
import { endpointRecords, keyRecord } from "../../keys/dns-records.ts";
import { KEY_PROBLEM, type KeyPublicationState } from "../../keys/key-publication.ts";
import { ENDPOINT_SETTING, publicEndpointOf } from "../../keys/public-endpoint.ts";
import { createLogger, type LogLevel } from "../../log/logger.ts";
import { createNotifier } from "../../ops/sd-notify.ts";
import { type RunningServer, startServer } from "../../server/app.ts";
import {
  BENCHMARK_RETENTION_VARIABLE,
  DEFAULT_RETENTION,
  formatRetentionPeriod,
} from "../../store/retention-policy.ts";
import { redactSecrets } from "../../text/redact.ts";
import { defineCommand } from "../command.ts";
import { effectiveLines, formatEffective } from "../effective-config.ts";
import { CommandError } from "../errors.ts";
import { catchShutdownSignals, superviseServer } from "../lifecycle.ts";
import { writeServingInfo } from "../running-server.ts";
import { announceConsoleAccess, type ConsoleAccess, consoleAccessFromFlags } from "./admin.ts";

/** One line per hosted domain: can peers find the key isched signs with? */
function keyLines(c: ServeConfig, states: readonly KeyPublicationState[]): string[] {
  return states.map((k) => {
    const head = `  DKIM key      ${k.domain}: ${k.name}`;
    if (k.visible) return `${head} is in DNS`;
    if (c.signUnpublished) return `${head} is not in DNS yet; signing anyway (--sign-unpublished)`;
    return `${head} is not in DNS yet: outbound iSchedule waits until it is (isched looks every minute; --sign-unpublished signs anyway)`;
  });
}

/**
 * The configuration `serve` runs with, checked as `serve` checks it (files read, keys loaded,
 * conflicts refused): one UsageError naming the flag, or its ISCHED_* variable when it came from
 * there. `validate`, `doctor` and `discover` call this too, so they judge what serve would run.
 */
export function serveSettings(parsed: Pick<ParsedArgs<typeof serveFlags>, "flags" | "sources">): {
  config: ServeConfig;
  access: ConsoleAccess;
} {
  try {
    const config = configFromFlags(parsed.flags);
    return { config, access: consoleAccessFromFlags(parsed.flags, config) };
  } catch (e) {
    if (e instanceof ConfigError || e instanceof SyntaxError || e instanceof UsageError)
      throw new UsageError(attributeToSource(e.message, parsed));
    throw e;
  }
}

/** The flags set on the command line or in the environment (secrets redacted), and stray variables. */
export function startupConfiguration(
  parsed: Pick<ParsedArgs<typeof serveFlags>, "sources" | "strayVariables">,
): string {
  const given = effectiveLines(serveFlags, parsed, { onlyGiven: true });
  const rest = Object.keys(serveFlags).length - given.length;
  const lines = [
    given.length > 0
      ? formatEffective(given, "configuration (secrets redacted):")
      : "configuration: no flag or ISCHED_* variable given",
    `  and ${rest} flags at their defaults ('isched validate' with the same flags lists them all)`,
    ...strayWarnings(parsed),
  ];
  return lines.join("\n");
}

/** One warning per ISCHED_* variable no command knows. */
export function strayWarnings(parsed: Pick<ParsedArgs<typeof serveFlags>, "strayVariables">): string[] {
  return (parsed.strayVariables ?? []).map(
    (v) =>
      `warning: ${v.name} is set but is no flag's variable, so it is ignored${v.hint ? ` (did you mean ${v.hint}?)` : ""}`,
  );
}

/**
 * For each key made at this start, every record a peer needs: the SRV record that says where our
 * endpoint is (draft §4.2), the TXT path record when the path is not the well-known one (§4.3), and
 * the key's TXT record.
 */
async function newKeyRecords(c: ServeConfig, server: RunningServer): Promise<string> {
  const publicEndpoint = publicEndpointOf({
    stored: await server.store.getSetting(ENDPOINT_SETTING),
    domains: c.domains,
    tls: c.tls !== undefined || c.acme !== undefined,
    listenPort: Number(new URL(server.url).port),
  });
  const out: string[] = [];
  for (const k of server.keys.generated) {
    const records = [
      ...endpointRecords(k.domain, publicEndpoint.endpoint).filter((r) => !r.optional),
      keyRecord(k.domain, k.selector, k.record, "active"),
    ];
    out.push("", `New DKIM key for ${k.domain}: publish these records:`, ...records.map((r) => r.zoneLine));
  }
  if (!publicEndpoint.fromSetting)
    out.push(
      `(the SRV record names ${publicEndpoint.endpoint.host}:${publicEndpoint.endpoint.port}, a guess: set where peers reach you on the console's Keys page)`,
    );
  return `${out.join("\n")}\n`;
}

/** --retain and --retain-bodies, as the summary says them. */
function retentionLine(c: ServeConfig): string {
  const r = c.ops?.retention ?? DEFAULT_RETENTION;
  if (c.ops?.benchmarkRetention !== undefined)
    return `${c.ops.benchmarkRetention} from ${BENCHMARK_RETENTION_VARIABLE}, for benchmarks only: messages this brief lose their replay protection`;
  return `messages ${formatRetentionPeriod(r.messagesMs)}, bodies ${formatRetentionPeriod(r.bodiesMs)}, refusals ${formatRetentionPeriod(r.refusalsMs)}`;
}

/** What the operator sees at start-up: every setting that matters, defaults included. */
function summary(
  c: ServeConfig,
  server: {
    url: string;
    consoleUrl: string;
    metricsUrl?: string;
    problems: () => readonly { id: string; text: string }[];
  },
  keys: readonly KeyPublicationState[],
): string {
  const urls = server;
  const lines = [
    `isched is serving ${c.domains.join(", ")}`,
    `  endpoint      ${urls.url}/.well-known/ischedule${c.paths.length ? ` (also ${c.paths.join(", ")})` : ""}`,
    `  console/API   ${urls.consoleUrl}/api/v1 (token in ${c.apiToken ? "--api-token-file" : `${c.dataDir}/api-token`})`,
    `  data          ${c.dataDir}`,
    ...(c.database
      ? [`  database      ${redactSecrets(c.database)} (PostgreSQL; this node is ${c.nodeId})`]
      : []),
    ...c.domains.map((d) => `  deliver       ${d} -> ${describeTarget(targetFor(c.deliver, d))}`),
    `  limits        ${c.limits.maxRecipients} recipients, ${c.limits.maxContentLength} bytes, ${c.limits.minDateTime}..${c.limits.maxDateTime}, ${c.limits.maxInstances} instances`,
    `  retry         ${formatRetrySchedule(c.retryScheduleMs)}; answer 1.1 (held) after ${c.deliveryDeadlineMs} ms`,
    `  iMIP          ${c.smtpUrl ? redactSmtpUrl(c.smtpUrl) : "off (no --smtp)"}`,
    `  SMTP intake   ${c.smtpIntake ? `${c.smtpIntake.listen.host}:${c.smtpIntake.listen.port}, relay ${c.smtpIntake.relay ? redactSmtpUrl(c.smtpIntake.relay) : "none"}` : "off (no --smtp-listen)"}`,
    `  retention     ${retentionLine(c)}${c.database ? " (pruned by one node at a time)" : ""}`,
    `  metrics       ${urls.consoleUrl}/metrics${urls.metricsUrl ? `, ${urls.metricsUrl}/metrics` : ""}; health at /healthz, /readyz`,
    ...keyLines(c, keys),
  ];
  for (const w of configurationWarnings(c)) lines.push(`warning: ${w}`);
  // The DKIM key lines above already say what the key problems would.
  for (const p of server.problems()) if (!p.id.startsWith(KEY_PROBLEM)) lines.push(`warning: ${p.text}`);
  if (c.signUnpublished && keys.some((k) => !k.visible))
    lines.push(
      "warning: --sign-unpublished: a peer that verifies before the TXT record is visible refuses the request (CalendarServer keeps refusing until it restarts)",
    );
  const legacy = (c.peers ?? []).filter((p) => p.legacyHttp).map((p) => p.domain);
  if (legacy.length > 0)
    lines.splice(
      lines.findIndex((l) => l.startsWith("  SMTP intake")) + 1,
      0,
      `  legacy HTTP   ${legacy.join(", ")} (--peer D=legacy-http: plain-HTTP iSchedule allowed for these peers only)`,
    );
  return `${lines.join("\n")}\n`;
}

export const serveCommand = defineCommand({
  name: "serve",
  summary: "Run the gateway: the iSchedule endpoint, delivery workers and the admin API",
  usage:
    "serve [--domain D ...] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--data DIR] [--deliver TARGET ...] ...",
  description: [
    "Without flags it serves this host's domain on 127.0.0.1:8080 (plain HTTP), keeps messages in",
    "its own inbox (the store target), and keeps its database and keys in ./data. On first start it",
    "makes a DKIM key for each domain and prints the DNS record to publish.",
  ].join("\n"),
  flags: serveFlags,
  positionals: { min: 0, max: 0 },
  async run(parsed) {
    const f = parsed.flags;
    // Whatever isched creates (the database, its WAL, the API token) is for its own user only.
    process.umask(0o077);
    const { config, access: consoleAccess } = serveSettings(parsed);
    const log = createLogger({ level: f.logLevel as LogLevel, format: config.ops?.logFormat });
    const signals = catchShutdownSignals({ log });
    // One notifier for the whole life: READY, WATCHDOG, STOPPING, and RELOADING/READY around a SIGHUP.
    const notifier = createNotifier();
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer({ config, log, notifier });
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message);
      throw new CommandError((e as Error)?.message ?? String(e));
    }
    process.stdout.write(summary(config, server, server.keyPublication.states()));
    process.stdout.write(`${startupConfiguration(parsed)}\n`);
    if (server.keys.generated.length > 0) process.stdout.write(await newKeyRecords(config, server));
    await announceConsoleAccess(server, consoleAccess);
    // Where the other commands find this server (its ports may be ones the system chose).
    const forgetServing = writeServingInfo(config.dataDir, {
      endpoint: server.url,
      console: server.consoleUrl,
      smtp: server.smtpPort ? `${config.smtpIntake!.listen.host}:${server.smtpPort}` : undefined,
    });
    // systemctl reload: certificates, keys and secrets from their files again (src/server/reload.ts).
    process.on("SIGHUP", () => void server.reload());
    // Listening, keys loaded: READY=1 to systemd; SIGTERM or SIGINT shuts down within the bound.
    return superviseServer({
      signals,
      server,
      log,
      notifier,
      shutdownTimeoutMs: f.shutdownTimeout,
      status: `serving ${config.domains.join(", ")} at ${server.url}`,
      onStopping: forgetServing,
    });
  },
});
