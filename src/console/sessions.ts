/**
 * Console sessions, kept in the database (the store's console_sessions) so that restarting isched,
 * for an upgrade, signs nobody out. A session is a random 256-bit cookie value; the table holds only
 * its SHA-256, so reading the database (or a backup) gives no usable cookie. The CSRF token the page
 * sends back with every change is derived from the cookie value too, so it is not stored either.
 * A session ends after 12 idle hours, 7 days after sign-in, on sign-out, and with a new password.
 */
import { createHash } from "node:crypto";
import type { SessionRow, Store } from "../store/store.ts";

export const SESSION_IDLE_MS = 12 * 3_600_000;
export const SESSION_MAX_MS = 7 * 24 * 3_600_000;
const MAX_SESSIONS = 1000;
/** Last use is written at most this often: a page that polls must not write on every request. */
const TOUCH_EVERY_MS = 60_000;

export interface Session {
  readonly csrfToken: string;
  readonly createdAtMs: number;
  readonly lastSeenMs: number;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const csrfOf = (cookieValue: string): string =>
  createHash("sha256").update(`isched console CSRF\0${cookieValue}`).digest("base64url");

export class SessionStore {
  readonly #store: Store;
  readonly #now: () => number;

  constructor(store: Store, nowMs: () => number = Date.now) {
    this.#store = store;
    this.#now = nowMs;
  }

  /** Returns the cookie value (shown once) and the session. */
  async create(): Promise<{ cookieValue: string; session: Session }> {
    const cookieValue = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    const now = this.#now();
    await this.#expire(now);
    await this.#store.keepNewestSessions(MAX_SESSIONS - 1);
    await this.#store.insertSession(sha256(cookieValue), now);
    return { cookieValue, session: { csrfToken: csrfOf(cookieValue), createdAtMs: now, lastSeenMs: now } };
  }

  /** The live session of a cookie value (touching it), or undefined. */
  async get(cookieValue: string): Promise<Session | undefined> {
    const id = sha256(cookieValue);
    const row = await this.#live(id);
    if (!row) return undefined;
    const now = this.#now();
    if (now - row.lastSeenAt >= TOUCH_EVERY_MS) await this.#store.touchSession(id, now);
    return { csrfToken: csrfOf(cookieValue), createdAtMs: row.createdAt, lastSeenMs: now };
  }

  /** Whether the session still exists and has not expired, without counting as activity. */
  async alive(cookieValue: string): Promise<boolean> {
    return (await this.#live(sha256(cookieValue))) !== undefined;
  }

  delete(cookieValue: string): Promise<void> {
    return this.#store.deleteSession(sha256(cookieValue));
  }

  /** Ends every session (a new password). */
  clear(): Promise<void> {
    return this.#store.clearSessions();
  }

  async size(): Promise<number> {
    await this.#expire(this.#now());
    return this.#store.countSessions();
  }

  async #live(id: string): Promise<SessionRow | undefined> {
    const row = await this.#store.session(id);
    if (!row) return undefined;
    const now = this.#now();
    if (now - row.lastSeenAt > SESSION_IDLE_MS || now - row.createdAt > SESSION_MAX_MS) {
      await this.#store.deleteSession(id);
      return undefined;
    }
    return row;
  }

  #expire(now: number): Promise<void> {
    return this.#store.expireSessions({
      seenBefore: now - SESSION_IDLE_MS,
      createdBefore: now - SESSION_MAX_MS,
    });
  }
}
