/**
 * "Test this domain": what isched would do before sending to a peer, run now and shown step by step
 * with each step's time: discovery (static route, SRV and TXT path), the capabilities document, and
 * the peer's DKIM keys by every retrieval method, for the selectors it was seen signing with (or one
 * the operator names). Nothing is cached: each run asks the network afresh. What it finds is kept as
 * the peer's facts (peer-facts.ts), which the peer's page shows with their age.
 */
import { dnsTxtSource } from "../dkim/dns-txt-source.ts";
import { parseKeyRecord } from "../dkim/key-record.ts";
import type { KeySource } from "../dkim/key-source.ts";
import { wellKnownSource } from "../dkim/well-known-source.ts";
import type { DnsResolver } from "../dns/client.ts";
import { peerFetch } from "../net/peer-fetch.ts";
import { createCapabilitiesCache } from "../outbound/capabilities-cache.ts";
import { createDiscovery } from "../outbound/discovery.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import { capabilitiesFact, discoveryFact, type KeyFact, type PeerFacts } from "./peer-facts.ts";

export type StepOutcome = "ok" | "warning" | "failed" | "skipped";

export interface TestStep {
  step: "discovery" | "capabilities" | "keys";
  title: string;
  outcome: StepOutcome;
  /** What was found, one fact a line. */
  lines: string[];
  ms: number;
}

export interface PeerTestOptions {
  dns: DnsResolver;
  staticRoutes: readonly PeerRoute[];
  allowPrivatePeers: boolean;
  ca?: string;
  /** Where what the test learns is kept. */
  facts?: PeerFacts;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - t0) };
}

