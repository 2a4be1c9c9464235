/**
 * Is a key published right? Asks DNS (`SELECTOR._domainkey.DOMAIN` TXT), the public
 * /.well-known/domainkey (as a peer would find it: http/well-known, draft §7.3.2) and isched's own
 * endpoint, compares the p= each serves with ours, and names the usual mistakes: the domain
 * appended twice (a full name typed into a panel that appends the zone), literal quotes (the quoted
 * form pasted into a field that wants the bare value), spaces inside p= (parts joined with a space),
 * the key published under another selector, several records at one name.
 */
import { wellKnownSource } from "../dkim/well-known-source.ts";
import type { DnsResolver } from "../dns/client.ts";

export type CheckStatus = "matching" | "missing" | "different" | "error";

export interface PlaceCheck {
  status: CheckStatus;
  /** What was asked: a DNS name or a URL. */
  where: string;
  /** The record texts found there. */
  found: string[];
  mistakes: string[];
  ms: number;
}

export interface KeyCheck {
  domain: string;
  selector: string;
  checkedAtMs: number;
  dns: PlaceCheck;
  wellKnown: PlaceCheck;
  /** What isched's own endpoint serves (it must, for http/well-known to work through it). */
  local: PlaceCheck;
  /** A peer can find the key: DNS or the public well-known document serves it. */
  verified: boolean;
}

export interface KeyCheckInput {
  domain: string;
  selector: string;
  record: string;
  /** Our other keys of the domain, to recognise a key published under the wrong selector. */
  others: readonly { selector: string; record: string }[];
  dns: DnsResolver;
  fetch: { allowPrivate: boolean; ca?: string };
  /** `http://127.0.0.1:PORT`: isched's own endpoint. */
  localBase: string;
  nowMs: number;
}

/** The p= of a key record as written (undefined without one). */
export function rawP(text: string): string | undefined {
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === "p") return part.slice(eq + 1).trim();
  }
  return undefined;
}

const bare = (p: string): string => p.replace(/\s+/g, "");

/** Compares what one place serves with our record. */
export function compareRecords(
  found: readonly string[],
  ours: string,
  others: KeyCheckInput["others"],
): Pick<PlaceCheck, "status" | "mistakes"> {
  const want = bare(rawP(ours) ?? "");
  const mistakes: string[] = [];
  if (found.length === 0) return { status: "missing", mistakes };
  if (found.length > 1) mistakes.push(`${found.length} records at this name: remove all but one`);
  let status: CheckStatus = "different";
  for (const text of found) {
    const p = rawP(text);
    if (p === undefined) {
      mistakes.push(`a record without p=: "${clip(text)}"`);
      continue;
    }
    if (bare(p) === want) {
      status = "matching";
      if (/\s/.test(p))
        mistakes.push("spaces inside p=: some peers do not remove them; paste the value as one string");
      continue;
    }
    if (bare(p).replace(/"/g, "") === want || text.includes('"')) {
      mistakes.push('literal quotes: the panel stored the quote marks as text; paste the value without "');
      continue;
    }
    const other = others.find((k) => bare(rawP(k.record) ?? "") === bare(p));
    if (other) mistakes.push(`wrong selector: this name serves the key of selector ${other.selector}`);
    else if (bare(p) === "") mistakes.push("p= is empty: the key is revoked");
    else mistakes.push("another key: p= differs from ours");
  }
  return { status, mistakes };
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - t0) };
}

async function checkDns(i: KeyCheckInput): Promise<PlaceCheck> {
  const name = `${i.selector}._domainkey.${i.domain}`;
  const got = await timed(() => i.dns.txt(name));
  const a = got.value;
  if (a.status === "error")
    return { status: "error", where: name, found: [], mistakes: [a.message], ms: got.ms };
  const found = a.status === "ok" ? a.records.map((r) => r.text) : [];
  const result = { where: name, found, ms: got.ms, ...compareRecords(found, i.record, i.others) };
  if (result.status !== "missing") return result;
  // Missing where it belongs: look where the usual mistakes put it.
  const twice = `${name}.${i.domain}`;
  const t = await i.dns.txt(twice);
  if (t.status === "ok") {
    result.mistakes.push(
      `domain appended twice: the record is at ${twice}; enter the name as "${i.selector}._domainkey" (relative) or end it with a dot`,
    );
  }
  const want = bare(rawP(i.record) ?? "");
  for (const other of i.others) {
    const at = `${other.selector}._domainkey.${i.domain}`;
    const o = await i.dns.txt(at);
    if (o.status === "ok" && o.records.some((r) => bare(rawP(r.text) ?? "") === want)) {
      result.mistakes.push(`wrong selector: this key is published at ${at}, not ${name}`);
    }
  }
  return result;
}

async function checkWellKnown(i: KeyCheckInput): Promise<PlaceCheck> {
  const source = wellKnownSource({ resolver: i.dns, fetch: { ...i.fetch, totalTimeoutMs: 8000 } });
  const got = await timed(() => source.fetch(i.domain, i.selector));
  const r = got.value;
  const where = `https://${i.domain}/.well-known/domainkey/${i.domain}/${i.selector}`;
  if (r.status === "error") return { status: "error", where, found: [], mistakes: [r.message], ms: got.ms };
  if (r.status === "absent") {
    // `where` is the URL asked, or why none could be asked (no such host): say which.
    const asked = r.where.startsWith("https://") ? r.where : where;
    return {
      status: "missing",
      where: asked,
      found: [],
      mistakes: asked === r.where ? [] : [r.where],
      ms: got.ms,
    };
  }
  const found = r.records.map((x) => x.text);
  return {
    where: r.records[0]?.where ?? where,
    found,
    ms: got.ms,
    ...compareRecords(found, i.record, i.others),
  };
}

async function checkLocal(i: KeyCheckInput): Promise<PlaceCheck> {
  const url = `${i.localBase}/.well-known/domainkey/${encodeURIComponent(i.domain)}/${encodeURIComponent(i.selector)}`;
  const t0 = performance.now();
  try {
    // Our own listener, on loopback: its certificate names the public host, not 127.0.0.1.
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), tls: { rejectUnauthorized: false } });
    const text = await res.text();
    const ms = Math.round(performance.now() - t0);
    if (res.status === 404) {
      return {
        status: "missing",
        where: url,
        found: [],
        mistakes: ["isched's endpoint does not serve this selector (it reads its keys when it starts)"],
        ms,
      };
    }
    const found = text.split(/\r?\n/).filter((l) => l.trim() !== "");
    return { where: url, found, ms, ...compareRecords(found, i.record, i.others) };
  } catch (e) {
    return {
      status: "error",
      where: url,
      found: [],
      mistakes: [(e as Error).message],
      ms: Math.round(performance.now() - t0),
    };
  }
}

export async function checkKey(i: KeyCheckInput): Promise<KeyCheck> {
  const [dns, wellKnown, local] = await Promise.all([checkDns(i), checkWellKnown(i), checkLocal(i)]);
  return {
    domain: i.domain,
    selector: i.selector,
    checkedAtMs: i.nowMs,
    dns,
    wellKnown,
    local,
    verified: dns.status === "matching" || wellKnown.status === "matching",
  };
}
