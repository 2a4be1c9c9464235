/**
 * The Keys and DNS page's state: our keys with the records to publish, the public endpoint the SRV
 * records name (a setting, with a guess until it is set), the latest check of each published key and
 * each record, rechecked every 10 minutes while isched runs, and the sweep that retires keys after
 * their overlap.
 */
import type { DnsResolver } from "../dns/client.ts";
import {
  type DnsRecordView,
  endpointRecords,
  keyRecord,
  type PublicEndpoint,
  parsePublicEndpoint,
  zoneFile,
} from "../keys/dns-records.ts";
import { checkKey, type KeyCheck, type PlaceCheck } from "../keys/key-check.ts";
import { KeyRotation, KeyRotationError, type KeyView } from "../keys/key-rotation.ts";
import type { OwnKeys } from "../keys/own-keys.ts";
import { ENDPOINT_SETTING, publicEndpointOf } from "../keys/public-endpoint.ts";
import { checkRecord } from "../keys/record-check.ts";
import type { Store } from "../store/store.ts";
import { RequestError } from "./http.ts";

const RECHECK_MS = 10 * 60_000;
const SWEEP_MS = 60_000;

export interface KeysServiceOptions {
  store: Store;
  domains: readonly string[];
  ownKeys: OwnKeys;
  operatorKey: boolean;
  dns: DnsResolver;
  fetch: { allowPrivate: boolean; ca?: string };
  /** isched's own endpoint, e.g. http://127.0.0.1:8080. */
  localBase: string;
  /** The listen port, for the guessed public endpoint. */
  listenPort: number;
  tls: boolean;
  nowMs: () => number;
  log: { log(level: "info" | "warn", message: string, fields?: Record<string, string>): void };
  /** After a rotation changed the keys: the running server reads them again. */
  onKeysChanged?: () => Promise<void>;
  /** Every check's DNS verdict, so outbound signing starts as soon as a key is seen published. */
  onChecked?: (domain: string, selector: string, dnsMatching: boolean) => void;
}

export interface DomainKeys {
  domain: string;
  keys: (KeyView & { check: KeyCheck | null })[];
  /** Each with what DNS served at its latest check (a key's record: its key check's DNS part). */
  records: (DnsRecordView & { check: PlaceCheck | null })[];
  /** When the records were last checked (null: not yet). */
  checkedAtMs: number | null;
}

const PUBLISHED = new Set(["pending", "active", "retiring"]);

export class KeysService {
  readonly rotation: KeyRotation;
  readonly #o: KeysServiceOptions;
  readonly #checks = new Map<string, KeyCheck>();
  /** Record checks by domain, record name, type and value (a new endpoint makes new records). */
  readonly #recordChecks = new Map<string, PlaceCheck>();
  readonly #checkedAt = new Map<string, number>();
  #timers: ReturnType<typeof setInterval>[] = [];

  constructor(o: KeysServiceOptions) {
    this.#o = o;
    this.rotation = new ApiKeyRotation({
      store: o.store,
      domains: o.domains,
      ownKeys: o.ownKeys,
      operatorKey: o.operatorKey,
      nowMs: o.nowMs,
      onChange: o.onKeysChanged,
    });
  }

