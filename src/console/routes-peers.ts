/**
 * Peers: every remote domain seen (inbound senders, outbound recipients) or configured (`--trust`,
 * `--peer-key`, console policies), with its traffic and our trust policy for it, which the page can
 * change; and "test this domain", streamed as one JSON line per step (application/x-ndjson).
 */
import { t } from "elysia";
import { hostedSignerProblem, openRelayProblem, readSignerList } from "../config/rules.ts";
import type { ServeConfig } from "../config/serve-config.ts";
import { isDomainName, normalizeDomain } from "../dns/names.ts";
import { type Cidr, parseCidrList } from "../net/cidr.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import type { InboundPeerStats, OutboundPeerStats, PolicyTrust, Store } from "../store/store.ts";
import { API_HEADERS, apiError, json, optionalOrNull, RequestError, type Route, route } from "./http.ts";
import type { PeerFacts } from "./peer-facts.ts";
import { type PeerTestOptions, type TestStep, testPeer } from "./peer-test.ts";
import { describePolicy, effectivePolicy } from "./peer-trust.ts";

export interface PeerRouteOptions {
  store: Store;
  /** After a policy was set or removed. */
  onPolicyChanged?: () => Promise<void>;
  config: Pick<ServeConfig, "domains" | "trust" | "peerKeys" | "peers">;
  test: PeerTestOptions;
  /** What tests and traffic learned about each peer. */
  facts: PeerFacts;
  nowMs: () => number;
  log: { log(level: "info", message: string, fields?: Record<string, string>): void };
}

const STATS_TTL_MS = 30_000;
/** Traffic figures cover this window (the last message or delivery is shown whenever it was). */
export const STATS_WINDOW_MS = 7 * 86_400_000;

const policyBody = t.Object({
  trust: t.Union([t.Literal("dkim"), t.Literal("unsigned"), t.Literal("deny")], {
    invalid: "trust must be dkim, unsigned or deny",
  }),
  allowFrom: optionalOrNull(t.String(), "allowFrom must be a string"),
  signers: optionalOrNull(t.String(), "signers must be a string"),
  note: optionalOrNull(t.String(), "note must be a string"),
});

