/**
 * The fake peer's answers to isched's scheduling POSTs besides XML (_peer-xml-answers.ts), each with
 * the delivery state it must lead to: HTTP statuses and Retry-After, redirects (followed by hand, at
 * most 3 hops, never to http:), broken HTTP, and (slow) silence.
 */
import {
  type Answer,
  answering,
  DELIVERED,
  errorXml,
  failed,
  item,
  ok,
  type PeerOutcome,
  recipientOf,
  responseXml,
  retried,
  statusOnly,
  UNREADABLE,
  XML,
} from "./_peer-delivery.ts";
import { XML_ANSWERS } from "./_peer-xml-answers.ts";

const HTTP_ANSWERS: [string, Answer, PeerOutcome][] = [
  // HTTP statuses.
  [
    "400 with an iSchedule error",
    () => ({ status: 400, headers: [XML], body: errorXml("invalid-calendar-data", "Bad DTSTART") }),
    failed(/HTTP 400, invalid-calendar-data: Bad DTSTART/),
  ],
  [
    "403 verification-failed",
    () => ({ status: 403, headers: [XML], body: errorXml("verification-failed", "no key") }),
    failed(/could not verify isched's DKIM signature/),
  ],
  [
    "403 with a 500 KB description",
    () => ({ status: 403, headers: [XML], body: errorXml("verification-failed", "v".repeat(500 * 1024)) }),
    failed(/could not verify/),
  ],
  ["404 with no body", statusOnly(404), failed(/HTTP 404/)],
  ["405", statusOnly(405, [["Allow", "GET"]]), failed(/HTTP 405/)],
  ["408", statusOnly(408), retried(/HTTP 408/)],
  ["413", statusOnly(413), failed(/HTTP 413/)],
  ["415", statusOnly(415), failed(/HTTP 415/)],
  ["425 Too Early", statusOnly(425), retried(/HTTP 425/)],
  ["429 with Retry-After: 120", statusOnly(429, [["Retry-After", "120"]]), retried(/HTTP 429/)],
  ["429 with Retry-After: soon", statusOnly(429, [["Retry-After", "soon"]]), retried(/HTTP 429/)],
  [
    "429 with Retry-After of 30 digits",
    statusOnly(429, [["Retry-After", "9".repeat(30)]]),
    retried(/HTTP 429/),
  ],
  [
    "429 with a Retry-After date in the past",
    statusOnly(429, [["Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"]]),
    retried(/HTTP 429/),
  ],
  [
    "500 with an HTML page",
    statusOnly(500, [["Content-Type", "text/html"]], "<h1>Internal Server Error</h1>"),
    retried(/HTTP 500/),
  ],
  ["501", statusOnly(501), failed(/HTTP 501/)],
  ["502", statusOnly(502), retried(/HTTP 502/)],
  ["503 with Retry-After: -1", statusOnly(503, [["Retry-After", "-1"]]), retried(/HTTP 503/)],
  [
    "503 with an iSchedule error",
    () => ({ status: 503, headers: [XML], body: errorXml("verification-failed", "busy") }),
    retried(/HTTP 503 \(verification-failed: busy\)/),
  ],
  ["504", statusOnly(504), retried(/HTTP 504/)],
  ["599", statusOnly(599), retried(/HTTP 599/)],
  ["204 No Content", statusOnly(204), UNREADABLE(/./)],
  [
    "299 with a schedule-response",
    (r) => ({ status: 299, headers: [XML], body: responseXml(item(recipientOf(r), "2.0;Success")) }),
    DELIVERED,
  ],
  ["300 Multiple Choices", statusOnly(300), failed(/HTTP 300/)],
  ["418", statusOnly(418), failed(/HTTP 418/)],
  // Redirects (draft §4.4: followed by hand, at most 3 hops, never to http:).
  // isched then posts to the new path for good (RFC 9110 §15.4.2), every case after this one too.
  [
    "301 to another path of the peer",
    (r, port) =>
      r.target.startsWith("/moved/")
        ? answering("2.0;Success")(r, port)
        : { status: 301, headers: [["Location", `https://127.0.0.1:${port}/moved/ischedule`]] },
    DELIVERED,
  ],
  [
    "307 to itself (a loop)",
    (_r, port) => ({ status: 307, headers: [["Location", `https://127.0.0.1:${port}/ischedule`]] }),
    failed(/loop|again|visited/i, /./),
  ],
  [
    "307 to http: (a downgrade)",
    (_r, port) => ({ status: 307, headers: [["Location", `http://127.0.0.1:${port}/ischedule`]] }),
    failed(/http/, /./),
  ],
  ["308 without Location", statusOnly(308), failed(/Location/, /./)],
  ["302 to a Location that is not a URL", statusOnly(302, [["Location", "http://[::1"]]), failed(/./, /./)],
  ["302 to file:///etc/passwd", statusOnly(302, [["Location", "file:///etc/passwd"]]), failed(/./, /./)],
  [
    "a chain of 4 redirects (at most 3)",
    (r, port) => {
      const hop = Number(/\/hop(\d)/.exec(r.target)?.[1] ?? "0");
      return { status: 307, headers: [["Location", `https://127.0.0.1:${port}/hop${hop + 1}/ischedule`]] };
    },
    failed(/redirect/i, /./),
  ],
  // Broken HTTP.
  ["a reply that is not HTTP", () => ({ raw: "hello there\r\n\r\n" }), retried(/./)],
  ["a status line of HTTP/2", () => ({ raw: "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n" }), retried(/./)],
  [
    "a four-digit status",
    () => ({ raw: "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" }),
    retried(/./),
  ],
  [
    "a header line without a colon",
    (r) => ({
      raw: `HTTP/1.1 200 OK\r\nthis is not a header\r\nContent-Length: 0\r\nConnection: close\r\n\r\n${recipientOf(r).slice(0, 0)}`,
    }),
    retried(/./),
  ],
  [
    "a Content-Length longer than the body, then close",
    () => ({ raw: "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n<schedule-response" }),
    retried(/./),
  ],
  [
    "a Content-Length shorter than the body",
    (r) => ({
      raw: `HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n${responseXml(item(recipientOf(r), "2.0;Success"))}`,
    }),
    UNREADABLE(/./),
  ],
  [
    "a bad chunk size",
    () => ({
      raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    }),
    retried(/./),
  ],
  [
    "chunks that never end",
    () => ({
      raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      endless: Buffer.from(`4000\r\n${"a".repeat(0x4000)}\r\n`),
    }),
    retried(/exceeds 1048576 bytes/),
  ],
  [
    "a body that never ends (no length)",
    () => ({ raw: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", endless: Buffer.alloc(16 * 1024, 0x61) }),
    retried(/exceeds 1048576 bytes/),
  ],
  [
    "an HTTP/1.0 answer ended by closing",
    (r) => ({
      raw: `HTTP/1.0 200 OK\r\nContent-Type: application/xml\r\n\r\n${responseXml(item(recipientOf(r), "2.0;Success"))}`,
    }),
    DELIVERED,
  ],
  [
    "a 64 KB header field",
    (r) => ({
      raw: `HTTP/1.1 200 OK\r\nX-Big: ${"b".repeat(64 * 1024)}\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n${responseXml(item(recipientOf(r), "2.0;Success"))}`,
    }),
    { state: "delivered" },
  ],
  // Bun's fetch refuses a head of that many fields: retried, with its reason.
  [
    "1,000 header fields",
    (r) => ({
      raw: `HTTP/1.1 200 OK\r\n${Array.from({ length: 1000 }, (_, i) => `X-H${i}: v\r\n`).join("")}Content-Type: application/xml\r\nConnection: close\r\n\r\n${responseXml(item(recipientOf(r), "2.0;Success"))}`,
    }),
    retried(/Malformed_HTTP_Response/),
  ],
  [
    "an iSchedule-Capabilities serial of 10 KB",
    (r) =>
      ok(responseXml(item(recipientOf(r), "2.0;Success")), [["iSchedule-Capabilities", "9".repeat(10_240)]]),
    DELIVERED,
  ],
  ["the connection reset at once", () => ({ reset: true }), retried(/./)],
];

/** POST answers, by case: the index is the N of the case's recipient `mailto:pN-…`. */
export const POST_CASES: [string, Answer, PeerOutcome][] = [...XML_ANSWERS, ...HTTP_ANSWERS];

/** Slow: each waits for one of peerFetch's deadlines (10 s for the head, 15 s in all). */
export const SLOW_POST_CASES: [string, Answer, PeerOutcome][] = [
  ["no answer at all", () => ({ silent: true }), retried(/within|time/)],
  [
    "the head, then silence",
    () => ({ raw: "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n<schedule", hang: true }),
    retried(/within|time/),
  ],
  [
    "a body dripping one byte every 100 ms",
    () => ({ raw: "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n", dripMs: 100 }),
    retried(/within|time/),
  ],
];
