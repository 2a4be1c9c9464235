/**
 * The --smtp setting: where isched hands iMIP mail over, as `smtp://[user:password@]host[:port]` or
 * `smtps://...`. Checked at start-up with one precise message per mistake, and never shown with its
 * password: the parsed form keeps the password out of JSON and inspection, and redactSmtpUrl() is
 * what logs and the console print.
 *
 * - `smtp://`: port 587 by default (RFC 6409 submission: where a relay takes mail from its own
 *   clients; write :25 for a local MTA). STARTTLS (RFC 3207) when the server offers it, and always
 *   required when there are credentials, so a password never crosses the network in clear text.
 *   `?starttls=required` requires it without credentials too.
 * - `smtps://`: TLS from the first byte (RFC 8314 §3.3), port 465 by default.
 * User and password are percent-decoded (RFC 3986 §2.1): write "@" as %40, ":" as %3A, "/" as %2F.
 */

export type SmtpTlsMode =
  /** smtps: TLS from the first byte. */
  | "implicit"
  /** smtp: STARTTLS, and no mail is sent if the server does not offer it. */
  | "starttls"
  /** smtp: STARTTLS when the server offers it, clear text otherwise. */
  | "starttls-if-offered";

export interface SmtpCredentials {
  readonly user: string;
  /** Not an own property: JSON.stringify() and console.log() of the parsed URL leave it out. */
  readonly password: string;
}

export interface ParsedSmtpUrl {
  readonly scheme: "smtp" | "smtps";
  /** Lower-case host name or IP address, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  readonly tls: SmtpTlsMode;
  readonly auth?: SmtpCredentials;
}

const DEFAULT_PORT = { smtp: 587, smtps: 465 } as const;
const SHAPE = "smtp[s]://[user:password@]host[:port]";
const LABEL = "[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?";
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^[0-9a-f:]*:[0-9a-f:.]*$/;

/**
 * Parses an --smtp value. `label` starts every error message ("--smtp: ..."). No message repeats any
 * part of the value: a malformed value may hold a password in any of its parts.
 */
export function parseSmtpUrl(raw: string, label = "--smtp"): ParsedSmtpUrl {
  const fail = (why: string): never => {
    throw new Error(`${label}: ${why}`);
  };
  const value = raw.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(value);
  if (!m) return fail(`expected ${SHAPE}`);
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "smtp" && scheme !== "smtps") return fail(`scheme must be smtp or smtps (${SHAPE})`);
  let rest = m[2]!;

  // The last "@" ends the user information, so a password with a bare "@" still parses.
  let auth: SmtpCredentials | undefined;
  const at = rest.lastIndexOf("@");
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    if (colon === -1) return fail("the user name has no password (write user:password@host)");
    const user = decode(userinfo.slice(0, colon), "user name", fail);
    const password = decode(userinfo.slice(colon + 1), "password", fail);
    if (user === "") return fail("the user name is empty");
    if (password === "") return fail("the password is empty");
    auth = credentials(user, password);
  }

  const end = rest.search(/[/?#]/);
  const hostPort = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? "" : rest.slice(end);
  const hp = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(\d*))?$/.exec(hostPort);
  if (!hp) return fail("the host and port are malformed (expected host, host:port or [IPv6]:port)");
  const host = (hp[1] ?? hp[2] ?? "").toLowerCase().replace(/\.$/, "");
  if (host === "") return fail("the host is missing");
  const validHost = hp[1] !== undefined ? IPV6.test(host) : IPV4.test(host) || HOST_NAME.test(host);
  if (!validHost) return fail("the host is not a host name or IP address");
  let port: number = DEFAULT_PORT[scheme];
  if (hp[3] !== undefined) {
    port = Number(hp[3]);
    if (hp[3] === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
      return fail("the port is not a number in 1..65535");
    }
  }

  let requireStartTls = false;
  const t = /^\/?(?:\?([^#]*))?$/.exec(tail);
  if (!t) return fail("nothing but ?starttls=required may follow host[:port]");
  for (const param of (t[1] ?? "").split("&").filter((p) => p !== "")) {
    if (param.toLowerCase() !== "starttls=required") {
      return fail("unknown parameter (the only one is starttls=required)");
    }
    if (scheme === "smtps") return fail("starttls=required is for smtp://; smtps:// is TLS throughout");
    requireStartTls = true;
  }

  const tls: SmtpTlsMode =
    scheme === "smtps" ? "implicit" : auth || requireStartTls ? "starttls" : "starttls-if-offered";
  return { scheme, host, port, tls, ...(auth && { auth }) };
}

/**
 * The URL for logs and the console: `smtp://user:***@host:587`. Takes a parsed URL, or any string
 * (a value that failed to parse too): everything between the first ":" after "//" and the last "@"
 * is hidden.
 */
export function redactSmtpUrl(url: ParsedSmtpUrl | string): string {
  if (typeof url === "string") {
    const start = url.includes("://") ? url.indexOf("://") + 3 : 0;
    const at = url.lastIndexOf("@");
    const colon = url.indexOf(":", start);
    if (at < start || colon === -1 || colon > at) return url;
    return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
  }
  const user = url.auth ? `${encodeURIComponent(url.auth.user)}:***@` : "";
  const host = url.host.includes(":") ? `[${url.host}]` : url.host;
  const query = url.scheme === "smtp" && url.tls === "starttls" && !url.auth ? "?starttls=required" : "";
  return `${url.scheme}://${user}${host}:${url.port}${query}`;
}

function decode(text: string, what: string, fail: (why: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail(`the ${what} has a malformed percent-encoding (write "%" as %25)`);
  }
}

/**
 * The password lives in a private field behind a getter: JSON.stringify() skips it, and console.log()
 * (Node's and Bun's) shows "[Getter]"; a plain non-enumerable property is still printed by Bun.
 */
class Credentials implements SmtpCredentials {
  readonly #password: string;
  constructor(
    readonly user: string,
    password: string,
  ) {
    this.#password = password;
  }
  get password(): string {
    return this.#password;
  }
}

function credentials(user: string, password: string): SmtpCredentials {
  return Object.freeze(new Credentials(user, password));
}
