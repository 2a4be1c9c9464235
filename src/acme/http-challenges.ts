/**
 * The HTTP-01 challenges in progress (RFC 8555 §8.3): the ACME client puts a token and its key
 * authorization here while the CA validates, and any HTTP listener on port 80 answers
 * `GET /.well-known/acme-challenge/TOKEN` from it with one call to `respond()`.
 *
 * Only tokens the client put here are answered; anything else under the prefix is a 404, so the
 * listener never reveals more than the CA is meant to read. Tokens are base64url (RFC 8555 §8.1), at
 * least 128 bits of entropy, which also keeps odd paths out of the map.
 */

export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

const TOKEN = /^[A-Za-z0-9_-]{22,256}$/;

export interface HttpChallenges {
  /** Answers `token` with `keyAuthorization` until `remove(token)`. */
  add(token: string, keyAuthorization: string): void;
  remove(token: string): void;
  /** How many challenges are waiting for the CA. */
  readonly size: number;
  /**
   * The answer to a request for `/.well-known/acme-challenge/...` (200 with the key authorization,
   * or 404), or undefined when the request is for another path and the caller should answer it.
   */
  respond(request: Request): Response | undefined;
}

export function createHttpChallenges(): HttpChallenges {
  const tokens = new Map<string, string>();
  return {
    add(token, keyAuthorization) {
      if (!TOKEN.test(token)) throw new RangeError(`"${token}" is not an ACME challenge token (base64url)`);
      tokens.set(token, keyAuthorization);
    },
    remove(token) {
      tokens.delete(token);
    },
    get size() {
      return tokens.size;
    },
    respond(request) {
      // request.url is a bare path when Bun gets an empty or odd Host header; no Host is needed here.
      const path = new URL(request.url, "http://host.invalid").pathname;
      if (!path.startsWith(ACME_CHALLENGE_PREFIX)) return undefined;
      const token = path.slice(ACME_CHALLENGE_PREFIX.length);
      const keyAuthorization =
        request.method === "GET" || request.method === "HEAD" ? tokens.get(token) : undefined;
      if (keyAuthorization === undefined) {
        return new Response("No such ACME challenge.\n", {
          status: 404,
          headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
        });
      }
      // RFC 8555 §8.3: the body is the key authorization; the CA trims surrounding whitespace.
      return new Response(keyAuthorization, {
        headers: { "Content-Type": "application/octet-stream", "Cache-Control": "no-store" },
      });
    },
  };
}
