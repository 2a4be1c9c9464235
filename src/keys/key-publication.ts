/**
 * Is the key isched signs with visible in DNS yet? A peer that verifies before the TXT record can
 * be found refuses us, and CalendarServer caches "no key" for a domain until it restarts (its
 * dkim.py PublicKeyLookup, docs/interop.md): a first key must not sign before peers can find it.
 *
 * For each hosted domain, the record of its current signing key is looked up at
 * `SELECTOR._domainkey.DOMAIN` with isched's own DNS client (the configured --dns-server) at start-up
 * and every minute, until it is seen with our p=. A key once seen is remembered in the settings
 * table, so a restart does not wait again. Until then `waitReason(domain)` says why outbound
 * iSchedule for that domain waits; `--sign-unpublished` turns the wait off. The console's own key
 * checks (keys-service.ts) report here too, so "Check DNS now" ends a wait at once.
 */
import type { SigningKey } from "../dkim/sign.ts";
import type { DnsResolver } from "../dns/client.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";
import { compareRecords } from "./key-check.ts";

export const KEY_CHECK_INTERVAL_MS = 60_000;
/** The id (before ":DOMAIN") of the Overview's problem for a key peers cannot find yet (health.ts). */
export const KEY_PROBLEM = "dkim-key-unpublished";
/** How the reason of a waiting delivery starts: the queue finds waiting deliveries by it. */
export const WAITING_FOR_KEY = "Waiting for isched's DKIM key";

export interface KeyPublicationState {
  readonly domain: string;
  readonly selector: string;
  /** `SELECTOR._domainkey.DOMAIN`. */
  readonly name: string;
  readonly visible: boolean;
  /** When it was first seen (remembered across restarts). */
  readonly seenAtMs?: number;
  /** The last look, and what it found when the key was not there. */
  readonly checkedAtMs?: number;
  readonly problem?: string;
}

export interface KeyPublication {
  /** Why requests signed for `domain` must wait; undefined when they may go out. */
  waitReason(domain: string): string | undefined;
  /** Every hosted domain's signing key and whether peers can find it (start-up line, Overview). */
  states(): readonly KeyPublicationState[];
  /** --sign-unpublished. */
  readonly signUnpublished: boolean;
  /** Looks now at every key not yet seen; resolves when done. */
  check(): Promise<void>;
  /** A check made elsewhere (the console's Keys page) found the record, or not. */
  note(domain: string, selector: string, matching: boolean): void;
  /** Reads again when the signing keys were first seen: after a rotation changed them. */
  refresh(): Promise<void>;
  start(): void;
  stop(): void;
}

export interface KeyPublicationOptions {
  store: Store;
  domains: readonly string[];
  dns: Pick<DnsResolver, "txt">;
  /** The key that signs for a domain now (after console rotations). */
  signingKey: (domain: string) => SigningKey | undefined;
  /** The DKIM record published for a (domain, selector). */
  record: (domain: string, selector: string) => string | undefined;
  signUnpublished: boolean;
  log: Logger;
  /** A key just became visible: waiting deliveries may go. */
  onVisible?: (domain: string) => void;
  nowMs?: () => number;
  intervalMs?: number;
}

const settingKey = (domain: string, selector: string) => `dkim.seen.${domain}.${selector}`;

/**
 * When each signing key was first seen is kept in the database (it outlives restarts) and in
 * memory, read at creation and by refresh(): waitReason() is asked on every outbound attempt.
 */
