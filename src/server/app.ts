/**
 * The one place that puts isched together for `isched serve`: database and queue, keys, delivery
 * targets, the dispatcher, the iSchedule endpoint and the API listener; and takes it apart again on
 * shutdown (stop accepting, let attempts finish or give their leases back, close the database).
 */
import type { Database } from "bun:sqlite";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createLiveKeys } from "../console/live-keys.ts";
import { PeerFacts } from "../console/peer-facts.ts";
import { createPeerTrust } from "../console/peer-trust.ts";
import { submissionRoute } from "../console/routes-submission.ts";
import { startConsole } from "../console/server.ts";
import { Dispatcher } from "../delivery/dispatcher.ts";
import { DEFAULT_LOOKUP_LIMITS } from "../dkim/lookup-gate.ts";
import { createNetworkKeyResolver } from "../dkim/network-key-resolver.ts";
import { DEFAULT_MAX_SIGNATURE_AGE_SECONDS, MAX_SIGNATURE_LIFETIME_SECONDS } from "../dkim/verify.ts";
import { cachingAddresses } from "../dns/address-cache.ts";
import { createResolver } from "../dns/client.ts";
import { DEFAULT_BODY_TIMEOUT_MS } from "../http/read-body.ts";
import { createSmtpSender, parseSmtpUrl, redactSmtpUrl, type SmtpSender } from "../imip/index.ts";
import {
  buildCapabilities,
  capabilitiesFingerprint,
  type PublishedCapabilities,
  publish,
} from "../inbound/capabilities.ts";
import { createEndpoint } from "../inbound/endpoint.ts";
import type { IntakeContext } from "../inbound/intake.ts";
import { startEndpointListener } from "../inbound/listener.ts";
import { RefusalLog } from "../inbound/refusal-log.ts";
import { InFlightRequests } from "../inbound/replays.ts";
import { peerFetch } from "../net/peer-fetch.ts";
import { createCanSchedule } from "../outbound/can-schedule.ts";
import { createCapabilitiesCache } from "../outbound/capabilities-cache.ts";
import { createDiscovery } from "../outbound/discovery.ts";
import { remoteIScheduleTarget } from "../outbound/remote-target.ts";
import { recordRelayed, submitMessage } from "../outbound/submit.ts";
import { DeliveryQueue } from "../queue/queue.ts";
import { startSmtpIntake } from "../smtp-intake/index.ts";
import { startCheckpointer } from "../store/checkpointer.ts";
import { openDatabase } from "../store/database.ts";
import type { DeliveryRow } from "../store/deliveries.ts";
import { allPeerPolicies } from "../store/peer-policies.ts";
import { getSetting, setSetting } from "../store/settings.ts";
import { imipTarget } from "../targets/imip-target.ts";
import { iScheduleForwardTarget } from "../targets/ischedule-forward-target.ts";
import { storeTarget } from "../targets/store-target.ts";
import type { DeliveryTarget } from "../targets/target.ts";
import { webhookTarget } from "../targets/webhook-target.ts";
import {
  ConfigError,
  DEFAULT_VERIFY_DEADLINE_MS,
  describeTarget,
  type LocalTargetSpec,
  type ServeConfig,
  targetFor,
} from "./config.ts";
import { prepareDataFolder } from "./data-folder.ts";
import { createHealth, type Health, type Problem } from "./health.ts";
import {
  createKeyPublication,
  type KeyPublication,
  keyProblems,
  WAITING_FOR_KEY,
} from "./key-publication.ts";
import type { Logger } from "./log.ts";
import { loadOwnKeys, type OwnKeys } from "./own-keys.ts";
import { checkAddressesFree, type ListenAddress, listenError } from "./ports.ts";
import { riskySettings } from "./risky-settings.ts";

export interface RunningServer {
  readonly url: string;
  readonly consoleUrl: string;
  readonly db: Database;
  readonly keys: OwnKeys;
  readonly apiToken: string;
  readonly capabilities: () => PublishedCapabilities;
  /** What the operator must know about now (failing checkpoints, risky settings): see health.ts. */
  readonly problems: () => readonly Problem[];
  /** Whether peers can find our signing keys yet. */
  readonly keyPublication: KeyPublication;
  /** The SMTP intake's port, when it runs. */
  readonly smtpPort?: number;
  stop(): Promise<void>;
}

/** How long start-up waits for the first look at DNS for our keys (the summary says "not checked" after). */
const START_CHECK_MS = 3000;

export interface StartOptions {
  config: ServeConfig;
  log: Logger;
  nowMs?: () => number;
}

