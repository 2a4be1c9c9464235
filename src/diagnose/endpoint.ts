/**
 * Can a peer find and reach our iSchedule endpoint for a domain? Done as a peer does it, with the
 * code isched itself uses as a sender: discovery (SRV `_ischedules._tcp` and TXT `path=`, draft
 * §4.2-§4.4), then for each SRV target its addresses (a peer refuses private ones), the TLS
 * certificate (trusted chain, names the target, not expiring), and the capabilities document
 * (draft §5) fetched through peerFetch; compared with what this isched publishes.
 */
import type { PublicEndpoint } from "../console/dns-records.ts";
import { endpointRecords } from "../console/dns-records.ts";
import type { DnsResolver } from "../dns/client.ts";
import type { Capabilities } from "../ischedule/capabilities.ts";
import {
  classifyAddress,
  describeAddressClass,
  isAllowedPeerAddress,
  isPublicAddress,
} from "../net/address-policy.ts";
import type { PeerRequest, PeerResponse } from "../net/peer-fetch.ts";
import { createCapabilitiesCache } from "../outbound/capabilities-cache.ts";
import type { DiscoveryService, DiscoveryTarget } from "../outbound/discovery.ts";
import { WELL_KNOWN_PATH } from "../outbound/discovery.ts";
import { type Check, finding, timed } from "./check.ts";
import { probeTls } from "./tls-probe.ts";

export interface EndpointCheckInput {
  domain: string;
  /** Discovery without our own static routes: a peer knows only DNS. */
  discovery: DiscoveryService;
  dns: Pick<DnsResolver, "addresses">;
  /** peerFetch with the operator's options. */
  fetch: (req: PeerRequest) => Promise<PeerResponse>;
  allowPrivate: boolean;
  ca?: string;
  /** The paths isched serves the endpoint at (the well-known one and --path). */
  servedPaths: readonly string[];
  /** Where the SRV record should point (the console's public endpoint, or the guess). */
  expected: PublicEndpoint & { fromSetting: boolean };
  /** What this isched publishes, to recognise it behind the SRV record. */
  ours?: Capabilities;
  nowMs: number;
  /** A certificate expiring sooner is a warning; default 21 days. */
  renewBeforeDays?: number;
  /** Targets checked at most; default 3. */
  maxTargets?: number;
}

const DAY_MS = 86_400_000;

export async function endpointChecks(i: EndpointCheckInput): Promise<Check[]> {
  const owner = `_ischedules._tcp.${i.domain}`;
  const found = await timed(() => i.discovery.discover(i.domain));
  const d = found.value;
  const publish = endpointRecords(i.domain, i.expected)[0]!.zoneLine;
  if (d.kind === "error")
    return [
      finding("srv", "fail", `SRV ${owner}`, d.reason, {
        fix: "check the DNS server (/etc/resolv.conf or --dns-server) and the zone",
        ms: found.ms,
      }),
    ];
  if (d.kind === "none")
    return [
      finding("srv", "fail", `SRV ${owner}`, `${d.reason}: peers cannot find your endpoint`, {
        fix: `publish ${publish}`,
        ms: found.ms,
      }),
    ];
  const checks: Check[] = [];
  const list = d.targets
    .map((t) => `${t.host}:${t.port} (priority ${t.priority}, weight ${t.weight})`)
    .join(", ");
  const named = d.targets.some((t) => t.host === i.expected.host && t.port === i.expected.port);
  checks.push(
    named || !i.expected.fromSetting
      ? finding("srv", "pass", `SRV ${owner}`, `${list}; TTL ${d.ttlSeconds} s`, { ms: found.ms })
      : finding(
          "srv",
          "warn",
          `SRV ${owner}`,
          `${list}, not ${i.expected.host}:${i.expected.port} (the public endpoint set on the console)`,
          {
            fix: `publish ${publish}, or correct the public endpoint on the console's Keys page`,
            ms: found.ms,
          },
        ),
  );
  checks.push(pathCheck(i, owner, d.path, d.warnings));
  for (const target of d.targets.slice(0, i.maxTargets ?? 3)) checks.push(...(await targetChecks(i, target)));
  return checks;
}

function pathCheck(i: EndpointCheckInput, owner: string, path: string, warnings: readonly string[]): Check {
  const subject = `TXT ${owner} path=`;
  if (warnings.length > 0)
    return finding("txt-path", "warn", subject, warnings.join("; "), {
      fix: `publish one TXT record "path=${i.servedPaths.find((p) => p !== WELL_KNOWN_PATH) ?? WELL_KNOWN_PATH}" or none`,
    });
  if (path === WELL_KNOWN_PATH)
    return finding("txt-path", "pass", subject, `none: peers use ${WELL_KNOWN_PATH} (draft §4.4)`);
  if (i.servedPaths.includes(path))
    return finding("txt-path", "pass", subject, `${path}, which isched serves (--path ${path})`);
  return finding(
    "txt-path",
    "warn",
    subject,
    `${path}, which isched does not serve (it serves ${i.servedPaths.join(", ")})`,
    {
      fix: `start isched with --path ${path}, or remove the TXT record, unless a proxy in front maps ${path}`,
    },
  );
}

