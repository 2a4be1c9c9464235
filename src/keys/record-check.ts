/**
 * Are the records that lead peers to isched published right? The same verdicts as the key check
 * (matching, missing, different, error), for:
 *
 * - `_ischedules._tcp.DOMAIN` SRV (draft §4.2): a target and port equal to the public endpoint's;
 * - `_ischedules._tcp.DOMAIN` TXT `path=` (draft §4.3): the endpoint's path (optional when that is
 *   the well-known path, which peers use without it);
 * - `_domainkey_lookup._tcp.DOMAIN` SRV (draft §7.3.2.1): where peers that fetch keys by
 *   http/well-known ask; without it they ask the domain's own web server, which does not serve them.
 *
 * A missing record is also looked for where the usual mistake puts it (the domain appended twice).
 */
import type { DnsResolver, SrvRecord } from "../dns/client.ts";
import type { DnsRecordView } from "./dns-records.ts";
import type { CheckStatus, PlaceCheck } from "./key-check.ts";

const bareName = (name: string): string => name.replace(/\.$/, "").toLowerCase();

function srvText(r: SrvRecord): string {
  return `${r.priority} ${r.weight} ${r.port} ${r.target === "" ? "." : `${r.target}.`}`;
}

/** Compares the SRV records found at a name with the one target and port we publish. */
export function compareSrv(
  found: readonly SrvRecord[],
  want: { host: string; port: number },
): Pick<PlaceCheck, "status" | "mistakes"> {
  if (found.length === 0) return { status: "missing", mistakes: [] };
  const wanted = `${bareName(want.host)}:${want.port}`;
  const at = (r: SrvRecord) => `${bareName(r.target)}:${r.port}`;
  const mistakes: string[] = [];
  if (found.some((r) => r.target === "" || r.target === "."))
    mistakes.push('the target "." says there is no such service at this domain (RFC 2782): remove it');
  const ours = found.filter((r) => at(r) === wanted);
  const others = found.filter((r) => at(r) !== wanted && r.target !== "" && r.target !== ".");
  for (const r of others) {
    const same = bareName(r.target) === bareName(want.host);
    mistakes.push(
      same
        ? `port ${r.port} is not the port isched listens on for peers (${want.port})`
        : `points at ${bareName(r.target)}:${r.port}, not at isched (${bareName(want.host)}:${want.port})`,
    );
  }
  const status: CheckStatus = ours.length > 0 && mistakes.length === 0 ? "matching" : "different";
  return { status, mistakes };
}

/** The `path=` values of the TXT records at a name, compared with ours. */
export function comparePath(
  found: readonly string[],
  wantPath: string,
): Pick<PlaceCheck, "status" | "mistakes"> {
  const paths = found
    .map((t) => /(?:^|;)\s*path=([^;\s]*)/.exec(t)?.[1])
    .filter((p): p is string => p !== undefined);
  if (paths.length === 0) return { status: "missing", mistakes: [] };
  const mistakes: string[] = [];
  if (paths.length > 1) mistakes.push(`${paths.length} path= records: peers take one at random; keep one`);
  for (const p of paths)
    if (p !== wantPath) mistakes.push(`path=${p}: peers would POST to ${p}, not ${wantPath}`);
  return { status: mistakes.length === 0 ? "matching" : "different", mistakes };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - t0) };
}

/** What DNS serves at a name now, as record texts and a verdict against `record`. */
async function lookUp(
  record: DnsRecordView,
  name: string,
  dns: DnsResolver,
): Promise<{ error: string } | ({ found: string[] } & Pick<PlaceCheck, "status" | "mistakes">)> {
  if (record.type === "SRV") {
    const a = await dns.srv(name);
    if (a.status === "error") return { error: a.message };
    const records = a.status === "ok" ? a.records : [];
    const [, , port, host] = record.value.split(" ");
    return { found: records.map(srvText), ...compareSrv(records, { host: host!, port: Number(port) }) };
  }
  const a = await dns.txt(name);
  if (a.status === "error") return { error: a.message };
  const found = a.status === "ok" ? a.records.map((r) => r.text) : [];
  return { found, ...comparePath(found, record.value.slice("path=".length)) };
}

/** Checks one published record (an SRV, or the path TXT) of `domain` as DNS serves it now. */
export async function checkRecord(
  record: DnsRecordView,
  o: { domain: string; dns: DnsResolver },
): Promise<PlaceCheck> {
  const name = bareName(record.name);
  const got = await timed(() => lookUp(record, name, o.dns));
  const a = got.value;
  if ("error" in a) return { status: "error", where: name, found: [], mistakes: [a.error], ms: got.ms };
  const result: PlaceCheck = { where: name, ms: got.ms, ...a };
  if (result.status === "missing") {
    // Missing where it belongs: look where the usual mistake puts it.
    const twice = `${name}.${o.domain}`;
    const t = record.type === "SRV" ? await o.dns.srv(twice) : await o.dns.txt(twice);
    if (t.status === "ok")
      result.mistakes.push(
        `domain appended twice: the record is at ${twice}; enter the name as "${record.relative}" (relative) or end it with a dot`,
      );
  }
  return result;
}
