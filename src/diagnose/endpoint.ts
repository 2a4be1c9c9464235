/**
 * Can a peer find and reach our iSchedule endpoint for a domain? The SRV `_ischedules._tcp` and TXT
 * `path=` records (draft §4.2, §4.3) are checked as the console's Keys page checks them, against the
 * public endpoint; then, as a peer does it with the code isched itself uses as a sender (discovery),
 * each target's addresses (a peer refuses private ones), TLS certificate (trusted chain, names the
 * target, not expiring) and capabilities document (draft §5) fetched through peerFetch, compared
 * with what this isched publishes.
 */

import type { DnsResolver } from "../dns/client.ts";
import type { Capabilities } from "../ischedule/capabilities.ts";
import { type DnsRecordView, endpointRecords, type PublicEndpoint } from "../keys/dns-records.ts";
import { checkRecord } from "../keys/record-check.ts";
import {
  classifyAddress,
  describeAddressClass,
  isAllowedPeerAddress,
  isPublicAddress,
} from "../net/address-policy.ts";
import type { PeerRequest, PeerResponse } from "../net/peer-fetch.ts";
import { createCapabilitiesCache } from "../outbound/capabilities-cache.ts";
import type { DiscoveryService, DiscoveryTarget } from "../outbound/discovery.ts";
import { type Check, finding, timed } from "./check.ts";
import { probeTls } from "./tls-probe.ts";

export interface EndpointCheckInput {
  domain: string;
  /** Discovery without our own static routes: a peer knows only DNS. */
  discovery: DiscoveryService;
  dns: DnsResolver;
  /** peerFetch with the operator's options. */
  fetch: (req: PeerRequest) => Promise<PeerResponse>;
  allowPrivate: boolean;
  ca?: string;
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
  const [srv, path] = endpointRecords(i.domain, i.expected);
  const guessed = !i.expected.fromSetting;
  // The records as the console's Keys page checks them (src/keys/record-check.ts)...
  const checks: Check[] = [
    await recordCheck({ id: "srv", record: srv!, domain: i.domain, dns: i.dns, guessed }),
    await recordCheck({ id: "txt-path", record: path!, domain: i.domain, dns: i.dns, guessed }),
  ];
  // ...then what a peer does with them: isched's own discovery, and each target it would try.
  const found = await i.discovery.discover(i.domain);
  if (found.kind === "found")
    for (const target of found.targets.slice(0, i.maxTargets ?? 3))
      checks.push(...(await targetChecks(i, target)));
  return checks;
}

/**
 * One published record (the SRV and TXT path of the endpoint, the `_domainkey_lookup` SRV) against
 * where isched should be found. When that is only isched's guess (no public endpoint set on the
 * console), a record that differs from it may well be right: a warning then, not a failure.
 */
export async function recordCheck(o: {
  id: string;
  record: DnsRecordView;
  domain: string;
  dns: DnsResolver;
  guessed: boolean;
  /** The status when the record is missing; default fail. */
  missing?: "warn" | "fail";
}): Promise<Check> {
  const r = o.record;
  const subject = `${r.type} ${r.name.replace(/\.$/, "")}${r.type === "TXT" ? " path=" : ""}`;
  const place = await checkRecord(r, { domain: o.domain, dns: o.dns });
  const found = place.found.length > 0 ? place.found.join(" | ") : "nothing";
  const mistakes = place.mistakes.length > 0 ? `: ${place.mistakes.join("; ")}` : "";
  const fix = `publish ${r.zoneLine}`;
  switch (place.status) {
    case "matching":
      return finding(o.id, "pass", subject, found, { ms: place.ms });
    case "missing":
      if (r.optional)
        return finding(o.id, "pass", subject, `none: ${r.note ?? "optional"}`, { ms: place.ms });
      return finding(o.id, o.missing ?? "fail", subject, `missing: ${r.purpose}${mistakes}`, {
        fix,
        ms: place.ms,
      });
    case "different":
      return finding(o.id, o.guessed ? "warn" : "fail", subject, `${found}${mistakes}`, {
        fix: o.guessed
          ? `${fix}, or set where peers reach you on the console's Keys page (isched only guessed it)`
          : fix,
        ms: place.ms,
      });
    case "error":
      return finding(o.id, "fail", subject, `cannot ask DNS${mistakes}`, {
        fix: "check the DNS server (/etc/resolv.conf or --dns-server) and the zone",
        ms: place.ms,
      });
  }
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