async function targetChecks(i: EndpointCheckInput, target: DiscoveryTarget): Promise<Check[]> {
  const where = `${target.host}:${target.port}`;
  const resolved = await timed(() => i.dns.addresses(target.host));
  const a = resolved.value;
  if (a.status !== "ok")
    return [
      finding(
        "address",
        "fail",
        `addresses of ${target.host}`,
        a.status === "error" ? a.message : `no A or AAAA record (${a.status})`,
        { fix: `publish an A or AAAA record for ${target.host}`, ms: resolved.ms },
      ),
    ];
  const addresses = a.records.map((r) => r.address);
  const usable = addresses.filter((x) => isAllowedPeerAddress(x, i.allowPrivate));
  const publicOnes = addresses.filter(isPublicAddress);
  const classes = [...new Set(addresses.map((x) => describeAddressClass(classifyAddress(x))))].join(", ");
  const checks: Check[] = [];
  if (publicOnes.length === 0) {
    const text = `${addresses.join(", ")}: ${classes}, which peers on the Internet cannot reach`;
    checks.push(
      i.allowPrivate
        ? finding(
            "address",
            "warn",
            `addresses of ${target.host}`,
            `${text} (allowed here: --allow-private-peers)`,
            {
              fix: "fine for a lab or a private federation; publish a public address for the Internet",
              ms: resolved.ms,
            },
          )
        : finding("address", "fail", `addresses of ${target.host}`, text, {
            fix: `publish ${target.host}'s public address`,
            ms: resolved.ms,
          }),
    );
    if (usable.length === 0) return checks;
  } else {
    checks.push(
      finding("address", "pass", `addresses of ${target.host}`, addresses.join(", "), { ms: resolved.ms }),
    );
  }
  checks.push(await tlsCheck(i, target, usable[0]!));
  checks.push(await capabilitiesCheck(i, target, where));
  return checks;
}

async function tlsCheck(i: EndpointCheckInput, target: DiscoveryTarget, address: string): Promise<Check> {
  const subject = `TLS ${target.host}:${target.port}`;
  let facts: Awaited<ReturnType<typeof probeTls>>;
  const t0 = performance.now();
  try {
    facts = await probeTls({ host: target.host, port: target.port, address, ca: i.ca });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return finding("tls", "fail", subject, `cannot connect to ${address}: ${code ?? (e as Error).message}`, {
      fix: "is isched (or the TLS proxy in front of it) listening there, and the firewall open?",
      ms: Math.round(performance.now() - t0),
    });
  }
  const ms = Math.round(performance.now() - t0);
  const until = new Date(facts.validToMs).toISOString().slice(0, 10);
  const daysLeft = Math.floor((facts.validToMs - i.nowMs) / DAY_MS);
  const about = `${facts.subject}, issued by ${facts.issuer}, names ${facts.names.join(" ") || "nothing"}, valid until ${until}`;
  // Some TLS stacks count a wrong name as untrusted too: say the name first, then any other reason.
  const otherTrustError =
    facts.trusted || facts.trustError === "ERR_TLS_CERT_ALTNAME_INVALID" ? undefined : facts.trustError;
  if (facts.nameError)
    return finding(
      "tls",
      "fail",
      subject,
      `${about}: ${facts.nameError}${otherTrustError ? `; not trusted either (${otherTrustError})` : ""}`,
      { fix: `use a certificate that names ${target.host}`, ms },
    );
  if (otherTrustError)
    return finding("tls", "fail", subject, `${about}: not trusted (${otherTrustError})`, {
      fix: "serve the whole chain (leaf and intermediates) from a CA peers trust",
      ms,
    });
  if (facts.validToMs <= i.nowMs)
    return finding("tls", "fail", subject, `${about}: expired`, { fix: "renew the certificate", ms });
  if (daysLeft < (i.renewBeforeDays ?? 21))
    return finding("tls", "warn", subject, `${about}: expires in ${daysLeft} days`, {
      fix: "renew the certificate",
      ms,
    });
  return finding("tls", "pass", subject, `${about} (${daysLeft} days), ${facts.protocol}`, { ms });
}

async function capabilitiesCheck(
  i: EndpointCheckInput,
  target: DiscoveryTarget,
  where: string,
): Promise<Check> {
  const subject = `capabilities at ${target.url}`;
  const cache = createCapabilitiesCache({ fetch: i.fetch, nowMs: () => i.nowMs });
  const got = await timed(() => cache.get(target.url));
  const r = got.value;
  if (!r.ok)
    return finding("capabilities", "fail", subject, r.reason, {
      fix: `is isched serving ${where}${new URL(target.url).pathname}? (--listen, --path, the proxy)`,
      ms: got.ms,
    });
  const c = r.capabilities;
  const components = c.components.map((x) => `${x.name}(${x.methods.join(",") || "any"})`).join(" ");
  const summary = `serial ${c.serialNumber}, versions ${c.versions.join(",")}, ${components || "any component"}`;
  if (i.ours && i.ours.serialNumber !== c.serialNumber)
    return finding(
      "capabilities",
      "warn",
      subject,
      `${summary}; this isched publishes serial ${i.ours.serialNumber}: the SRV record leads to another server`,
      { fix: "point the SRV record (or the proxy) at this isched", ms: got.ms },
    );
  if (r.warnings.length > 0)
    return finding("capabilities", "warn", subject, `${summary}; ${r.warnings.join("; ")}`, { ms: got.ms });
  return finding("capabilities", "pass", subject, summary, { ms: got.ms });
}
