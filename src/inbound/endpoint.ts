/**
 * The HTTP face of the iSchedule receiver: `/.well-known/ischedule` (and `--path`) for GET
 * ?action=capabilities, OPTIONS and POST, and `/.well-known/domainkey/<domain>/<selector>` for
 * isched's own key records (draft §7.3.2). Every answer carries iSchedule-Version and
 * iSchedule-Capabilities (draft §8.2, §8.3); every client mistake is an iSchedule <error> with a
 * description and its 4xx status, never a 500.
 */

import { DEFAULT_BODY_TIMEOUT_MS } from "../http/read-body.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import { errorXml } from "../ischedule/xml-writer.ts";
import type { Logger } from "../log/logger.ts";
import type { IschedMetrics, RequestOutcome } from "../metrics/isched-metrics.ts";
import { storageFailure } from "../store/errors.ts";
import { type EndpointAnswer, refusal } from "./answers.ts";
import { TRY_AGAIN_SECONDS } from "./authenticate.ts";
import type { PublishedCapabilities } from "./capabilities.ts";
import { checkHeaders } from "./header-checks.ts";
import { reserveKeyLookup } from "./key-admission.ts";
import { BodyReadError, BodyTimeoutError, readCappedBody } from "./read-body.ts";
import { type ReceiverContext, receive } from "./receive.ts";

export interface EndpointOptions {
  receiver: ReceiverContext;
  capabilities: () => PublishedCapabilities;
  keyRecord: (domain: string, selector: string) => string | undefined;
  log: Logger;
  bodyTimeoutMs?: number;
  /** Counts each POST by outcome and error element, and the DKIM verdicts (receive.ts). */
  metrics?: Pick<IschedMetrics, "requests">;
}

const XML = "application/xml; charset=utf-8";
const ALLOW = "GET, HEAD, POST, OPTIONS";

export interface Endpoint {
  scheduling(request: Request, remoteAddress: string): Promise<Response>;
  /** `/.well-known/domainkey/<domain>/<selector>`, both still percent-encoded as in the path. */
  domainKey(encodedDomain: string, encodedSelector: string): Response;
}

/** Plain-text answers (404s among them) are never to be sniffed into HTML by a browser. */
export const TEXT_HEADERS = {
  "Content-Type": "text/plain; charset=utf-8",
  "X-Content-Type-Options": "nosniff",
} as const;

