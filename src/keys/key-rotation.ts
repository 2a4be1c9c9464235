/**
 * Our DKIM keys' life cycle (dkim_keys.state): a new key is made `pending` (published, not
 * signing); once a check shows peers can find it (DNS or the public well-known document serves it),
 * it becomes `active` and the key it replaces `retiring`: still published for an overlap (default
 * 7 days, beyond any signature's x= and any DNS cache), so messages signed just before the switch
 * still verify; then `retired`. A sweep retires keys whose overlap is over.
 */
import { createPublicKey } from "node:crypto";
import { formatKeyRecord, publicKeyMaterial } from "../dkim/key-record.ts";
import { generateDkimKey } from "../dkim/keygen.ts";
import type { DkimKeyRow, KeyState, Store } from "../store/store.ts";
import type { KeyCheck } from "./key-check.ts";
import { defaultSelector, type OwnKeys } from "./own-keys.ts";

export const DEFAULT_OVERLAP_MS = 7 * 24 * 3_600_000;

/**
 * A rotation step refused, with the HTTP status the console answers it with: 400 (not a hosted
 * domain), 404 (no such key), 409 (the key's state, or a check, does not allow it).
 */
export class KeyRotationError extends Error {
  override readonly name = "KeyRotationError";
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A key as the page shows it: never the private key. */
export interface KeyView {
  /** null for the operator's --dkim-key, which is not in the database. */
  id: number | null;
  domain: string;
  selector: string;
  algorithm: string;
  bits: number;
  state: KeyState;
  source: "database" | "--dkim-key";
  createdAt: number | null;
  activatedAt: number | null;
  retireAfter: number | null;
  record: string;
}

export interface KeyRotationOptions {
  store: Store;
  domains: readonly string[];
  ownKeys: OwnKeys;
  /** --dkim-key was given: its key signs, and the console cannot rotate it. */
  operatorKey: boolean;
  nowMs: () => number;
  /** After every change: the running server reads its keys again (live-keys.ts). */
  onChange?: () => Promise<void>;
}

const view = (k: DkimKeyRow): KeyView => ({
  id: k.id,
  domain: k.domain,
  selector: k.selector,
  algorithm: k.algorithm,
  bits: k.bits,
  state: k.state,
  source: "database",
  createdAt: k.createdAt,
  activatedAt: k.activatedAt,
  retireAfter: k.retireAfter,
  record: k.record,
});

export class KeyRotation {
  readonly #o: KeyRotationOptions;

  constructor(o: KeyRotationOptions) {
    this.#o = o;
  }

  /** Every key of every hosted domain, the operator's first, newest last. */
  async keys(domain: string): Promise<KeyView[]> {
    const out: KeyView[] = [];
    if (this.#o.operatorKey) {
      const k = this.#o.ownKeys.signingKey(domain);
      if (k) {
        const pub = createPublicKey(k.privateKey);
        out.push({
          id: null,
          domain,
          selector: k.selector,
          algorithm: k.algorithm,
          bits: pub.asymmetricKeyDetails?.modulusLength ?? 256,
          state: "active",
          source: "--dkim-key",
          createdAt: null,
          activatedAt: null,
          retireAfter: null,
          record: formatKeyRecord(publicKeyMaterial(pub)),
        });
      }
    }
    for (const k of await this.#o.store.keys({ domain })) out.push(view(k));
    return out;
  }

  async byId(id: number): Promise<DkimKeyRow> {
    const k = (await this.#o.store.keys()).find((x) => x.id === id);
    if (!k) throw new KeyRotationError(404, `no key ${id}`);
    return k;
  }

  /** A new pending key for `domain`, under a fresh selector. */
  async generate(domain: string, type: "rsa" | "ed25519"): Promise<KeyView> {
    if (!this.#o.domains.includes(domain))
      throw new KeyRotationError(400, `${domain} is not a hosted domain`);
    if (this.#o.operatorKey)
      throw new KeyRotationError(
        409,
        "isched signs with --dkim-key: rotate that key outside isched, then restart",
      );
    const existing = await this.#o.store.keys({ domain });
    const pending = existing.find((k) => k.state === "pending");
    if (pending)
      throw new KeyRotationError(
        409,
        `${domain} already has a pending key (${pending.selector}): activate or discard it`,
      );
    const now = this.#o.nowMs();
    const taken = new Set(existing.map((k) => k.selector));
    const base = defaultSelector(now);
    let selector = base;
    for (let i = 2; taken.has(selector); i++) selector = `${base}-${i}`;
    const key = generateDkimKey(type);
    await this.#o.store.insertKey({
      domain,
      selector,
      algorithm: type === "rsa" ? "rsa-sha256" : "ed25519-sha256",
      bits: key.bits,
      privateKeyPem: key.privateKeyPem,
      record: key.record,
      state: "pending",
      createdAt: now,
      activatedAt: null,
    });
    await this.#o.onChange?.();
    return view((await this.#o.store.keys({ domain })).find((k) => k.selector === selector)!);
  }

  /**
   * Makes a pending key the signing key, provided `check` (made just now) shows peers can find it;
   * the keys it replaces retire after `overlapMs`.
   */
  async activate(
    id: number,
    check: KeyCheck,
    overlapMs: number,
  ): Promise<{ activated: KeyView; retiring: string[] }> {
    const key = await this.byId(id);
    if (key.state !== "pending")
      throw new KeyRotationError(409, `key ${key.selector} is ${key.state}, not pending`);
    if (!check.verified) {
      throw new KeyRotationError(
        409,
        `peers cannot find key ${key.selector} yet: publish its record, then check again`,
        {
          check,
        },
      );
    }
    const now = this.#o.nowMs();
    // One transaction in the store: the domain's active keys retire and this one signs.
    const { retiring } = await this.#o.store.activateKey({ id, nowMs: now, retireAfter: now + overlapMs });
    await this.#o.onChange?.();
    return { activated: view(await this.byId(id)), retiring };
  }

  /** Retires a retiring key now, or discards a pending one. An active key is replaced, not retired. */
  async retire(id: number): Promise<KeyView> {
    const key = await this.byId(id);
    if (key.state === "active")
      throw new KeyRotationError(409, "the active key signs: rotate to a new key instead");
    if (key.state === "retired") throw new KeyRotationError(409, `key ${key.selector} is already retired`);
    await this.#o.store.setKeyState({ id, state: "retired" });
    await this.#o.onChange?.();
    return view(await this.byId(id));
  }

  /** Retires the keys whose overlap has ended; returns their selectors. */
  async sweep(): Promise<string[]> {
    const now = this.#o.nowMs();
    const done: string[] = [];
    for (const k of await this.#o.store.keys()) {
      if (k.state === "retiring" && k.retireAfter !== null && k.retireAfter <= now) {
        await this.#o.store.setKeyState({ id: k.id, state: "retired" });
        done.push(`${k.domain}:${k.selector}`);
      }
    }
    if (done.length > 0) await this.#o.onChange?.();
    return done;
  }
}
