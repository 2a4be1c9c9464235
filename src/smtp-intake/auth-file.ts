/**
 * The --smtp-auth-file: who may log in to the SMTP intake (RFC 4954 AUTH, PLAIN or LOGIN). One
 * account per line, `user:secret`; blank lines and lines starting with "#" are ignored. The secret is
 * one of:
 *
 * - `{sha256}HEX`: the SHA-256 of the password, 64 hex digits (`printf %s 'pw' | sha256sum`);
 * - `$argon2id$...`, `$argon2i$...`, `$argon2d$...`, `$2a$`/`$2b$`/`$2y$...` (bcrypt): a salted hash as
 *   `Bun.password.hash()` or `htpasswd -B` makes it; the better choice for a file that may leak;
 * - anything else: the password itself, for a file only root can read on a loopback-only setup.
 *
 * The user name is everything before the first ":", so it cannot hold one; the password may. The file
 * is read once at start-up and every mistake is refused with its line number, never its content.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export interface SmtpAccounts {
  /** Constant-time for plain and {sha256} secrets, whether or not the user exists. */
  verify(user: string, password: string): Promise<boolean>;
  readonly size: number;
}

type Secret = { kind: "sha256"; digest: Buffer } | { kind: "phc"; hash: string };

const SALTED = /^\$(?:argon2(?:id|i|d)|2[aby])\$/;

export function loadAuthFile(path: string, label = "--smtp-auth-file"): SmtpAccounts {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`${label}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseAuthFile(text, `${label} ${path}`);
}

export function parseAuthFile(text: string, label = "--smtp-auth-file"): SmtpAccounts {
  const accounts = new Map<string, Secret>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `${label} line ${i + 1}`;
    const colon = line.indexOf(":");
    if (colon === -1) throw new Error(`${where}: expected user:secret`);
    const user = line.slice(0, colon);
    const secret = line.slice(colon + 1);
    if (user === "" || /\s/.test(user))
      throw new Error(`${where}: the user name is empty or holds white space`);
    if (secret === "") throw new Error(`${where}: the secret is empty`);
    if (accounts.has(user)) throw new Error(`${where}: the user ${user} is listed twice`);
    accounts.set(user, parseSecret(secret, where));
  });
  if (accounts.size === 0) throw new Error(`${label}: no account (lines are user:secret)`);

  const dummy = sha256("");
  return {
    size: accounts.size,
    async verify(user, password) {
      const secret = accounts.get(user);
      if (secret?.kind === "phc") {
        try {
          return await Bun.password.verify(password, secret.hash);
        } catch {
          return false;
        }
      }
      // An unknown user costs the same comparison as a known one.
      const ok = timingSafeEqual(sha256(password), secret?.digest ?? dummy);
      return ok && secret !== undefined;
    },
  };
}

function parseSecret(secret: string, where: string): Secret {
  if (secret.toLowerCase().startsWith("{sha256}")) {
    const hex = secret.slice("{sha256}".length);
    if (!/^[0-9a-fA-F]{64}$/.test(hex))
      throw new Error(`${where}: {sha256} must be followed by 64 hex digits`);
    return { kind: "sha256", digest: Buffer.from(hex, "hex") };
  }
  if (SALTED.test(secret)) return { kind: "phc", hash: secret };
  return { kind: "sha256", digest: sha256(secret) };
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