  start(): void {
    const recheck = setInterval(() => void this.checkAll().catch(() => {}), RECHECK_MS);
    const sweep = setInterval(async () => {
      try {
        for (const k of await this.rotation.sweep())
          this.#o.log.log("info", "retired a DKIM key after its overlap", { key: k });
      } catch {
        // The database is closing (shutdown), or refuses writes for now: the next sweep retries.
      }
    }, SWEEP_MS);
    recheck.unref();
    sweep.unref();
    this.#timers = [recheck, sweep];
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  async publicEndpoint(): Promise<{ url: string; endpoint: PublicEndpoint; fromSetting: boolean }> {
    return publicEndpointOf({ ...this.#o, stored: await this.#o.store.getSetting(ENDPOINT_SETTING) });
  }

  async setPublicEndpoint(url: string): Promise<void> {
    if (!parsePublicEndpoint(url))
      throw new RequestError(
        400,
        "the public endpoint must be an https://HOST[:PORT]/PATH URL with a domain name as HOST, and no credentials or query",
      );
    await this.#o.store.setSetting(ENDPOINT_SETTING, url);
  }

  /** The records to publish for a domain, without their checks. */
  async #records(domain: string): Promise<DnsRecordView[]> {
    return [
      ...endpointRecords(domain, (await this.publicEndpoint()).endpoint),
      ...(await this.rotation.keys(domain))
        .filter((k) => PUBLISHED.has(k.state))
        .map((k) => keyRecord(domain, k.selector, k.record, k.state)),
    ];
  }

  async domain(domain: string): Promise<DomainKeys> {
    if (!this.#o.domains.includes(domain)) throw new RequestError(404, `${domain} is not a hosted domain`);
    const keys = await this.rotation.keys(domain);
    const keyCheck = (selector: string) => this.#checks.get(`${domain}|${selector}`) ?? null;
    return {
      domain,
      keys: keys.map((k) => ({ ...k, check: keyCheck(k.selector) })),
      records: (await this.#records(domain)).map((r) => ({
        ...r,
        check:
          r.selector !== undefined
            ? (keyCheck(r.selector)?.dns ?? null)
            : (this.#recordChecks.get(recordKey(domain, r)) ?? null),
      })),
      checkedAtMs: this.#checkedAt.get(domain) ?? null,
    };
  }

  all(): Promise<DomainKeys[]> {
    return Promise.all(this.#o.domains.map((d) => this.domain(d)));
  }

  async zone(domain: string): Promise<string> {
    return zoneFile(domain, (await this.domain(domain)).records, new Date(this.#o.nowMs()));
  }

  /** Checks one published key now and keeps the result. */
  async check(domain: string, selector: string): Promise<KeyCheck> {
    const keys = await this.rotation.keys(domain);
    const key = keys.find((k) => k.selector === selector);
    if (!key) throw new RequestError(404, `no key ${selector} for ${domain}`);
    const result = await checkKey({
      domain,
      selector,
      record: key.record,
      others: keys
        .filter((k) => k.selector !== selector)
        .map((k) => ({ selector: k.selector, record: k.record })),
      dns: this.#o.dns,
      fetch: this.#o.fetch,
      localBase: this.#o.localBase,
      nowMs: this.#o.nowMs(),
    });
    this.#checks.set(`${domain}|${selector}`, result);
    this.#o.onChecked?.(domain, selector, result.dns.status === "matching");
    return result;
  }

  /** Checks every published key and record of every hosted domain (or of one). */
  async checkAll(only?: string): Promise<KeyCheck[]> {
    // An empty list would read as "nothing published"; a domain we do not serve is the caller's mistake.
    if (only !== undefined && !this.#o.domains.includes(only))
      throw new RequestError(404, `${only} is not a hosted domain`);
    const out: KeyCheck[] = [];
    for (const domain of this.#o.domains) {
      if (only && domain !== only) continue;
      const records = (await this.#records(domain)).filter((r) => r.selector === undefined);
      const [keys] = await Promise.all([
        Promise.all(
          (await this.rotation.keys(domain))
            .filter((k) => PUBLISHED.has(k.state))
            .map((k) => this.check(domain, k.selector)),
        ),
        ...records.map(async (r) =>
          this.#recordChecks.set(recordKey(domain, r), await checkRecord(r, { domain, dns: this.#o.dns })),
        ),
      ]);
      this.#checkedAt.set(domain, this.#o.nowMs());
      out.push(...keys);
    }
    return out;
  }
}

const recordKey = (domain: string, r: DnsRecordView): string => `${domain}|${r.type}|${r.name}|${r.value}`;

/** The rotation's refusals as the API answers them: its status, its sentence, its details. */
class ApiKeyRotation extends KeyRotation {
  override generate(...a: Parameters<KeyRotation["generate"]>) {
    return answered(() => super.generate(...a));
  }
  override byId(id: number) {
    return answered(() => super.byId(id));
  }
  override activate(...a: Parameters<KeyRotation["activate"]>) {
    return answered(() => super.activate(...a));
  }
  override retire(id: number) {
    return answered(() => super.retire(id));
  }
}

async function answered<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof KeyRotationError) throw new RequestError(e.status, e.message, e.extra);
    throw e;
  }
}