/** Runs the steps for `domain`, calling `emit` as each one ends. */
export async function testPeer(
  domain: string,
  selectors: readonly string[],
  o: PeerTestOptions,
  emit: (step: TestStep) => void,
): Promise<TestStep[]> {
  const steps: TestStep[] = [];
  const push = (s: TestStep) => {
    steps.push(s);
    emit(s);
  };
  const discovery = createDiscovery({ resolver: o.dns, staticRoutes: o.staticRoutes });
  const found = await timed(() => discovery.discover(domain));
  const d = found.value;
  const learned = discoveryFact(d);
  if (learned) await o.facts?.record({ domain, kind: "discovery", source: "test" }, learned);
  let endpoints: string[] = [];
  if (d.kind === "found") {
    endpoints = d.targets.map((t) => t.url);
    push({
      step: "discovery",
      title:
        d.how === "static"
          ? "Static route (--peer)"
          : `SRV record ${d.targets[0]?.url.startsWith("http:") ? "_ischedule._tcp" : "_ischedules._tcp"}.${d.domain}`,
      outcome: d.warnings.length > 0 ? "warning" : "ok",
      lines: [
        ...d.targets.map((t) => `${t.url} (priority ${t.priority}, weight ${t.weight})`),
        `path ${d.path}${d.how === "srv" ? " (TXT path record, or the well-known default)" : ""}`,
        `answer holds ${d.ttlSeconds} s${d.sign ? "" : "; requests to this peer are not signed"}`,
        ...(d.legacyHttp ? [`plain HTTP allowed for this peer (--peer ${domain}=legacy-http)`] : []),
        ...d.warnings,
      ],
      ms: found.ms,
    });
  } else {
    push({
      step: "discovery",
      title: "Discovery",
      outcome: "failed",
      lines: [
        d.reason,
        d.kind === "none"
          ? "without an iSchedule server, isched sends to this domain by iMIP (when --smtp is set)"
          : "a DNS error: try again",
      ],
      ms: found.ms,
    });
  }

  if (endpoints.length === 0) {
    push({
      step: "capabilities",
      title: "Capabilities",
      outcome: "skipped",
      lines: ["no endpoint to ask"],
      ms: 0,
    });
  } else {
    const cache = createCapabilitiesCache({
      fetch: (req) => peerFetch(req, { resolver: o.dns, allowPrivate: o.allowPrivatePeers, ca: o.ca }),
    });
    // As the sender would: plain HTTP only for a peer named with --peer D=legacy-http.
    const scheme = { peer: domain, legacyHttp: d.kind === "found" && d.legacyHttp };
    const got = await timed(() => cache.get(endpoints[0]!, scheme));
    const c = got.value;
    const document = capabilitiesFact(c);
    if (document) await o.facts?.record({ domain, kind: "capabilities", source: "test" }, document);
    if (c.ok) {
      const caps = c.capabilities;
      push({
        step: "capabilities",
        title: `GET ${c.url}?action=capabilities`,
        outcome: c.warnings.length > 0 ? "warning" : "ok",
        lines: [
          `serial ${caps.serialNumber}, versions ${caps.versions.join(", ") || "(none said)"}`,
          `components: ${caps.components.map((x) => `${x.name}${x.methods.length ? ` (${x.methods.join(" ")})` : ""}`).join(", ") || "(not advertised)"}`,
          `max recipients ${caps.maxRecipients ?? "-"}, max size ${caps.maxContentLength ?? "-"} bytes, max instances ${caps.maxInstances ?? "-"}`,
          `dates ${caps.minDateTime ?? "-"} .. ${caps.maxDateTime ?? "-"}`,
          `administrator ${caps.administrator ?? "-"}`,
          ...c.warnings,
        ],
        ms: got.ms,
      });
    } else {
      push({
        step: "capabilities",
        title: `GET ${endpoints[0]}?action=capabilities`,
        outcome: "failed",
        lines: [
          c.reason,
          c.temporary ? "temporary: may work later" : "permanent: needs a change on their side",
        ],
        ms: got.ms,
      });
    }
  }

  const sources: KeySource[] = [
    dnsTxtSource(o.dns),
    wellKnownSource({ resolver: o.dns, fetch: { allowPrivate: o.allowPrivatePeers, ca: o.ca } }),
  ];
  if (selectors.length === 0) {
    push({
      step: "keys",
      title: "DKIM keys",
      outcome: "skipped",
      lines: ["no selector known: enter the s= of a signature from this peer"],
      ms: 0,
    });
  }
  for (const selector of selectors) {
    const t0 = performance.now();
    const lines: string[] = [];
    let anyFound = false;
    let anyBad = false;
    const key: KeyFact = { found: [] };
    for (const source of sources) {
      const got = await timed(() => source.fetch(domain, selector));
      const r = got.value;
      if (r.status === "found") {
        for (const rec of r.records) {
          const parsed = parseKeyRecord(rec.text);
          if (parsed.ok) {
            anyFound = true;
            key.found.push({
              method: source.method,
              where: rec.where,
              type: parsed.key.type,
              bits: parsed.key.bits,
              testing: parsed.key.flags.includes("y"),
            });
            lines.push(
              `${source.method}: ${rec.where}: ${parsed.key.type} ${parsed.key.bits} bits${parsed.key.flags.includes("y") ? " (testing)" : ""}, TTL ${r.ttlSeconds} s (${got.ms} ms)`,
            );
          } else {
            anyBad = true;
            lines.push(`${source.method}: ${rec.where}: unusable: ${parsed.message} (${got.ms} ms)`);
          }
        }
      } else if (r.status === "absent") {
        lines.push(`${source.method}: none at ${r.where} (${got.ms} ms)`);
      } else {
        anyBad = true;
        lines.push(`${source.method}: ${r.message} (${got.ms} ms)`);
      }
    }
    if (key.found.length > 0)
      await o.facts?.record({ domain, kind: "key", name: selector, source: "test" }, key);
    push({
      step: "keys",
      title: `Key for selector ${selector}`,
      outcome: anyFound ? (anyBad ? "warning" : "ok") : "failed",
      lines,
      ms: Math.round(performance.now() - t0),
    });
  }
  return steps;
}