export async function startServer(o: StartOptions): Promise<RunningServer> {
  const { config } = o;
  const now = o.nowMs ?? Date.now;
  // Nothing is written before every address is known to be free and the data folder to be ours.
  await checkAddressesFree([
    { flag: "--listen", ...config.listen },
    { flag: "--console", ...config.console },
    ...(config.smtpIntake ? [{ flag: "--smtp-listen", ...config.smtpIntake.listen }] : []),
  ]);
  prepareDataFolder(config.dataDir);
  const path = join(config.dataDir, "isched.db");
  const db = openDatabase(path, {
    synchronous: config.sync,
    onMigrationBackup: (backup) =>
      o.log.log("warn", "copied the database before migrating its schema", { backup }),
  });
  const health = createHealth({ log: o.log, nowMs: now });
  const checkpointer = startCheckpointer({
    db,
    path,
    onProblem: (problem) =>
      problem === undefined
        ? health.resolve("checkpoints", "WAL checkpoints complete again")
        : health.report("checkpoints", problem),
  });
  try {
    const server = await assemble(o, db, health, now);
    return {
      ...server,
      async stop() {
        await server.stop();
        await checkpointer.stop();
        db.close();
      },
    };
  } catch (e) {
    await checkpointer.stop();
    db.close();
    throw e;
  }
}

