/**
 * Secrets out of text that goes to a log or a screen. isched's callers pass what is safe to keep;
 * this is the net under them, for values that came from elsewhere (a URL an operator typed, an
 * error message that quotes a request, a peer's answer):
 *
 * - `scheme://user:password@host` keeps the user: `scheme://user:***@host`;
 * - `Authorization: Bearer X`, `Authorization: Basic X` (and Proxy-Authorization) keep the scheme;
 * - `Cookie:` and `Set-Cookie:` values;
 * - `password=`, `token=`, `secret=`, `api_key=`, `access_token=` and the like, in a query string or
 *   a `key=value` list, quoted or not;
 * - a PEM private key block, whole.
 *
 * Pure; the replacement is always `***` (or `[private key]`), so a reader sees that something was
 * there.
 */

const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):[^\s/?#]*@/gi;
const AUTHORIZATION =
  /\b((?:proxy-)?authorization\s*[:=]\s*"?)(bearer|basic|digest|negotiate)?(\s*)[^\s",;]+/gi;
const COOKIE = /\b((?:set-)?cookie\s*:\s*)[^\r\n]*/gi;
// Names that end in one of these (`access_token`, `client_secret`, `ISCHED_SMTP_PASSWORD`); not
// `pass` or `auth` alone, which an SMTP error or a DKIM result says without a secret after them.
const SECRET_NAMES = "(?:password|passwd|pwd|secret|token|api[_-]?key|apikey)";
const KEY_VALUE = new RegExp(
  `(\\b[\\w.-]*${SECRET_NAMES}["']?\\s*[=:]\\s*)("[^"]*"|'[^']*'|[^\\s&,;"']+)`,
  "gi",
);
const PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;

export function redactSecrets(text: string): string {
  return text
    .replace(PRIVATE_KEY, "[private key]")
    .replace(URL_PASSWORD, "$1$2:***@")
    .replace(AUTHORIZATION, (_, head: string, scheme: string | undefined, space: string) =>
      scheme === undefined ? `${head}***` : `${head}${scheme}${space}***`,
    )
    .replace(COOKIE, "$1***")
    .replace(KEY_VALUE, (_, head: string, value: string) =>
      value.startsWith('"') ? `${head}"***"` : value.startsWith("'") ? `${head}'***'` : `${head}***`,
    );
}

/** A field name that holds a secret whatever its value looks like (`password`, `apiToken`, `cookie`). */
export function isSecretName(name: string): boolean {
  return /pass(word|wd)?$|secret|token|authorization|cookie|credential|private[_-]?key|^api[_-]?key$/i.test(
    name,
  );
}