export function peerRoutes(o: PeerRouteOptions): Route[] {
  const hosted = new Set(o.config.domains);
  let stats: { atMs: number; inbound: InboundPeerStats[]; outbound: OutboundPeerStats[] } | undefined;
  const lastTests = new Map<string, { atMs: number; steps: TestStep[] }>();

  // Grouping the whole log is the one costly read here; the list shows it at most 30 s old.
  const currentStats = async () => {
    const now = o.nowMs();
    if (!stats || now - stats.atMs > STATS_TTL_MS)
      stats = {
        atMs: now,
        inbound: await o.store.inboundPeerStats(now - STATS_WINDOW_MS),
        outbound: (await o.store.outboundPeerStats(now - STATS_WINDOW_MS)).filter(
          (x) => !hosted.has(x.domain),
        ),
      };
    return stats;
  };

  const peerJson = async (domain: string, given?: Awaited<ReturnType<typeof currentStats>>) => {
    const s = given ?? (await currentStats());
    const eff = await effectivePolicy(o.store, o.config.trust, domain);
    const test = lastTests.get(domain);
    return {
      domain,
      policy: {
        ...describePolicy(eff.policy),
        source: eff.inheritedFrom ? `${eff.source} for ${eff.inheritedFrom}` : eff.source,
        note: eff.row?.note ?? null,
      },
      inbound: s.inbound.find((x) => x.domain === domain) ?? null,
      outbound: s.outbound.find((x) => x.domain === domain) ?? null,
      peerKeys: o.config.peerKeys
        .filter((k) => k.domain === domain)
        .map((k) => ({ selector: k.selector, where: k.where })),
      route: routeJson(o.config.peers?.find((r) => r.domain === domain)),
      lastTest: test ? { atMs: test.atMs, outcomes: test.steps.map((x) => x.outcome) } : null,
    };
  };

  const domainParam = (raw: string): string => {
    if (raw === "*") return raw;
    if (!isDomainName(raw)) throw new RequestError(400, `"${raw}" is not a domain name`);
    const domain = normalizeDomain(raw);
    if (hosted.has(domain)) throw new RequestError(400, `${domain} is one of our own domains, not a peer`);
    return domain;
  };

  /** A policy's `signers` (config.ts readSignerList), stored comma-separated; null when none. */
  const signersField = (domain: string, trust: PolicyTrust, raw: string | undefined): string | null => {
    if (!raw?.trim()) return null;
    if (trust === "deny") throw new RequestError(400, "signers: a denied domain has no signers");
    const list = readSignerList(domain, raw);
    if ("problem" in list) throw new RequestError(400, list.problem);
    const ours = hostedSignerProblem(domain, list.domains, (d) => hosted.has(d));
    if (ours) throw new RequestError(400, ours);
    return list.domains.join(",");
  };

  return [
    route({
      method: "GET",
      path: "/peers",
      access: "read",
      summary: "every remote domain seen or configured, with traffic and trust policy",
      async handle() {
        const s = await currentStats();
        const domains = new Set<string>();
        for (const x of s.inbound) domains.add(x.domain);
        for (const x of s.outbound) domains.add(x.domain);
        for (const r of o.config.trust) domains.add(r.domain);
        for (const k of o.config.peerKeys) domains.add(k.domain);
        for (const r of o.config.peers ?? []) domains.add(r.domain);
        for (const p of await o.store.peerPolicies()) domains.add(p.domain);
        for (const h of hosted) domains.delete(h);
        const peers = [...domains].sort((a, b) => (a === "*" ? -1 : b === "*" ? 1 : a.localeCompare(b)));
        return json(200, {
          statsAtMs: s.atMs,
          statsWindowDays: STATS_WINDOW_MS / 86_400_000,
          peers: await Promise.all(peers.map((d) => peerJson(d, s))),
        });
      },
    }),
    route({
      method: "GET",
      path: "/peers/:domain",
      access: "read",
      summary:
        "one peer: traffic, policy, selectors seen verifying, what tests and traffic learned (facts), the last test",
      async handle({ params }) {
        const domain = domainParam(params.domain!);
        return json(200, {
          ...(await peerJson(domain)),
          selectors: await o.store.selectorsSeen(domain),
          facts: domain === "*" ? [] : await o.facts.of(domain),
          test: lastTests.get(domain) ?? null,
        });
      },
    }),
    route({
      method: "PUT",
      path: "/peers/:domain/policy",
      access: "change",
      summary:
        "set our trust policy: {trust: dkim|unsigned|deny, allowFrom?: CIDRs, signers?: domains also accepted as d= for its users, note?}",
      body: { schema: policyBody },
      async handle({ params, body, caller }) {
        const domain = domainParam(params.domain!);
        const trust: PolicyTrust = body.trust;
        const allowFrom = body.allowFrom?.trim() || null;
        if (trust === "unsigned") {
          if (!allowFrom)
            throw new RequestError(
              400,
              "unsigned needs allowFrom: the addresses to accept unsigned requests from",
            );
          let ranges: Cidr[];
          try {
            ranges = parseCidrList(allowFrom);
          } catch (e) {
            throw new RequestError(400, `allowFrom: ${(e as Error).message}`);
          }
          const open = openRelayProblem(ranges, domain);
          if (open) throw new RequestError(400, `allowFrom: ${open}`);
        }
        const signers = signersField(domain, trust, body.signers ?? undefined);
        const note = body.note?.slice(0, 500) || null;
        await o.store.setPeerPolicy({
          domain,
          trust,
          allowFrom: trust === "unsigned" ? allowFrom : null,
          signers,
          note,
          updatedAt: o.nowMs(),
        });
        await o.onPolicyChanged?.();
        o.log.log("info", "console: peer policy set", { domain, trust, via: caller?.via ?? "" });
        return json(200, await peerJson(domain));
      },
    }),
    route({
      method: "DELETE",
      path: "/peers/:domain/policy",
      access: "change",
      summary: "remove the console's policy (back to --trust or the default)",
      async handle({ params, caller }) {
        const domain = domainParam(params.domain!);
        if (!(await o.store.removePeerPolicy(domain)))
          return apiError(404, `no console policy for ${domain}`);
        await o.onPolicyChanged?.();
        o.log.log("info", "console: peer policy removed", { domain, via: caller?.via ?? "" });
        return json(200, await peerJson(domain));
      },
    }),
    route({
      method: "POST",
      path: "/peers/:domain/test",
      access: "change",
      summary: "test this domain: discovery, capabilities, keys; one JSON line per step ({selector?})",
      body: { schema: t.Object({ selector: optionalOrNull(t.String(), "selector must be a string") }) },
      async handle({ params, body }) {
        const domain = domainParam(params.domain!);
        if (domain === "*") throw new RequestError(400, "test a domain, not *");
        const asked = body.selector?.trim();
        if (asked && !/^[A-Za-z0-9._-]{1,63}$/.test(asked))
          throw new RequestError(400, `"${asked}" is not a selector`);
        const selectors = asked
          ? [asked]
          : (await o.store.selectorsSeen(domain)).slice(0, 3).map((s) => s.selector);
        const encoder = new TextEncoder();
        const atMs = o.nowMs();
        const body$ = new ReadableStream<Uint8Array>({
          async start(controller) {
            const emit = (s: TestStep) => {
              try {
                controller.enqueue(encoder.encode(`${JSON.stringify(s)}\n`));
              } catch {
                // The page went away; the test still finishes and is kept as the last result.
              }
            };
            try {
              const steps = await testPeer(domain, selectors, o.test, emit);
              lastTests.set(domain, { atMs, steps });
              if (lastTests.size > 500) lastTests.delete(lastTests.keys().next().value!);
            } finally {
              try {
                controller.close();
              } catch {
                // Already closed.
              }
            }
          },
        });
        return new Response(body$, {
          headers: { ...API_HEADERS, "Content-Type": "application/x-ndjson; charset=utf-8" },
        });
      },
    }),
  ];
}

/** A `--peer` route as the page shows it: the fixed URL (null: DNS), plain HTTP allowed, signing. */
function routeJson(r: PeerRoute | undefined) {
  return r === undefined ? null : { url: r.url ?? null, legacyHttp: r.legacyHttp === true, sign: r.sign };
}
