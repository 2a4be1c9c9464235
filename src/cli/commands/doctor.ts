/**
 * `isched doctor [serve's flags]`: the setup as a peer will see it, one pass/warn/fail line per
 * check with the fix. It takes serve's flags (and ISCHED_* variables), so it checks the configuration
 * that runs: for each --domain the SRV and TXT records, the addresses, TLS certificate and
 * capabilities behind them, the `_domainkey_lookup` SRV record and each published DKIM key against
 * our private key (DNS, the well-known document, isched's own listener); then every local target,
 * the SMTP relays with their authentication, and the clock. The checks live in src/diagnose.
 */

import type { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { isPrivateDomainName } from "../../config/risky-settings.ts";
import { describeTarget, type ServeConfig, targetFor } from "../../config/serve-config.ts";
import { serveFlags } from "../../config/serve-flags.ts";
import { acmeCertificateCheck, acmeDirectoryCheck } from "../../diagnose/acme-check.ts";
import { finding } from "../../diagnose/check.ts";
import { clockCheck, type DateSample } from "../../diagnose/clock.ts";
import { dkimChecks, type OwnKey } from "../../diagnose/dkim.ts";
import { endpointChecks } from "../../diagnose/endpoint.ts";
import { localTargetCheck, smtpRelayCheck } from "../../diagnose/reach.ts";
import type { Capabilities } from "../../ischedule/capabilities.ts";
import { parseCapabilities } from "../../ischedule/capabilities-reader.ts";
import { ENDPOINT_SETTING, publicEndpointOf } from "../../keys/public-endpoint.ts";
import { classifyAddress } from "../../net/address-policy.ts";
import { type PeerRequest, peerFetch } from "../../net/peer-fetch.ts";
import { createDiscovery, WELL_KNOWN_PATH } from "../../outbound/discovery.ts";
import { StoreError } from "../../store/errors.ts";
import { openReadOnly } from "../../store/sqlite/backup.ts";
import { allKeys } from "../../store/sqlite/dkim-keys.ts";
import { getSetting } from "../../store/sqlite/settings.ts";
import { type Check, exitCodeOf, formatReport } from "../check-report.ts";
import { defineCommand } from "../command.ts";
import { peerAccess } from "../peer-access.ts";
import { databasePathOf, runningServer, type ServingInfo } from "../running-server.ts";
import { serveSettings } from "./serve.ts";

const doctorFlags = {
  ...serveFlags,
  json: flag.bool({ help: "print the checks as JSON" }),
  timeFrom: flag.string({
    help: "an http(s) URL whose Date header is the reference for the clock check [default: the other hosts doctor talks to]",
    placeholder: "URL",
  }),
};

/** Addresses of this host: a server there shares our clock and says nothing about it. */
function onThisHost(address: string | undefined): boolean {
  if (address === undefined) return true;
  if (classifyAddress(address.replace(/^\[|\]$/g, "")) === "loopback") return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((n) => n.address === address));
}

interface Context {
  config: ServeConfig;
  running?: ServingInfo;
  db?: Database;
  samples: DateSample[];
  nowMs: number;
}

/** Our keys as a peer should find them: the operator's --dkim-key, or the published database keys. */
function ownKeys(c: Context, domain: string): OwnKey[] {
  if (c.config.dkimKeyFile && c.config.dkimSelector) {
    const pem = readFileSync(c.config.dkimKeyFile, "utf8");
    return [{ selector: c.config.dkimSelector, state: "active", privateKeyPem: pem }];
  }
  if (!c.db) return [];
  return allKeys(c.db)
    .filter((k) => k.domain === domain && k.state !== "retired")
    .map((k) => ({
      selector: k.selector,
      state: k.state as OwnKey["state"],
      privateKeyPem: k.privateKeyPem,
      record: k.record,
    }));
}

async function ourCapabilities(running: ServingInfo | undefined): Promise<Capabilities | undefined> {
  if (!running) return undefined;
  try {
    const res = await fetch(`${running.endpoint}${WELL_KNOWN_PATH}?action=capabilities`, {
      signal: AbortSignal.timeout(5000),
      // Our own listener on loopback: its certificate names the public host.
      tls: { rejectUnauthorized: false },
    });
    return parseCapabilities(await res.text()).capabilities;
  } catch {
    return undefined;
  }
}

async function referenceClock(url: string, samples: DateSample[]): Promise<Check | undefined> {
  const sentMs = Date.now();
  try {
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
    samples.push({
      server: new URL(url).host,
      date: res.headers.get("date"),
      sentMs,
      receivedMs: Date.now(),
    });
    return undefined;
  } catch (e) {
    return finding("clock", "fail", "clock", `cannot ask ${url} for the time: ${(e as Error).message}`, {
      fix: "give --time-from a URL that answers",
    });
  }
}