/** A path segment decoded, or undefined when its percent-escapes are not valid UTF-8. */
function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function createEndpoint(o: EndpointOptions): Endpoint {
  const common = (): Record<string, string> => ({
    "iSchedule-Version": "1.0",
    "iSchedule-Capabilities": String(o.capabilities().serial),
  });
  const xmlAnswer = (status: number, xml: string, extra: Record<string, string> = {}): Response =>
    new Response(xml, {
      status,
      headers: { ...common(), "Content-Type": XML, "Cache-Control": "no-cache, no-transform", ...extra },
    });

  async function post(request: Request, remoteAddress: string): Promise<Response> {
    const started = performance.now();
    const caps = o.capabilities().capabilities;
    let answer: EndpointAnswer;
    try {
      const headers = checkHeaders(request.headers, caps);
      const fields = [...request.headers.entries()];
      const declared = request.headers.get("content-length");
      const reservation = reserveKeyLookup(
        {
          headers,
          fields,
          remoteAddress,
          declaredBytes: declared !== null && /^\d+$/.test(declared) ? Number(declared) : undefined,
        },
        o.receiver,
      );
      if (!reservation.ok) answer = reservation.answer;
      else {
        try {
          const body = await readCappedBody(request, {
            maxBytes: caps.maxContentLength ?? Number.MAX_SAFE_INTEGER,
            timeoutMs: o.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
          });
          answer = await receive(
            { headers, fields, body, remoteAddress, keys: reservation.keys },
            o.receiver,
          );
        } finally {
          reservation.release();
        }
      }
    } catch (e) {
      if (e instanceof IScheduleError) answer = refusal(e);
      else if (e instanceof BodyTimeoutError)
        answer = {
          status: 408,
          xml: errorXml("invalid-calendar-data", `The request body was not received in time (${e.message}).`),
          element: "invalid-calendar-data",
        };
      else if (e instanceof BodyReadError)
        answer = {
          status: 400,
          xml: errorXml("invalid-calendar-data", `The request body is incomplete: ${e.message}.`),
          element: "invalid-calendar-data",
        };
      else if (storageFailure(e) !== undefined) {
        // The database cannot be written (a full disk): nothing was stored, and the sender's retry will
        // be taken once there is room. The peer is told no more than that; the log has the cause. The draft has no element for a receiver's own trouble; 503 and
        // Retry-After are what senders act on (read-answer.ts, CalendarServer: any non-200 is 5.1).
        o.log.log("error", "inbound request not stored: the database cannot be written", {
          from: remoteAddress,
          error: storageFailure(e),
        });
        answer = {
          status: 503,
          xml: errorXml(
            "invalid-scheduling-message",
            "The server cannot store messages at the moment (a storage failure on its side); try again later.",
          ),
          headers: { "Retry-After": String(TRY_AGAIN_SECONDS) },
        };
      } else {
        o.log.log("error", "inbound request failed", {
          from: remoteAddress,
          error: (e as Error)?.message ?? String(e),
        });
        answer = {
          status: 500,
          xml: errorXml(
            "invalid-scheduling-message",
            "The server could not process the request; try again later.",
          ),
        };
      }
    }
    o.log.log("info", "ischedule POST", {
      from: remoteAddress,
      status: answer.status,
      originator: request.headers.get("originator"),
      message: answer.messageUuid,
      ms: Math.round(performance.now() - started),
    });
    const outcome = requestOutcome(answer);
    o.metrics?.requests.inc({
      intake: "ischedule",
      outcome,
      error: outcome === "accepted" || outcome === "replayed" ? "none" : (answer.element ?? "other"),
    });
    return xmlAnswer(answer.status, answer.xml, answer.headers);
  }

  function get(request: Request, head: boolean): Response {
    // Bun gives a bare path as request.url when the Host header is empty or not a host: no 500 for that.
    const url = new URL(request.url, "http://host.invalid");
    const action = url.searchParams.get("action") ?? url.searchParams.get("query");
    if (action !== "capabilities") {
      return new Response("Use GET ?action=capabilities, or POST a scheduling message.\n", {
        status: 400,
        headers: { ...common(), ...TEXT_HEADERS },
      });
    }
    const published = o.capabilities();
    const headers = {
      ...common(),
      "Content-Type": XML,
      ETag: published.etag,
      "Cache-Control": "max-age=3600",
    };
    const match = request.headers.get("if-none-match");
    if (match?.split(",").some((t) => t.trim() === published.etag || t.trim() === "*")) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(head ? null : published.xml, { status: 200, headers });
  }

  return {
    async scheduling(request, remoteAddress) {
      switch (request.method) {
        case "POST":
          return post(request, remoteAddress);
        case "GET":
          return get(request, false);
        case "HEAD":
          return get(request, true);
        case "OPTIONS":
          return new Response(null, { status: 200, headers: { ...common(), Allow: ALLOW } });
        default:
          return new Response(`${request.method} is not allowed here.\n`, {
            status: 405,
            headers: { ...common(), Allow: ALLOW, ...TEXT_HEADERS },
          });
      }
    },
    domainKey(encodedDomain, encodedSelector) {
      const domain = decodeSegment(encodedDomain);
      const selector = decodeSegment(encodedSelector);
      if (domain === undefined || selector === undefined) {
        return new Response("The key path has a percent-escape that is not UTF-8.\n", {
          status: 400,
          headers: TEXT_HEADERS,
        });
      }
      const record = o.keyRecord(domain, selector);
      if (!record) {
        return new Response(`No key for ${selector} of ${domain}.\n`, { status: 404, headers: TEXT_HEADERS });
      }
      return new Response(`${record}\r\n`, {
        status: 200,
        headers: { "Content-Type": "text/plain; charset=us-ascii", "Cache-Control": "max-age=3600" },
      });
    },
  };
}

/** What became of a POST, as the metrics count it (metrics/isched-metrics.ts RequestOutcome). */
function requestOutcome(a: EndpointAnswer): RequestOutcome {
  if (a.status === 200) return a.headers?.["iSchedule-Replay"] === "true" ? "replayed" : "accepted";
  if (a.status === 503) return "unavailable";
  if (a.status >= 500) return "failed";
  return "refused";
}
