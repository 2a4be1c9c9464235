/**
 * `isched discover DOMAIN|ADDRESS [serve's flags]`: what sending there would do, step by step with
 * timings, through the code the sender runs: the route for a hosted domain, else discovery (a static
 * --peer route, or SRV `_ischedules._tcp` with RFC 2782 order and TXT `path=`), the capabilities of
 * the chosen target (and the next ones when it fails, as the sender does), the peer's key for a
 * selector from each retrieval method, and the route a message would take: iSchedule, or iMIP.
 */

import { UsageError } from "../../config/errors.ts";
import { flag } from "../../config/flags.ts";
import { describeTarget, type ServeConfig, targetFor } from "../../config/serve-config.ts";
import { serveFlags } from "../../config/serve-flags.ts";
import { selectorFlag } from "../../config/shared-flags.ts";
import { timed } from "../../diagnose/check.ts";
import { createNetworkKeyResolver } from "../../dkim/network-key-resolver.ts";
import { isDomainName, normalizeDomain } from "../../dns/names.ts";
import { redactSmtpUrl } from "../../imip/index.ts";
import { type Capabilities, supportsVersion } from "../../ischedule/capabilities.ts";
import { peerFetch } from "../../net/peer-fetch.ts";
import { createCapabilitiesCache } from "../../outbound/capabilities-cache.ts";
import { createDiscovery, type Discovery } from "../../outbound/discovery.ts";
import { defineCommand } from "../command.ts";
import { peerAccess } from "../peer-access.ts";
import { serveSettings } from "./serve.ts";

export interface Step {
  /** `route`, `srv`, `path`, `capabilities`, `key`, ... */
  readonly step: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly ms?: number;
}

export interface Verdict {
  readonly route: "local" | "ischedule" | "imip" | "none";
  readonly detail: string;
}

/** `mailto:bob@example.org`, `bob@example.org` or `example.org`: the domain. */
function domainOf(raw: string): string {
  const text = raw.trim().replace(/^mailto:/i, "");
  const at = text.lastIndexOf("@");
  const domain = normalizeDomain(at === -1 ? text : text.slice(at + 1));
  if (!isDomainName(domain)) throw new UsageError(`"${raw}" is not a domain name or an e-mail address`);
  return domain;
}

function describeCapabilities(c: Capabilities): string {
  const components = c.components.map((x) => `${x.name}(${x.methods.join(",") || "any"})`).join(" ");
  const limits = [
    c.maxRecipients !== undefined ? `${c.maxRecipients} recipients` : "",
    c.maxContentLength !== undefined ? `${c.maxContentLength} bytes` : "",
  ].filter((x) => x !== "");
  return `serial ${c.serialNumber}, versions ${c.versions.join(",")}, ${components || "any component"}${limits.length ? `, at most ${limits.join(", ")}` : ""}`;
}

function discoverySteps(d: Discovery, ms: number): Step[] {
  if (d.kind === "error") return [{ step: "srv", ok: false, detail: d.reason, ms }];
  if (d.kind === "none") return [{ step: "srv", ok: false, detail: d.reason, ms }];
  const how = d.how === "static" ? "static route (--peer)" : `SRV _ischedules._tcp.${d.domain}`;
  const targets = d.targets
    .map((t, i) => `${i + 1}. ${t.host}:${t.port} (priority ${t.priority}, weight ${t.weight})`)
    .join("; ");
  return [
    {
      step: "srv",
      ok: true,
      detail: `${how}: ${targets}${d.how === "srv" ? `; TTL ${d.ttlSeconds} s` : ""}`,
      ms,
    },
    {
      step: "path",
      ok: true,
      detail: `${d.path}${d.warnings.length > 0 ? ` (${d.warnings.join("; ")})` : ""}${d.sign ? "" : "; requests are not signed (sign=no)"}`,
    },
  ];
}