async function diagnose(c: Context, timeFrom: string | undefined): Promise<Check[]> {
  const { config } = c;
  const checks: Check[] = [];
  checks.push(
    c.running
      ? finding(
          "running",
          "pass",
          "isched",
          `pid ${c.running.pid} serves ${c.running.endpoint} since ${c.running.startedAt}`,
        )
      : finding("running", "warn", "isched", `no isched runs on the data folder ${config.dataDir}`, {
          fix: "start it (isched serve with these flags): what it serves cannot be checked until then",
        }),
  );
  const dbPath = databasePathOf(config.dataDir);
  if (!c.db)
    checks.push(
      finding("database", "fail", `database ${dbPath}`, "none: isched has not made its keys yet", {
        fix: "start isched once with these flags; it makes a key per domain and prints the records",
      }),
    );

  const { dns, fetchOptions } = peerAccess(config);
  const recorded = async (req: PeerRequest) => {
    const sentMs = Date.now();
    const res = await peerFetch(req, fetchOptions);
    if (!onThisHost(res.address))
      c.samples.push({
        server: new URL(res.url).host,
        date: res.headers.get("date"),
        sentMs,
        receivedMs: Date.now(),
      });
    return res;
  };
  const listenPort = c.running ? Number(new URL(c.running.endpoint).port) : config.listen.port;
  const expected = publicEndpointOf({
    stored: c.db ? getSetting(c.db, ENDPOINT_SETTING) : undefined,
    domains: config.domains,
    tls: config.tls !== undefined || config.acme !== undefined,
    listenPort,
  });
  if (!expected.fromSetting)
    checks.push(
      finding(
        "public-endpoint",
        "warn",
        "public endpoint",
        `not set: the SRV record isched suggests names ${expected.url}, a guess`,
        {
          fix: "set where peers reach you on the console's Keys page (PUT /api/v1/keys/endpoint)",
        },
      ),
    );
  const ours = await ourCapabilities(c.running);
  // A peer knows only DNS: no static routes here.
  const discovery = createDiscovery({ resolver: dns, staticRoutes: [], walkParents: config.walkParents });
  for (const domain of config.domains) {
    if (isPrivateDomainName(domain))
      checks.push(
        finding(
          "domain",
          "fail",
          `domain ${domain}`,
          "a name no peer can look up (no --domain: this host's name has no domain)",
          {
            fix: "give --domain with your organisation's domain",
          },
        ),
      );
    checks.push(
      ...(await endpointChecks({
        domain,
        discovery,
        dns,
        fetch: recorded,
        allowPrivate: config.allowPrivatePeers,
        ca: config.ca,
        expected: { ...expected.endpoint, fromSetting: expected.fromSetting },
        ours,
        nowMs: c.nowMs,
      })),
    );
    if (c.db || config.dkimKeyFile)
      checks.push(
        ...(await dkimChecks({
          domain,
          keys: ownKeys(c, domain),
          dns,
          fetch: { allowPrivate: config.allowPrivatePeers, ca: config.ca },
          localBase: c.running?.endpoint,
          expected: { ...expected.endpoint, fromSetting: expected.fromSetting },
          nowMs: c.nowMs,
        })),
      );
  }

  const reach = { ca: config.ca, samples: [] as DateSample[] };
  const targets = new Map(
    config.domains.map((d) => [describeTarget(targetFor(config.deliver, d)), targetFor(config.deliver, d)]),
  );
  for (const spec of targets.values()) checks.push(await localTargetCheck(spec, reach));
  c.samples.push(...reach.samples.filter((s) => !/^(localhost|127\.|\[::1\])/.test(s.server)));
  if (config.smtpUrl) checks.push(await smtpRelayCheck("--smtp", config.smtpUrl, reach));
  if (config.acme)
    checks.push(
      acmeCertificateCheck({ dataDir: config.dataDir, names: config.acme.names, nowMs: Date.now() }),
      await acmeDirectoryCheck(config.acme),
    );
  if (config.smtpIntake?.relay)
    checks.push(await smtpRelayCheck("--smtp-relay", config.smtpIntake.relay, reach));

  if (timeFrom) {
    c.samples.length = 0;
    const failed = await referenceClock(timeFrom, c.samples);
    if (failed) return [...checks, failed];
  }
  checks.push(
    clockCheck(c.samples, {
      withoutSamples:
        "give --time-from URL (a server whose clock you trust), or check timedatectl: 'System clock synchronized: yes'",
    }),
  );
  return checks;
}

export const doctorCommand = defineCommand({
  name: "doctor",
  summary:
    "Check the setup as a peer sees it: DNS records, DKIM keys, TLS, capabilities, targets, relay, clock",
  usage: "doctor [--domain D ...] [serve's flags ...] [--time-from URL] [--json]",
  description: [
    "Takes the flags of 'isched serve' (and their ISCHED_* variables): give it the same ones, and it",
    "checks the setup that runs. One line per check: pass, warn or fail, what was found, and the fix.",
    "Exit status: 0 everything passes, 3 warnings only, 1 something fails.",
  ].join("\n"),
  flags: doctorFlags,
  positionals: { min: 0, max: 0 },
  async run(parsed) {
    let config: ServeConfig;
    try {
      config = serveSettings(parsed).config;
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      const checks = [
        finding("configuration", "fail", "configuration", e.message, {
          fix: "isched validate shows every setting",
        }),
      ];
      process.stdout.write(
        parsed.flags.json ? `${JSON.stringify({ checks }, null, 2)}\n` : formatReport(checks),
      );
      return 1;
    }
    const path = databasePathOf(config.dataDir);
    let db: Database | undefined;
    try {
      db = existsSync(path) ? openReadOnly(path) : undefined;
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      const checks = [finding("database", "fail", `database ${path}`, e.message)];
      process.stdout.write(
        parsed.flags.json ? `${JSON.stringify({ checks }, null, 2)}\n` : formatReport(checks),
      );
      return 1;
    }
    try {
      const context: Context = {
        config,
        running: runningServer(config.dataDir),
        db,
        samples: [],
        nowMs: Date.now(),
      };
      const checks = [
        finding("configuration", "pass", "configuration", "every flag, variable and file it names is valid"),
        ...(parsed.strayVariables ?? []).map((v) =>
          finding("environment", "warn", v.name, "set, but no flag's variable: ignored", {
            fix: v.hint ? `did you mean ${v.hint}?` : "remove it",
          }),
        ),
        ...(await diagnose(context, parsed.flags.timeFrom)),
      ];
      process.stdout.write(
        parsed.flags.json ? `${JSON.stringify({ checks }, null, 2)}\n` : formatReport(checks),
      );
      return exitCodeOf(checks);
    } finally {
      db?.close();
    }
  },
});