export async function createKeyPublication(o: KeyPublicationOptions): Promise<KeyPublication> {
  const now = o.nowMs ?? Date.now;
  const looks = new Map<string, { checkedAtMs: number; problem?: string }>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | undefined;
  const seen = new Map<string, number>();

  const seenAt = (domain: string, selector: string): number | undefined =>
    seen.get(settingKey(domain, selector));

  async function refresh(): Promise<void> {
    for (const domain of o.domains) {
      const key = o.signingKey(domain);
      if (!key) continue;
      const name = settingKey(domain, key.selector);
      const v = await o.store.getSetting(name);
      if (v !== undefined) seen.set(name, Number(v));
    }
  }
  await refresh();

  function state(domain: string): KeyPublicationState | undefined {
    const key = o.signingKey(domain);
    if (!key) return undefined;
    const name = `${key.selector}._domainkey.${domain}`;
    const seen = seenAt(domain, key.selector);
    const look = looks.get(`${domain}|${key.selector}`);
    return {
      domain,
      selector: key.selector,
      name,
      visible: seen !== undefined,
      ...(seen !== undefined && { seenAtMs: seen }),
      ...(look && { checkedAtMs: look.checkedAtMs }),
      ...(look?.problem !== undefined && seen === undefined && { problem: look.problem }),
    };
  }

  async function markSeen(domain: string, selector: string): Promise<void> {
    if (seenAt(domain, selector) !== undefined) return;
    const at = now();
    seen.set(settingKey(domain, selector), at);
    await o.store.setSetting(settingKey(domain, selector), String(at));
    o.log.log("info", "isched's DKIM key is visible in DNS: outbound iSchedule signs with it now", {
      domain,
      name: `${selector}._domainkey.${domain}`,
    });
    o.onVisible?.(domain);
  }

  async function lookAt(domain: string): Promise<void> {
    const s = state(domain);
    if (!s || s.visible) return;
    const ours = o.record(domain, s.selector);
    if (ours === undefined) return;
    let problem: string | undefined;
    try {
      const answer = await o.dns.txt(s.name);
      if (answer.status === "error") problem = `the DNS lookup failed: ${answer.message}`;
      else {
        const found = answer.status === "ok" ? answer.records.map((r) => r.text) : [];
        const compared = compareRecords(found, ours, []);
        if (compared.status === "matching") {
          looks.set(`${domain}|${s.selector}`, { checkedAtMs: now() });
          await markSeen(domain, s.selector);
          return;
        }
        problem =
          found.length === 0
            ? "no TXT record there yet"
            : `the record there is not this key (${compared.mistakes.join("; ") || "p= differs"})`;
      }
    } catch (e) {
      problem = `the DNS lookup failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    looks.set(`${domain}|${s.selector}`, { checkedAtMs: now(), problem });
  }

  async function check(): Promise<void> {
    // One round at a time: a slow DNS server must not pile up lookups.
    running ??= Promise.all(o.domains.map(lookAt))
      .then(() => undefined)
      .finally(() => {
        running = undefined;
      });
    return running;
  }

  return {
    signUnpublished: o.signUnpublished,
    waitReason(domain) {
      if (o.signUnpublished) return undefined;
      const s = state(domain);
      if (!s || s.visible) return undefined;
      const last =
        s.checkedAtMs === undefined ? "" : `; last looked ${new Date(s.checkedAtMs).toISOString()}`;
      return `${WAITING_FOR_KEY} ${s.name} to be visible in DNS: peers cannot verify its signatures before (${s.problem ?? "not checked yet"}${last}; isched looks every minute, or start with --sign-unpublished)`;
    },
    states: () => o.domains.map(state).filter((s): s is KeyPublicationState => s !== undefined),
    check,
    note(domain, selector, matching) {
      if (matching && o.domains.includes(domain))
        markSeen(domain, selector).catch((e) =>
          o.log.log("warn", "cannot keep when our DKIM key was seen in DNS", { domain, error: String(e) }),
        );
    },
    refresh,
    start() {
      if (timer || o.signUnpublished) return;
      timer = setInterval(() => void check(), o.intervalMs ?? KEY_CHECK_INTERVAL_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

/**
 * A signing key peers cannot find yet, as the Overview's problems (health.ts): outbound iSchedule
 * for its domain waits. With --sign-unpublished the operator chose to sign anyway; the start-up
 * summary warns once, and there is nothing to wait for.
 */
export function keyProblems(
  p: Pick<KeyPublication, "states" | "signUnpublished">,
  sinceMs: number,
): { id: string; text: string; sinceMs: number }[] {
  if (p.signUnpublished) return [];
  return p
    .states()
    .filter((k) => !k.visible)
    .map((k) => ({
      id: `${KEY_PROBLEM}:${k.domain}`,
      sinceMs,
      text: `Outbound iSchedule for ${k.domain} waits: isched's DKIM key ${k.name} is not visible in DNS yet (${k.problem ?? "not checked yet"}). Publish its record (Keys and DNS); isched looks every minute, or start with --sign-unpublished.`,
    }));
}
