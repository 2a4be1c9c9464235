/**
 * Endpoint cases about HTTP itself: bodies over the 1 MB cap or slower than the 30 s body deadline
 * (slow cases, run alongside the others), broken framing, other methods and request targets on
 * /.well-known/ischedule, and the key paths under /.well-known/domainkey.
 */
import { DEFAULT_LIMITS } from "../../../src/inbound/limits.ts";
import { type RawField, rawExchange, requestBytes } from "../../support/raw-http.ts";
import type { Case } from "./_cases.ts";
import {
  BARE_400,
  BOTH_DELIVERED,
  CAPABILITIES,
  DROPPED,
  ENDPOINT_PATH,
  type EndpointTarget,
  type Expected,
  endpointCase,
  httpLayer,
  invitation,
  refused,
  send,
  VF,
  validFields,
} from "./_endpoint-request.ts";

const CAP = DEFAULT_LIMITS.maxContentLength;
/** The endpoint's body deadline (src/inbound/endpoint.ts). */
export const BODY_DEADLINE_MS = 30_000;
const TIMED_OUT = refused(408, "invalid-calendar-data", /not received in time/);

/** Fields of a valid request whose Content-Length (or Transfer-Encoding) is replaced. */
function headOnly(framing: RawField, body = invitation()): RawField[] {
  return [...validFields({ body }).filter(([n]) => n !== "Content-Length"), framing];
}
const chunkOf = (bytes: Uint8Array) =>
  Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from("\r\n")]);
const fieldsRequest = (fields: RawField[], body?: Uint8Array, o: { method?: string; path?: string } = {}) =>
  requestBytes({ method: o.method, path: o.path ?? ENDPOINT_PATH, fields, body, contentLength: false });

/** Writes the body one byte at a time, `gapMs` apart, until the server answers. */
function trickle(body: Uint8Array, gapMs: number, chunked: boolean) {
  return async (write: (b: Uint8Array) => Promise<void>, answered: () => boolean) => {
    for (let i = 0; i < body.length && !answered(); i++) {
      const byte = body.subarray(i, i + 1);
      await write(chunked ? chunkOf(byte) : byte);
      await Bun.sleep(gapMs);
    }
  };
}

/** A plain-text answer from the iSchedule path (with its iSchedule headers), or from elsewhere. */
const TEXT = (status: number, body?: RegExp): Expected => ({ text: status, body, ischedule: true });
const OTHER = (status: number, body?: RegExp): Expected => ({ text: status, body });

