/**
 * Who may use the console. One administrator password, kept as an argon2id hash (Bun.password) in
 * the settings table; until one is set, a one-time setup token (random, 192 bits) printed when isched
 * starts is the only way in, and it can do nothing but set the password. Only its SHA-256 is stored,
 * and each start without a password replaces it, so there is never a moment when the console can be
 * claimed by whoever reaches it first.
 *
 * Signing in makes a session: a random id in an HttpOnly, SameSite=Strict cookie (Secure, and
 * `__Host-` prefixed, under TLS) and a CSRF token the page sends back in a header with every change.
 * Sessions are kept in the database, hashed (sessions.ts), so a restart signs nobody out; they
 * expire after 12 idle hours or 7 days, and a new password ends all of them.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Store } from "../store/store.ts";
import { SESSION_MAX_MS } from "./sessions.ts";

export const PASSWORD_SETTING = "console.admin-password";
export const SETUP_TOKEN_SETTING = "console.setup-token";
export const MIN_PASSWORD_LENGTH = 10;

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const randomToken = (bytes: number): string =>
  Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Why a password is not acceptable, or undefined. */
export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH)
    return `the password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > 1024) return "the password is longer than 1024 characters";
  if (/^\s|\s$/.test(password)) return "the password starts or ends with a space";
  return undefined;
}

export async function hasAdminPassword(store: Store): Promise<boolean> {
  return (await store.getSetting(PASSWORD_SETTING)) !== undefined;
}

/**
 * Stores the password's argon2id hash, voids any setup token and ends every session. Throws
 * RangeError for a weak one.
 */
export async function setAdminPassword(store: Store, password: string): Promise<void> {
  const problem = passwordProblem(password);
  if (problem) throw new RangeError(problem);
  const hash = await Bun.password.hash(password, { algorithm: "argon2id" });
  // Sessions outlive restarts: a password set while isched is stopped must end them too.
  await store.setAdminPassword({ setting: PASSWORD_SETTING, hash, voidSettings: [SETUP_TOKEN_SETTING] });
}

export async function adminPasswordMatches(store: Store, password: string): Promise<boolean> {
  const hash = await store.getSetting(PASSWORD_SETTING);
  if (!hash || password.length > 1024) return false;
  try {
    return await Bun.password.verify(password, hash);
  } catch {
    return false;
  }
}

/** A fresh setup token (the previous one stops working); undefined when a password is set. */
export async function createSetupToken(store: Store): Promise<string | undefined> {
  if (await hasAdminPassword(store)) return undefined;
  const token = randomToken(24);
  await store.setSetting(SETUP_TOKEN_SETTING, sha256(token));
  return token;
}

export async function setupTokenMatches(store: Store, token: string): Promise<boolean> {
  const stored = await store.getSetting(SETUP_TOKEN_SETTING);
  return stored !== undefined && !(await hasAdminPassword(store)) && sameSecret(sha256(token.trim()), stored);
}

export { SESSION_IDLE_MS, SESSION_MAX_MS, type Session, SessionStore } from "./sessions.ts";

export interface CookieOptions {
  secure: boolean;
}

export const sessionCookieName = (o: CookieOptions): string =>
  o.secure ? "__Host-isched_session" : "isched_session";

export function sessionCookie(
  value: string,
  o: CookieOptions,
  maxAgeSeconds = SESSION_MAX_MS / 1000,
): string {
  const attrs = [
    `${sessionCookieName(o)}=${value}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${maxAgeSeconds}`,
  ];
  if (o.secure) attrs.push("Secure");
  return attrs.join("; ");
}

export const clearedSessionCookie = (o: CookieOptions): string => sessionCookie("", o, 0);

/** The session cookie's value in a Cookie header, if any. */
export function readSessionCookie(header: string | null, o: CookieOptions): string | undefined {
  if (!header) return undefined;
  const name = sessionCookieName(o);
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/**
 * What `isched serve` does about the password before it says it is ready: apply
 * `--admin-password-file`, or, with no password yet, make the setup token it prints.
 */
export async function prepareAdminAccess(
  store: Store,
  o: { password?: string },
): Promise<{ setupToken?: string }> {
  if (o.password !== undefined) {
    // Re-hashing an unchanged password at every start would end the sessions of nobody, but costs
    // an argon2 round: skip it when the stored hash already matches.
    if (!(await adminPasswordMatches(store, o.password))) await setAdminPassword(store, o.password);
    return {};
  }
  return { setupToken: await createSetupToken(store) };
}
