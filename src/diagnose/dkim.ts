/**
 * Can a peer verify our signatures for a domain? For each key we publish, the record a peer would
 * find (DNS TXT `SELECTOR._domainkey.DOMAIN`, RFC 6376 §3.6.2.1; the http/well-known document,
 * draft §7.3.2, found through SRV `_domainkey_lookup._tcp.DOMAIN`) is compared with the public key
 * of our private key, using the console's key check (src/keys/key-check.ts) and its list of
 * usual publishing mistakes; the `_domainkey_lookup` SRV record as the Keys page checks it.
 */
import { createPublicKey } from "node:crypto";
import { formatKeyRecord, publicKeyMaterial } from "../dkim/key-record.ts";
import type { DnsResolver } from "../dns/client.ts";
import { endpointRecords, keyRecord, type PublicEndpoint } from "../keys/dns-records.ts";
import { checkKey, type KeyCheck, type PlaceCheck } from "../keys/key-check.ts";
import { type Check, finding, timed } from "./check.ts";
import { recordCheck } from "./endpoint.ts";

export interface OwnKey {
  readonly selector: string;
  readonly state: "pending" | "active" | "retiring";
  readonly privateKeyPem: string;
  /** The record isched stored for the key; absent for the operator's --dkim-key file. */
  readonly record?: string;
}

export interface DkimCheckInput {
  domain: string;
  keys: readonly OwnKey[];
  dns: DnsResolver;
  fetch: { allowPrivate: boolean; ca?: string };
  /** isched's own endpoint, when it runs: it must serve the keys too. */
  localBase?: string;
  /** Where peers should find isched (the console's public endpoint, or the guess). */
  expected: PublicEndpoint & { fromSetting: boolean };
  nowMs: number;
}

export async function dkimChecks(i: DkimCheckInput): Promise<Check[]> {
  // Where peers that fetch keys by http/well-known ask (draft §7.3.2); most use DNS: a warning.
  const lookup = endpointRecords(i.domain, i.expected).find((r) => r.name.startsWith("_domainkey_lookup."))!;
  const checks: Check[] = [
    await recordCheck({
      id: "domainkey-lookup",
      record: lookup,
      domain: i.domain,
      dns: i.dns,
      guessed: !i.expected.fromSetting,
      missing: "warn",
    }),
  ];
  if (i.keys.length === 0)
    checks.push(
      finding("dkim-key", "fail", `DKIM keys of ${i.domain}`, "isched has no key for this domain", {
        fix: "start isched once with this --domain: it makes a key and prints its records",
      }),
    );
  for (const key of i.keys) checks.push(...(await keyChecks(i, key)));
  return checks;
}

/** The record of the private key itself, so that a stored record that drifted is caught too. */
function recordOf(pem: string): string {
  return formatKeyRecord(publicKeyMaterial(createPublicKey(pem)));
}

const samePublicKey = (a: string, b: string) => keyOf(a) === keyOf(b);
const keyOf = (record: string) => /(?:^|;)\s*p=([^;]*)/.exec(record)?.[1]?.replace(/\s+/g, "") ?? "";

async function keyChecks(i: DkimCheckInput, key: OwnKey): Promise<Check[]> {
  const name = `${key.selector}._domainkey.${i.domain}`;
  const expected = recordOf(key.privateKeyPem);
  if (key.record !== undefined && !samePublicKey(expected, key.record))
    return [
      finding(
        "dkim-key",
        "fail",
        `DKIM key ${key.selector} of ${i.domain}`,
        "the stored record is not that of its private key",
        {
          fix: "make a new key on the console's Keys page and publish it",
        },
      ),
    ];
  const got = await timed(() =>
    checkKey({
      domain: i.domain,
      selector: key.selector,
      record: expected,
      others: [],
      dns: i.dns,
      fetch: i.fetch,
      // Without a running isched there is nothing local to ask; the answer is not reported then.
      localBase: i.localBase ?? "http://127.0.0.1:1",
      nowMs: i.nowMs,
    }),
  );
  const c: KeyCheck = got.value;
  const pending = key.state === "pending";
  const publish = `publish ${keyRecord(i.domain, key.selector, expected, key.state).zoneLine}`;
  const checks: Check[] = [
    dnsFinding(name, c, { pending, publish }, got.ms),
    wellKnownFinding(i.domain, key.selector, c),
  ];
  if (i.localBase) {
    const local = c.local;
    checks.push(
      local.status === "matching"
        ? finding("dkim-local", "pass", `isched's ${local.where}`, "serves the key")
        : finding("dkim-local", "fail", `isched's ${local.where}`, describe(local), {
            fix: "restart isched (it reads its keys when it starts)",
          }),
    );
  }
  return checks;
}

function describe(p: PlaceCheck): string {
  const found = p.found.length > 0 ? ` (found: ${p.found.map((f) => clip(f)).join(" | ")})` : "";
  return `${p.status}${p.mistakes.length > 0 ? `: ${p.mistakes.join("; ")}` : ""}${found}`;
}

const clip = (s: string) => (s.length > 70 ? `${s.slice(0, 67)}...` : s);

function dnsFinding(name: string, c: KeyCheck, o: { pending: boolean; publish: string }, ms: number): Check {
  const { pending, publish } = o;
  const p = c.dns;
  const subject = `DKIM TXT ${name}`;
  if (p.status === "matching")
    return p.mistakes.length > 0
      ? finding("dkim-dns", "warn", subject, `our key, but: ${p.mistakes.join("; ")}`, {
          fix: publish,
          ms,
        })
      : finding("dkim-dns", "pass", subject, "publishes the public key of our private key", { ms });
  if (p.status === "missing" && pending)
    return finding(
      "dkim-dns",
      "warn",
      subject,
      "not published yet (a pending key: publish it before activating it)",
      {
        fix: publish,
        ms,
      },
    );
  if (p.status === "missing" && c.wellKnown.status === "matching")
    return finding("dkim-dns", "warn", subject, "not in DNS; peers that look only in DNS cannot verify you", {
      fix: publish,
      ms,
    });
  return finding("dkim-dns", "fail", subject, `${describe(p)}: peers cannot verify your signatures`, {
    fix: publish,
    ms,
  });
}

function wellKnownFinding(domain: string, selector: string, c: KeyCheck): Check {
  const p = c.wellKnown;
  const subject = `DKIM ${p.where}`;
  if (p.status === "matching")
    return finding("dkim-well-known", "pass", subject, "serves the public key of our private key");
  if (p.status === "missing")
    return finding(
      "dkim-well-known",
      c.dns.status === "matching" ? "pass" : "warn",
      subject,
      `not served${p.mistakes.length > 0 ? ` (${p.mistakes.join("; ")})` : ""}${c.dns.status === "matching" ? ": DNS serves the key" : ""}`,
      { fix: `serve /.well-known/domainkey/${domain}/${selector} from isched, or publish the key in DNS` },
    );
  return finding("dkim-well-known", c.dns.status === "matching" ? "warn" : "fail", subject, describe(p), {
    fix: "serve the record isched serves at the same path (or none at all)",
  });
}