export function httpCases(target: () => EndpointTarget): Case[] {
  const cases: Case[] = [];
  const add = (
    name: string,
    expected: Expected,
    run: (t: EndpointTarget) => ReturnType<typeof send>,
    o: { slow?: boolean } = {},
  ) => cases.push(endpointCase(target, name, expected, run, o));
  const slow = { slow: true };
  // The slow cases get an answer after the deadline; give them more than that.
  const late = BODY_DEADLINE_MS + 10_000;

  add(
    `a ${CAP + 1}-byte body (1 MB cap) sent whole with its Content-Length`,
    refused(413, "max-content-length"),
    (t) => {
      const body = Buffer.alloc(CAP + 1, "a");
      return rawExchange({
        port: t.port,
        request: fieldsRequest(headOnly(["Content-Length", String(body.length)]), body),
      });
    },
  );
  add("a Content-Length over the cap, the body never sent", refused(413, "max-content-length"), (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Content-Length", String(CAP + 1)])),
      timeoutMs: 3000,
    }),
  );
  add("a chunked body growing past the cap, never finished", refused(413, "max-content-length"), (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Transfer-Encoding", "chunked"])),
      async stream(write, answered) {
        const chunk = chunkOf(Buffer.alloc(16 * 1024, "a"));
        for (let i = 0; i < (2 * CAP) / (16 * 1024) && !answered(); i++) await write(chunk);
      },
    }),
  );
  add("a Content-Length of 10 GB", refused(413, "max-content-length", /\(10000000000 bytes\)/), (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Content-Length", "10000000000"])),
      timeoutMs: 3000,
    }),
  );
  add("a Content-Length of 30 digits", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Content-Length", "9".repeat(30)])),
      timeoutMs: 3000,
    }),
  );
  add("a Content-Length of -1", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Content-Length", "-1"])),
      timeoutMs: 3000,
    }),
  );
  add("a Content-Length in hexadecimal", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: fieldsRequest(headOnly(["Content-Length", "0x200"])),
      timeoutMs: 3000,
    }),
  );
  add(
    "a Content-Length smaller than the body (the rest is not signed data)",
    VF(/body hash does not match/),
    (t) => {
      const body = Buffer.from(invitation());
      return rawExchange({
        port: t.port,
        request: fieldsRequest(headOnly(["Content-Length", String(body.length - 20)], body.toString()), body),
      });
    },
  );
  add("a chunked body in 1-byte chunks, sent at once", BOTH_DELIVERED, (t) => {
    const body = Buffer.from(invitation());
    const chunks = Buffer.concat([...body].map((b) => chunkOf(Buffer.from([b]))));
    return rawExchange({
      port: t.port,
      request: Buffer.concat([
        fieldsRequest(headOnly(["Transfer-Encoding", "chunked"], body.toString())),
        chunks,
        Buffer.from("0\r\n\r\n"),
      ]),
    });
  });
  add("a chunked body with a chunk extension (RFC 9112 §7.1.1: ignored)", BOTH_DELIVERED, (t) => {
    const body = Buffer.from(invitation());
    return rawExchange({
      port: t.port,
      request: Buffer.concat([
        fieldsRequest(headOnly(["Transfer-Encoding", "chunked"], body.toString())),
        Buffer.from(`${body.length.toString(16)};ext=1\r\n`),
        body,
        Buffer.from("\r\n0\r\n\r\n"),
      ]),
    });
  });
  // RFC 9112 §7.1.2 allows a trailer section; Bun's parser refuses one in a request.
  add("a chunked body with a trailer field", BARE_400, (t) => {
    const body = Buffer.from(invitation());
    return rawExchange({
      port: t.port,
      request: Buffer.concat([
        fieldsRequest(headOnly(["Transfer-Encoding", "chunked"], body.toString())),
        Buffer.from(`${body.length.toString(16)}\r\n`),
        body,
        Buffer.from("\r\n0\r\nX-Trailer: 1\r\n\r\n"),
      ]),
    });
  });
  for (const method of ["FOO", "get", "X-ISCHEDULE"]) {
    add(`an unknown method ${method}`, DROPPED, (t) => {
      const body = invitation();
      return send(t, validFields({ body }), body, { method });
    });
  }
  add("an invalid chunk size", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.concat([
        fieldsRequest(headOnly(["Transfer-Encoding", "chunked"])),
        Buffer.from("zz\r\nabc\r\n0\r\n\r\n"),
      ]),
    }),
  );
  add("a chunk size of 20 hex digits", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.concat([
        fieldsRequest(headOnly(["Transfer-Encoding", "chunked"])),
        Buffer.from(`${"f".repeat(20)}\r\nabc\r\n0\r\n\r\n`),
      ]),
    }),
  );

  // Slow: each waits for the body deadline, so they run alongside the other cases.
  add(
    "a Content-Length larger than the body, which then stalls",
    TIMED_OUT,
    (t) => {
      const body = Buffer.from(invitation());
      return rawExchange({
        port: t.port,
        request: fieldsRequest(
          headOnly(["Content-Length", String(body.length + 100)], body.toString()),
          body,
        ),
        timeoutMs: late,
      });
    },
    slow,
  );
  add(
    "the head sent and no body at all",
    TIMED_OUT,
    (t) => {
      const body = invitation();
      return rawExchange({ port: t.port, request: fieldsRequest(validFields({ body })), timeoutMs: late });
    },
    slow,
  );
  add(
    `a body trickled byte by byte, slower than the ${BODY_DEADLINE_MS / 1000} s body deadline`,
    TIMED_OUT,
    (t) => {
      const body = invitation();
      return rawExchange({
        port: t.port,
        request: fieldsRequest(validFields({ body })),
        stream: trickle(Buffer.from(body), 100, false),
        timeoutMs: late,
      });
    },
    slow,
  );
  add(
    `a chunked body of one-byte chunks, slower than the ${BODY_DEADLINE_MS / 1000} s body deadline`,
    TIMED_OUT,
    (t) => {
      const body = invitation();
      return rawExchange({
        port: t.port,
        request: fieldsRequest(headOnly(["Transfer-Encoding", "chunked"], body)),
        stream: trickle(Buffer.from(body), 100, true),
        timeoutMs: late,
      });
    },
    slow,
  );

  // Other methods and request targets.
  for (const method of ["PUT", "DELETE", "PATCH", "PROPFIND", "REPORT", "MKCALENDAR", "TRACE"]) {
    add(`${method} ${ENDPOINT_PATH}`, TEXT(405, new RegExp(`${method} is not allowed`)), (t) => {
      const body = invitation();
      return send(t, validFields({ body }), body, { method });
    });
  }
  add("CONNECT to the endpoint's host", OTHER(404), (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from("CONNECT isched.org.test:443 HTTP/1.1\r\nHost: isched.org.test:443\r\n\r\n"),
    }),
  );
  add("a method name of 200 letters", DROPPED, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from(`${"A".repeat(200)} ${ENDPOINT_PATH} HTTP/1.1\r\nHost: x\r\n\r\n`),
    }),
  );
  // RFC 9110 §15.6.6: 505 is the answer to a major version the server does not speak (Bun's own).
  add("HTTP/2.0 in the request line", PROTOCOL_505, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from(`GET ${ENDPOINT_PATH}?action=capabilities HTTP/2.0\r\nHost: x\r\n\r\n`),
    }),
  );
  // HTTP/1.0 needs no Host (RFC 9112 §3.2).
  add("HTTP/1.0 without Host", CAPABILITIES, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from(`GET ${ENDPOINT_PATH}?action=capabilities HTTP/1.0\r\n\r\n`),
    }),
  );
  add("a request line with two spaces", BARE_400, (t) =>
    rawExchange({ port: t.port, request: Buffer.from(`GET  ${ENDPOINT_PATH} HTTP/1.1\r\nHost: x\r\n\r\n`) }),
  );
  add("a request line that is garbage", BARE_400, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n"),
    }),
  );
  add("a request target of 64 KB", httpLayer(431), (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from(`GET /${"a".repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`),
    }),
  );
  add("an absolute-form request target (RFC 9112 §3.2.2)", CAPABILITIES, (t) =>
    rawExchange({
      port: t.port,
      request: Buffer.from(
        `GET http://isched.org.test${ENDPOINT_PATH}?action=capabilities HTTP/1.1\r\nHost: isched.org.test\r\n\r\n`,
      ),
    }),
  );
  const queries: [string, string, Expected][] = [
    ["no query", "", TEXT(400, /action=capabilities/)],
    ["action=bogus", "?action=bogus", TEXT(400, /action=capabilities/)],
    ["action= empty", "?action=", TEXT(400)],
    ["action=CAPABILITIES in upper case", "?action=CAPABILITIES", TEXT(400)],
    ["action given twice", "?action=bogus&action=capabilities", TEXT(400)],
    ["a 4 KB query", `?action=capabilities&x=${"q".repeat(4096)}`, CAPABILITIES],
    ["a percent-escape that is not UTF-8", "?action=%ff", TEXT(400)],
    ["a bare percent sign", "?action=capabilities%", TEXT(400)],
  ];
  for (const [what, query, expected] of queries) {
    add(`GET ${ENDPOINT_PATH} with ${what}`, expected, (t) =>
      rawExchange({
        port: t.port,
        request: Buffer.from(`GET ${ENDPOINT_PATH}${query} HTTP/1.1\r\nHost: x\r\n\r\n`),
      }),
    );
  }
  add("a POST with a query string (ignored)", BOTH_DELIVERED, (t) => {
    const body = invitation();
    return send(t, validFields({ body }), body, { path: `${ENDPOINT_PATH}?action=capabilities` });
  });
  const paths: [string, Expected][] = [
    ["/.well-known/ischedule/", OTHER(404)],
    ["/.well-known/ISCHEDULE", OTHER(404)],
    ["/.well-known/ischedule/../ischedule", TEXT(400, /action=capabilities/)],
    ["/.well-known/%69schedule", OTHER(404)],
    ["//.well-known/ischedule", OTHER(404)],
    ["/.well-known/domainkey/peer.test/s1", OTHER(404, /No key/)],
    ["/.well-known/domainkey/org.test/nosuch", OTHER(404, /No key/)],
    ["/.well-known/domainkey/%ff/s1", OTHER(400, /not UTF-8/)],
    ["/.well-known/domainkey/org.test", OTHER(404)],
    ["/.well-known/domainkey/org.test/a/b", OTHER(404)],
    [`/.well-known/domainkey/${"d".repeat(3000)}/s1`, OTHER(404)],
    ["/.well-known/domainkey/..%2F..%2Fetc/passwd", OTHER(404)],
    ["/", OTHER(404)],
    ["*", BARE_400],
  ];
  for (const [path, expected] of paths) {
    add(`GET ${path.length > 60 ? `${path.slice(0, 60)}...` : path}`, expected, (t) =>
      rawExchange({ port: t.port, request: Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`) }),
    );
  }
  return cases;
}

/** Bun's 505 for an HTTP version it does not speak: the protocol's own answer, not a failure. */
const PROTOCOL_505: Expected = { http: 505 };
