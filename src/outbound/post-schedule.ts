/**
 * Sending one scheduling POST through peerFetch and following redirects by hand (draft §4.4:
 * Senders MUST handle redirects): 301, 302, 307 and 308 keep POST and the body, at most
 * `maxRedirects` hops, never from https to http (redirects.ts). Each hop is built afresh by the caller,
 * so it is signed with a fresh t= (as CalendarServer does); the old signature would still verify,
 * since it covers neither Host nor the request target, but a redirect chain can outlast a short x=.
 *
 * Never throws for the peer's or the network's problems: they come back as a `failed` result saying
 * whether trying later (or another SRV target) may help (the delivery policy's fetchFailure()).
 */

import { classifyPeerStatus, fetchFailure } from "../delivery/policy.ts";
import type { PeerRequest, PeerResponse } from "../net/peer-fetch.ts";
import { followRedirect, type PeerScheme } from "./redirects.ts";

export type PostResult =
  | {
      readonly kind: "answered";
      /** The first non-redirect answer. */
      readonly response: PeerResponse;
      /** The URL that gave it. */
      readonly url: string;
      /** Where the endpoint moved for good: set when every hop was a 301 or 308. */
      readonly movedTo?: string;
    }
  | {
      readonly kind: "redirect-refused";
      readonly reason: string;
      readonly url: string;
      readonly httpStatus: number;
    }
  | {
      readonly kind: "failed";
      readonly reason: string;
      readonly url: string;
      /**
       * False for isched's own configuration: an address it may not connect to, a bad URL, a key it
       * cannot sign with.
       */
      readonly temporary: boolean;
    };

export interface PostScheduleOptions {
  fetch: (req: PeerRequest) => Promise<PeerResponse>;
  url: string;
  /** Builds (and signs) the request for one hop. May throw TypeError: that is a configuration failure. */
  build: (url: string) => PeerRequest;
  /** The attempt's deadline: once aborted, the hop in progress counts as timed out. */
  signal: AbortSignal;
  /** Default 3, as CalendarServer (docs/interop.md). */
  maxRedirects?: number;
  /** Called with every response, redirects included (for the iSchedule-Capabilities serial). */
  onResponse?: (url: string, response: PeerResponse) => void;
  /** Whose endpoint it is, and whether plain HTTP is allowed for it (`--peer D=legacy-http`). */
  scheme?: PeerScheme;
}

export async function postSchedule(o: PostScheduleOptions): Promise<PostResult> {
  const maxRedirects = o.maxRedirects ?? 3;
  let url = o.url;
  const visited = [url];
  let onlyPermanent = true;
  let movedTo: string | undefined;
  for (;;) {
    let request: PeerRequest;
    try {
      request = o.build(url);
    } catch (err) {
      return { kind: "failed", url, temporary: false, reason: `cannot build the request: ${messageOf(err)}` };
    }
    let response: PeerResponse;
    try {
      const plain = o.scheme?.legacyHttp === true ? { ...request, allowHttp: true } : request;
      response = await untilAborted(o.fetch(plain), o.signal);
    } catch (err) {
      return {
        kind: "failed",
        url,
        ...fetchFailure(err, { stage: "request", what: `POST ${url}`, signal: o.signal }),
      };
    }
    o.onResponse?.(url, response);
    if (classifyPeerStatus(response.status, "POST") !== "redirect") {
      return movedTo === undefined
        ? { kind: "answered", response, url }
        : { kind: "answered", response, url, movedTo };
    }
    const step = followRedirect({
      from: url,
      status: response.status,
      location: response.headers.get("location"),
      method: "POST",
      visited,
      maxRedirects,
      ...(o.scheme !== undefined && { scheme: o.scheme }),
    });
    if (!step.ok) return { kind: "redirect-refused", reason: step.reason, url, httpStatus: response.status };
    if (step.kind === "permanent" && onlyPermanent) movedTo = step.url;
    else {
      onlyPermanent = false;
      movedTo = undefined;
    }
    url = step.url;
    visited.push(url);
  }
}

/**
 * Permanent (301, 308) redirects of POSTs seen so far: endpoint -> endpoint, at most `maxEntries`,
 * so later requests go to the new URL directly (RFC 9110 §15.4.2: "future references ... ought to
 * use one of the enclosed URIs"; CalendarServer remembers them too).
 */
export class MovedEndpoints {
  readonly #moved = new Map<string, string>();
  constructor(readonly maxEntries = 1000) {}

  /** Where `url` leads after the remembered moves (loop-safe). */
  resolve(url: string): string {
    const seen = new Set([url]);
    let at = url;
    for (let next = this.#moved.get(at); next !== undefined && !seen.has(next); next = this.#moved.get(at)) {
      at = next;
      seen.add(at);
    }
    return at;
  }

  remember(from: string, to: string): void {
    this.#moved.delete(from);
    if (this.#moved.size >= this.maxEntries) this.#moved.delete(this.#moved.keys().next().value as string);
    this.#moved.set(from, to);
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (peerFetch has its own deadline too). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
