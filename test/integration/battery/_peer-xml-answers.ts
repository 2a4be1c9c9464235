/**
 * The fake peer's XML answers to isched's scheduling POSTs, one per case, each with the delivery
 * state it must lead to: well-formed answers and the variants real receivers send, wrong namespaces
 * and roots, hostile XML (entities, XXE, deep nesting, huge documents, bad characters, encodings).
 */
import { ISCHEDULE_NS } from "../../../src/ischedule/namespaces.ts";
import {
  type Answer,
  answering,
  DELIVERED,
  delivered,
  errorXml,
  failed,
  item,
  nest,
  ok,
  type PeerOutcome,
  recipientOf,
  responseXml,
  retried,
  UNREADABLE,
  XML,
} from "./_peer-delivery.ts";

export const XML_ANSWERS: [string, Answer, PeerOutcome][] = [
  // Well-formed, as the draft has them, and the variants real receivers send.
  ["a schedule-response with 2.0;Success (the control)", answering("2.0;Success"), DELIVERED],
  ["2.0 without a description", answering("2.0"), DELIVERED],
  ["1.2;Delivered (a scheduling message delivered)", answering("1.2;Delivered"), delivered(/^1\.2/)],
  [
    "2.8;Success, repeating event ignored",
    answering("2.8;Success, repeating event ignored"),
    delivered(/^2\.8/),
  ],
  ["1.0;Pending", answering("1.0;Pending"), { state: "queued", status: /^1\.0/ }],
  [
    "5.1;Service unavailable",
    answering("5.1;Service unavailable"),
    { state: "queued", status: /^5\.1;Service unavailable$/ },
  ],
  [
    "5.3;No scheduling support for user",
    answering("5.3;No scheduling support for user"),
    { state: "failed", status: /^5\.3/ },
  ],
  ["3.7;Invalid calendar user", answering("3.7;Invalid calendar user"), { state: "failed", status: /^3\.7/ }],
  ["3.8;No authority", answering("3.8;No authority"), { state: "failed", status: /^3\.8/ }],
  ["request-status banana", answering("banana"), { state: "queued", status: /banana/ }],
  ["request-status 9.9;Weird", answering("9.9;Weird"), { state: "queued", status: /9\.9/ }],
  ["request-status 2.0 with a 4 KB description", answering(`2.0;${"d".repeat(4096)}`), DELIVERED],
  [
    "request-status of 100 KB",
    answering(`5.3;${"e".repeat(100 * 1024)}`),
    { state: "failed", status: /^5\.3/ },
  ],
  ["request-status in CDATA", answering("<![CDATA[2.0;Success]]>"), DELIVERED],
  ["request-status with comments around it", answering("<!-- a -->2.0;Success<!-- b -->"), DELIVERED],
  ["request-status with control characters (&#1;)", answering("2.0;&#1;"), UNREADABLE(/&#1;|character/)],
  ["an empty request-status", answering(""), UNREADABLE(/empty <request-status>/)],
  [
    "no request-status",
    (r) => ok(responseXml(`<response><recipient>${recipientOf(r)}</recipient></response>`)),
    UNREADABLE(/no <request-status>/),
  ],
  [
    "no recipient",
    () => ok(responseXml("<response><request-status>2.0;Success</request-status></response>")),
    UNREADABLE(/no <recipient>/),
  ],
  ["an empty recipient", () => ok(responseXml(item("", "2.0;Success"))), UNREADABLE(/empty <recipient>/)],
  [
    "the answer for another recipient",
    () => ok(responseXml(item("mailto:someone@fake.test", "2.0;Success"))),
    retried(/did not answer for/),
  ],
  ["no response at all", () => ok(responseXml("")), retried(/did not answer for/)],
  [
    "the recipient in upper case",
    (r) => ok(responseXml(item(recipientOf(r).toUpperCase(), "2.0;Success"))),
    DELIVERED,
  ],
  [
    "the recipient as a CalDAV href",
    (r) =>
      ok(
        responseXml(
          `<response><recipient><D:href xmlns:D="DAV:">${recipientOf(r)}</D:href></recipient><request-status>2.0;Success</request-status></response>`,
        ),
      ),
    DELIVERED,
  ],
  [
    "two answers for the recipient (2.0 then 5.3)",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success") + item(recipientOf(r), "5.3;No"))),
    { state: "failed", status: /^5\.3/ },
  ],
  [
    "1,000 answers for strangers, then ours",
    (r) =>
      ok(
        responseXml(
          Array.from({ length: 1000 }, (_, i) => item(`mailto:s${i}@fake.test`, "3.7;No")).join("") +
            item(recipientOf(r), "2.0;Success"),
        ),
      ),
    DELIVERED,
  ],
  [
    "an error element inside the response",
    answering("5.3;No", "<error><no-scheduling-support/></error>"),
    { state: "failed", status: /^5\.3/, reason: /no-scheduling-support/ },
  ],
  [
    "a 500 KB response-description",
    answering("2.0;Success", `<response-description>${"r".repeat(500 * 1024)}</response-description>`),
    DELIVERED,
  ],
  [
    "calendar-data of 200 KB",
    answering("2.0;Success", `<calendar-data>${"c".repeat(200 * 1024)}</calendar-data>`),
    DELIVERED,
  ],
  // Namespaces and roots.
  [
    "the CalDAV namespace (pre-2012 CalendarServer)",
    (r) =>
      ok(
        responseXml(
          item(recipientOf(r), "2.0;Success"),
          `<schedule-response xmlns="urn:ietf:params:xml:ns:caldav">`,
        ),
      ),
    DELIVERED,
  ],
  [
    "a prefix bound to the iSchedule namespace",
    (r) =>
      ok(
        responseXml(
          `<i:response><i:recipient>${recipientOf(r)}</i:recipient><i:request-status>2.0;Success</i:request-status></i:response>`,
          `<i:schedule-response xmlns:i="${ISCHEDULE_NS}">`,
          "</i:schedule-response>",
        ),
      ),
    DELIVERED,
  ],
  [
    "a wrong namespace",
    (r) =>
      ok(responseXml(item(recipientOf(r), "2.0;Success"), `<schedule-response xmlns="urn:example:other">`)),
    UNREADABLE(/Not an iSchedule response/),
  ],
  [
    "no namespace",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success"), "<schedule-response>")),
    UNREADABLE(/Not an iSchedule response/),
  ],
  [
    "an undeclared prefix",
    (r) =>
      ok(
        responseXml(item(recipientOf(r), "2.0;Success"), "<is:schedule-response>", "</is:schedule-response>"),
      ),
    UNREADABLE(/prefix|namespace/i),
  ],
  [
    "a root of another name",
    () => ok(`<?xml version="1.0"?><multistatus xmlns="DAV:"/>`),
    UNREADABLE(/Not an iSchedule response/),
  ],
  [
    "an iSchedule error with HTTP 200",
    () => ok(errorXml("invalid-calendar-data", "no")),
    failed(/refused the request \(HTTP 200, invalid-calendar-data: no\)/),
  ],
  [
    "a DAV:error with HTTP 200",
    () => ok(`<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:need-privileges/></D:error>`),
    failed(/need-privileges/),
  ],
  // Hostile XML.
  [
    "a DOCTYPE with the billion laughs",
    (r) =>
      ok(
        `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>${responseXml(item(recipientOf(r), "&lol2;")).replace(/^<\?xml[^>]*\?>/, "")}`,
      ),
    UNREADABLE(/DOCTYPE declarations are not allowed/),
  ],
  [
    "an external entity (XXE) naming /etc/passwd",
    (r) =>
      ok(
        `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${responseXml(item(recipientOf(r), "&xxe;")).replace(/^<\?xml[^>]*\?>/, "")}`,
      ),
    UNREADABLE(/DOCTYPE declarations are not allowed/),
  ],
  [
    "an undefined entity",
    (r) => ok(responseXml(item(recipientOf(r), "&nbsp;2.0"))),
    UNREADABLE(/Undefined entity &nbsp;/),
  ],
  [
    "a character reference to U+0000",
    (r) => ok(responseXml(item(recipientOf(r), "2.0&#0;"))),
    UNREADABLE(/./),
  ],
  [
    "a character reference to a surrogate (&#xD800;)",
    (r) => ok(responseXml(item(recipientOf(r), "2.0&#xD800;"))),
    UNREADABLE(/./),
  ],
  [
    "a character reference past U+10FFFF",
    (r) => ok(responseXml(item(recipientOf(r), "2.0&#x110000;"))),
    UNREADABLE(/./),
  ],
  [
    "elements nested 10,000 deep",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success", nest(10_000, "")))),
    UNREADABLE(/deep|depth|nest/i),
  ],
  [
    "elements nested 25 deep inside a response",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success", nest(25, "")))),
    DELIVERED,
  ],
  [
    "100,000 empty elements",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success", "<z/>".repeat(100_000)))),
    DELIVERED,
  ],
  [
    "an element with 20,000 attributes",
    (r) =>
      ok(
        responseXml(
          item(recipientOf(r), "2.0;Success"),
          `<schedule-response xmlns="${ISCHEDULE_NS}" ${Array.from({ length: 20_000 }, (_, i) => `a${i}="v"`).join(" ")}>`,
        ),
      ),
    DELIVERED,
  ],
  [
    "a duplicate attribute",
    (r) =>
      ok(
        responseXml(
          item(recipientOf(r), "2.0;Success"),
          `<schedule-response xmlns="${ISCHEDULE_NS}" a="1" a="2">`,
        ),
      ),
    UNREADABLE(/./),
  ],
  [
    "an attribute without quotes",
    (r) =>
      ok(responseXml(item(recipientOf(r), "2.0;Success"), `<schedule-response xmlns="${ISCHEDULE_NS}" a=1>`)),
    UNREADABLE(/./),
  ],
  [
    "mismatched tags",
    (r) => ok(responseXml(`<response><recipient>${recipientOf(r)}</request-status></response>`)),
    UNREADABLE(/./),
  ],
  [
    "an unclosed root",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success"), undefined, "")),
    UNREADABLE(/./),
  ],
  [
    "two root elements",
    (r) =>
      ok(`${responseXml(item(recipientOf(r), "2.0;Success"))}<schedule-response xmlns="${ISCHEDULE_NS}"/>`),
    UNREADABLE(/./),
  ],
  [
    "text after the root",
    (r) => ok(`${responseXml(item(recipientOf(r), "2.0;Success"))} trailing`),
    UNREADABLE(/./),
  ],
  [
    "a NUL byte in the document",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;\0Success"))),
    UNREADABLE(/./),
  ],
  [
    "bytes that are not UTF-8",
    (r) =>
      ok(
        Buffer.concat([
          Buffer.from(responseXml(item(recipientOf(r), "2.0;Success")).slice(0, -30)),
          Buffer.from([0xff, 0xfe, 0xfd]),
          Buffer.from("</schedule-response>"),
        ]),
      ),
    UNREADABLE(/./),
  ],
  [
    "UTF-16 with a byte-order mark",
    (r) =>
      ok(
        Buffer.concat([
          Buffer.from([0xff, 0xfe]),
          Buffer.from(
            responseXml(item(recipientOf(r), "2.0;Success")).replace('encoding="utf-8"', 'encoding="utf-16"'),
            "utf16le",
          ),
        ]),
      ),
    DELIVERED,
  ],
  [
    'encoding="ebcdic" declared',
    (r) =>
      ok(responseXml(item(recipientOf(r), "2.0;Success")).replace('encoding="utf-8"', 'encoding="ebcdic"')),
    UNREADABLE(/ebcdic/),
  ],
  [
    "a processing instruction and comments before the root",
    (r) =>
      ok(
        `<?xml version="1.0"?><?pi data?><!-- c -->${responseXml(item(recipientOf(r), "2.0;Success")).replace(/^<\?xml[^>]*\?>/, "")}`,
      ),
    DELIVERED,
  ],
  [
    "900 KB of whitespace before the root",
    (r) =>
      ok(
        `${" ".repeat(900 * 1024)}${responseXml(item(recipientOf(r), "2.0;Success")).replace(/^<\?xml[^>]*\?>/, "")}`,
      ),
    DELIVERED,
  ],
  // Too large is retried: the peer's answer may be smaller next time (post-schedule.ts).
  [
    "a document just over 1 MiB",
    (r) => ok(responseXml(item(recipientOf(r), "2.0;Success", `<pad>${"p".repeat(1024 * 1024)}</pad>`))),
    retried(/exceeds 1048576 bytes/),
  ],
  ["an empty body", () => ok(""), UNREADABLE(/./)],
  [
    "an HTML page",
    () => ({
      status: 200,
      headers: [["Content-Type", "text/html"]],
      body: "<!doctype html><html><body>It works!</body></html>",
    }),
    UNREADABLE(/./),
  ],
  [
    "JSON",
    () => ({ status: 200, headers: [["Content-Type", "application/json"]], body: '{"status":"ok"}' }),
    UNREADABLE(/./),
  ],
  [
    "a schedule-response labelled text/html",
    (r) => ({
      status: 200,
      headers: [["Content-Type", "text/html"]],
      body: responseXml(item(recipientOf(r), "2.0;Success")),
    }),
    DELIVERED,
  ],
  [
    "a gzip body although identity was asked for",
    (r) => ({
      status: 200,
      headers: [XML, ["Content-Encoding", "gzip"]],
      body: Bun.gzipSync(Buffer.from(responseXml(item(recipientOf(r), "2.0;Success")))),
    }),
    UNREADABLE(/./),
  ],
];