async function explore(config: ServeConfig, domain: string, selector: string | undefined) {
  const steps: Step[] = [];
  if (config.domains.includes(domain)) {
    const target = describeTarget(targetFor(config.deliver, domain));
    return {
      steps: [{ step: "route", ok: true, detail: `${domain} is hosted here: delivered to ${target}` }],
      verdict: { route: "local", detail: `local delivery to ${target}` } satisfies Verdict,
    };
  }
  const { dns, fetchOptions } = peerAccess(config);
  const discovery = createDiscovery({
    resolver: dns,
    staticRoutes: config.peers ?? [],
    walkParents: config.walkParents,
  });
  const found = await timed(() => discovery.discover(domain));
  steps.push(...discoverySteps(found.value, found.ms));

  let reachable: { url: string; capabilities: Capabilities } | undefined;
  let why = found.value.kind === "found" ? "" : found.value.reason;
  if (found.value.kind === "found") {
    const cache = createCapabilitiesCache({ fetch: (req) => peerFetch(req, fetchOptions) });
    // As the sender: the targets in order until one answers.
    for (const target of found.value.targets) {
      const scheme = { peer: domain, legacyHttp: found.value.legacyHttp };
      const got = await timed(() => cache.get(target.url, scheme));
      const r = got.value;
      if (r.ok) {
        const moved = r.url !== target.url ? ` (moved to ${r.url})` : "";
        steps.push({
          step: "capabilities",
          ok: true,
          detail: `${target.url}${moved}: ${describeCapabilities(r.capabilities)}`,
          ms: got.ms,
        });
        reachable = { url: r.url, capabilities: r.capabilities };
        break;
      }
      why = `${target.url}: ${r.reason}`;
      steps.push({ step: "capabilities", ok: false, detail: why, ms: got.ms });
    }
  }

  if (selector !== undefined) steps.push(await keyStep(config, domain, selector));

  const imip = config.smtpUrl ? `iMIP through ${redactSmtpUrl(config.smtpUrl)}` : undefined;
  let verdict: Verdict;
  if (reachable && supportsVersion(reachable.capabilities, "1.0"))
    verdict = { route: "ischedule", detail: `iSchedule to ${reachable.url}` };
  else if (found.value.kind === "none")
    verdict = imip
      ? { route: "imip", detail: `${imip} (${found.value.reason})` }
      : { route: "none", detail: `none: ${found.value.reason}, and no --smtp for iMIP` };
  else {
    const reason = reachable ? "the receiver does not speak iSchedule 1.0" : why;
    const after =
      config.fallbackAfterMs !== undefined
        ? `after ${Math.round(config.fallbackAfterMs / 60_000)} min`
        : "when the retries run out";
    verdict = imip
      ? { route: "imip", detail: `iSchedule is retried (${reason}); ${imip} ${after}` }
      : {
          route: "none",
          detail: `iSchedule is retried (${reason}), then the delivery fails: no --smtp for iMIP`,
        };
  }
  steps.push({ step: "route", ok: verdict.route !== "none", detail: verdict.detail });
  return { steps, verdict };
}

/** The peer's key for a selector, from the retrieval methods a verifier uses (draft §7.3). */
async function keyStep(config: ServeConfig, domain: string, selector: string): Promise<Step> {
  const resolver = createNetworkKeyResolver({
    peerKeys: config.peerKeys,
    dnsServer: config.dnsServer,
    allowPrivatePeers: config.allowPrivatePeers,
    ca: config.ca,
  });
  const got = await timed(() =>
    resolver.lookup({ domain, selector, methods: ["private-exchange", "dns/txt", "http/well-known"] }),
  );
  const r = got.value;
  if (!r.ok) return { step: "key", ok: false, detail: `${selector}: ${r.message}`, ms: got.ms };
  const found = r.candidates.map((c) =>
    c.parsed.ok
      ? `${c.source} at ${c.where}: ${c.parsed.key.type} ${c.parsed.key.bits} bits${c.parsed.key.flags.includes("y") ? " (testing)" : ""}`
      : `${c.source} at ${c.where}: unusable (${c.parsed.message})`,
  );
  return {
    step: "key",
    ok: r.candidates.some((c) => c.parsed.ok),
    detail: `${selector}: ${found.join("; ")}`,
    ms: got.ms,
  };
}

export const discoverCommand = defineCommand({
  name: "discover",
  summary: "Show what sending to a domain or address would do: SRV, target, path, capabilities, key, route",
  usage: "discover DOMAIN|ADDRESS [--selector S] [serve's flags ...] [--json]",
  description: [
    "Takes the flags of 'isched serve' (and their ISCHED_* variables), so it follows the static routes,",
    "DNS server, CAs and relay that serve uses. Each step shows what was found and how long it took.",
    "With --selector it also fetches the domain's DKIM key for that selector (the s= of its",
    "signatures) from each retrieval method. Exits 0 when a message would have a route, 1 when not.",
  ].join("\n"),
  flags: {
    ...serveFlags,
    selector: selectorFlag("also fetch the domain's DKIM key for this selector"),
    json: flag.bool({ help: "print the steps as JSON" }),
  },
  positionals: { min: 1, max: 1 },
  async run(parsed) {
    const domain = domainOf(parsed.positionals[0]!);
    const { config } = serveSettings(parsed);
    const { steps, verdict } = await explore(config, domain, parsed.flags.selector);
    if (parsed.flags.json)
      process.stdout.write(`${JSON.stringify({ domain, steps, route: verdict }, null, 2)}\n`);
    else {
      const width = Math.max(...steps.map((s) => s.step.length)) + 2;
      for (const s of steps)
        process.stdout.write(
          `${s.step.padEnd(width)}${s.ok ? "" : "(failed) "}${s.detail}${s.ms === undefined ? "" : ` (${s.ms} ms)`}\n`,
        );
    }
    return verdict.route === "none" ? 1 : 0;
  },
});