async function assemble(
  o: StartOptions,
  db: Database,
  health: Health,
  now: () => number,
): Promise<RunningServer> {
  const { config, log } = o;
  const keys = loadOwnKeys({
    db,
    domains: config.domains,
    keyFile: config.dkimKeyFile,
    selector: config.dkimSelector,
    nowMs: now(),
  });
  // The console can add, activate and retire keys while isched runs: sign and publish from the database.
  const liveKeys = createLiveKeys({ db, startup: keys, operatorKey: config.dkimKeyFile !== undefined });
  for (const k of keys.generated) {
    log.log("info", "generated a DKIM key; publish its record", {
      domain: k.domain,
      name: `${k.selector}._domainkey.${k.domain}`,
    });
  }
  const queue = new DeliveryQueue(db, { nowMs: now });
  const recovered = queue.recoverExpiredLeases({ allInFlight: true });
  if (recovered.requeued.length + recovered.broken.length > 0) {
    log.log("warn", "recovered deliveries left in flight by a previous run", {
      requeued: recovered.requeued.length,
      broken: recovered.broken.length,
    });
  }

  const dns = createResolver({ servers: config.dnsServer ? [config.dnsServer] : undefined });
  const fetchOptions = {
    resolver: cachingAddresses(dns, { nowMs: now }),
    allowPrivate: config.allowPrivatePeers,
    ca: config.ca,
  };
  for (const p of config.peers ?? []) {
    if (p.legacyHttp)
      log.log("warn", "plain-HTTP iSchedule allowed for a legacy peer", {
        domain: p.domain,
        how: p.url ?? "_ischedule._tcp and redirects to http://",
      });
  }
  // What discovery, capabilities and key lookups learn is kept for the console's peer pages.
  const peerFacts = new PeerFacts(db, now);
  const discovery = peerFacts.watchDiscovery(
    createDiscovery({ resolver: dns, staticRoutes: config.peers ?? [], walkParents: config.walkParents }),
  );
  const peerCapabilities = peerFacts.watchCapabilities(
    createCapabilitiesCache({ fetch: (req) => peerFetch(req, fetchOptions), nowMs: now }),
  );
  // A first key must not sign before peers can find it: outbound iSchedule waits until DNS shows it.
  const keyPublication = createKeyPublication({
    db,
    domains: config.domains,
    dns,
    signingKey: (domain) => liveKeys.signingKey(domain),
    record: (domain, selector) => liveKeys.record(domain, selector),
    signUnpublished: config.signUnpublished === true,
    log,
    onVisible: () => {
      queue.wakeWaiting("ischedule", WAITING_FOR_KEY);
      dispatcher.poke();
    },
    nowMs: now,
  });
  const remote = remoteIScheduleTarget({
    discovery,
    capabilities: peerCapabilities,
    fetch: (req) => peerFetch(req, fetchOptions),
    signingKey: (domain) => liveKeys.signingKey(domain),
    peerRoutes: config.peers ?? [],
    keyWait: (domain) => keyPublication.waitReason(domain),
    nowMs: now,
  });
  const smtpSender: SmtpSender | undefined = config.smtpUrl
    ? createSmtpSender({ url: parseSmtpUrl(config.smtpUrl), ca: config.ca })
    : undefined;
  const imipFrom = config.imipFrom ?? `isched@${config.domains[0]}`;
  const imip = smtpSender
    ? imipTarget({
        sender: smtpSender,
        from: imipFrom,
        relayLabel: redactSmtpUrl(config.smtpUrl!),
        nowMs: now,
      })
    : undefined;

  const localTargets = new Map<string, DeliveryTarget>();
  const buildLocal = (spec: LocalTargetSpec): DeliveryTarget => {
    const label = describeTarget(spec);
    const existing = localTargets.get(label);
    if (existing) return existing;
    let target: DeliveryTarget;
    switch (spec.kind) {
      case "store":
        target = storeTarget();
        break;
      case "ischedule":
        target = iScheduleForwardTarget({
          url: spec.url,
          username: spec.username,
          password: spec.password,
          ca: config.ca,
        });
        break;
      case "webhook":
        if (!config.webhookSecret) throw new ConfigError("--deliver webhook: needs --webhook-secret-file");
        target = webhookTarget({ url: spec.url, secret: config.webhookSecret, ca: config.ca, nowMs: now });
        break;
      case "imip":
        if (!imip) throw new ConfigError("--deliver imip needs --smtp");
        target = imip;
        break;
    }
    localTargets.set(label, target);
    return target;
  };
  const domainTargets = new Map(config.domains.map((d) => [d, buildLocal(targetFor(config.deliver, d))]));

  const capabilityInputs = {
    targets: [...new Set(domainTargets.values())].map((t) => t.handles),
    limits: config.limits,
    administrator: config.administrator,
    inlineAttachments: false,
  };
  const unnumbered = buildCapabilities(capabilityInputs, 1);
  const fingerprint = capabilitiesFingerprint(unnumbered);
  let serial = Number(getSetting(db, "capabilities.serial") ?? "0");
  if (getSetting(db, "capabilities.fingerprint") !== fingerprint || serial < 1) {
    serial += 1;
    setSetting(db, "capabilities.serial", String(serial));
    setSetting(db, "capabilities.fingerprint", fingerprint);
  }
  const published = publish({ ...unnumbered, serialNumber: serial });
  const capabilities = () => published;

  const targetFor_ = (d: DeliveryRow): DeliveryTarget | undefined => {
    if (d.route === "local") return domainTargets.get(d.domain);
    if (d.route === "imip") return imip;
    if (d.route === "ischedule") return remote;
    return undefined;
  };
  const dispatcher = new Dispatcher({
    db,
    queue,
    targetFor: targetFor_,
    scheduleMs: config.retryScheduleMs,
    imipAvailable: imip !== undefined,
    owner: `${hostname()}:${process.pid}`,
    maxConcurrent: config.maxDeliveries,
    maxPerTarget: config.maxPerTarget,
    nowMs: now,
    onError: (what, e) =>
      log.log("error", `delivery queue: ${what}; trying again every second`, {
        error: (e as Error)?.message ?? String(e),
      }),
  });

  const startedMs = now();
  // Failing checkpoints and the like, then risky settings (console policies may change those).
  const problems = (): Problem[] => [
    ...health.problems(),
    ...keyProblems(keyPublication, startedMs),
    ...riskySettings({
      trust: config.trust,
      consolePolicies: allPeerPolicies(db),
      tls: config.tls !== undefined,
      trustedProxies: config.trustedProxies ?? [],
      domains: config.domains,
    }).map((r) => ({ ...r, sinceMs: startedMs })),
  ];

  const hosted = new Set(config.domains);
  const intake: IntakeContext = {
    db,
    queue,
    dispatcher,
    keys: peerFacts.watchKeys(
      createNetworkKeyResolver({
        peerKeys: config.peerKeys,
        dns,
        allowPrivatePeers: config.allowPrivatePeers,
        ca: config.ca,
        nowMs: now,
        limits: {
          maxWaiting: config.maxKeyFetches ?? DEFAULT_LOOKUP_LIMITS.maxWaiting,
          maxWaitingPerDomain: config.maxKeyFetchesPerDomain ?? DEFAULT_LOOKUP_LIMITS.maxWaitingPerDomain,
        },
      }),
    ),
    capabilities,
    hosted: (domain) => hosted.has(domain),
    // Console policies first, then --trust (src/console/peer-trust.ts).
    trust: createPeerTrust(db, config.trust),
    alignment: config.alignment,
    localTargetLabel: (domain) => domainTargets.get(domain)?.label ?? "store",
    remoteRoute: () => "ischedule",
    deadlineMs: config.deliveryDeadlineMs,
    allowSha1: config.allowSha1,
    verifyDeadlineMs: config.verifyDeadlineMs ?? DEFAULT_VERIFY_DEADLINE_MS,
    signatureLifetime: {
      maxAgeSeconds: (config.maxSignatureAgeMs ?? DEFAULT_MAX_SIGNATURE_AGE_SECONDS * 1000) / 1000,
      maxLifetimeSeconds: MAX_SIGNATURE_LIFETIME_SECONDS,
    },
    inFlight: new InFlightRequests(),
    refusals: new RefusalLog(db, {
      nowMs: now,
      onWriteError: (error, waiting) =>
        log.log("error", "the refusal log cannot be written; its rows wait", { error, waiting }),
    }),
    nowMs: now,
    fallbackAfterMs: config.fallbackAfterMs,
    outboundComponents: remote.handles,
    localTarget: (domain) => domainTargets.get(domain),
  };
  const endpoint = createEndpoint({
    intake,
    capabilities,
    keyRecord: liveKeys.record,
    log: o.log,
    bodyTimeoutMs: config.bodyTimeoutMs,
  });

  const listener = listening({ flag: "--listen", ...config.listen }, () =>
    startEndpointListener({
      ...config.listen,
      tls: config.tls,
      paths: config.paths,
      trustedProxies: config.trustedProxies ?? [],
      bodyTimeoutMs: config.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
      endpoint,
    }),
  );

  const apiToken = config.apiToken ?? ensureApiToken(join(config.dataDir, "api-token"));
  const api = listening({ flag: "--console", ...config.console }, () =>
    startConsole({
      db,
      queue,
      token: apiToken,
      log: o.log,
      config,
      dns,
      ownKeys: keys,
      endpointPort: listener.port,
      localTargets: config.domains.map((d) => [d, domainTargets.get(d)!.label] as const),
      imipLabel: imip?.label,
      activeAttempts: () => dispatcher.activeAttempts,
      poke: () => dispatcher.poke(),
      listeners: () => [
        { name: "iSchedule endpoint", url: `${url}/.well-known/ischedule` },
        ...(smtpIntake
          ? [
              {
                name: "SMTP intake",
                url: `smtp://${hostForUrl(config.smtpIntake!.listen.host)}:${smtpIntake.port}`,
              },
            ]
          : []),
      ],
      staticRoutes: config.peers ?? [],
      peerFacts,
      problems,
      keyPublication,
      extraRoutes: [
        submissionRoute({
          queue,
          dispatcher,
          hosted: (domain) => hosted.has(domain),
          localTargetLabel: (domain) => domainTargets.get(domain)?.label ?? "store",
          fallbackAfterMs: config.fallbackAfterMs,
          nowMs: now,
          deadlineMs: config.deliveryDeadlineMs,
          maxBytes: config.limits.maxContentLength,
        }),
      ],
      nowMs: now,
    }),
  );

  const submitContext = {
    queue,
    hosted: (domain: string) => hosted.has(domain),
    localTargetLabel: (domain: string) => domainTargets.get(domain)?.label ?? "store",
    fallbackAfterMs: config.fallbackAfterMs,
    nowMs: now,
  };
  const smtpIntake = config.smtpIntake
    ? await startSmtpIntake({
        listen: config.smtpIntake.listen,
        allow: config.smtpIntake.allow,
        authFile: config.smtpIntake.authFile,
        tls: config.tls ? { cert: config.tls.cert, key: config.tls.key } : undefined,
        maxSizeBytes: config.smtpIntake.maxSizeBytes,
        hosted: (domain) => hosted.has(domain),
        canSchedule: createCanSchedule({ discovery, capabilities: peerCapabilities }),
        submit: (s) => {
          const result = submitMessage(s, submitContext);
          dispatcher.poke();
          return result;
        },
        recordRelayed: (r) => recordRelayed(r, submitContext),
        relay: config.smtpIntake.relay ? { url: config.smtpIntake.relay, ca: config.ca } : undefined,
        log: o.log,
      }).catch((e: Error) => {
        throw new ConfigError(e.message);
      })
    : undefined;

  // The start-up summary says whether the keys are published: look once now, briefly.
  await Promise.race([keyPublication.check(), Bun.sleep(START_CHECK_MS)]);
  keyPublication.start();
  dispatcher.start();
  const scheme = config.tls ? "https" : "http";
  const url = `${scheme}://${hostForUrl(config.listen.host)}:${listener.port}`;
  const consoleUrl = api.url;
  return {
    url,
    consoleUrl,
    db,
    keys,
    apiToken,
    capabilities,
    problems,
    keyPublication,
    smtpPort: smtpIntake?.port,
    async stop() {
      keyPublication.stop();
      await smtpIntake?.stop();
      await listener.stop();
      intake.refusals.close();
      await api.stop();
      await dispatcher.stop();
      smtpSender?.close();
    },
  };
}

/** Runs `start` (which binds `address`), turning a failure to bind into a one-line ListenError. */
function listening<T>(address: ListenAddress, start: () => T): T {
  try {
    return start();
  } catch (e) {
    if (typeof (e as NodeJS.ErrnoException)?.code === "string") throw listenError(address, e);
    throw e;
  }
}

function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * The API token when --api-token-file is not given: made on first start and kept in DATA/api-token
 * (mode 0600), where `isched send` and `isched queue` find it.
 */
function ensureApiToken(path: string): string {
  if (existsSync(path)) {
    const token = readFileSync(path, "utf8").trim();
    if (token) return token;
  }
  const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}
