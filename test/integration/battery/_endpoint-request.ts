/**
 * The endpoint's cases are generated from one valid, DKIM-signed invitation from bernard@peer.test to
 * two users of org.test; this file builds it (fields in wire order, the body, the signature), sends
 * it over a raw socket, and checks an answer against what a case expects:
 * - an iSchedule refusal: the status, an <error> in the iSchedule namespace whose first child is the
 *   expected element, and a response-description (matching a pattern when the case gives one);
 * - acceptance: 200 and each recipient's request-status;
 * - a bare status from Bun's HTTP parser, which refuses some requests (a NUL byte, a 100 KB field,
 *   duplicate Content-Length) before isched sees them: no iSchedule headers then;
 * - a plain-text answer of the endpoint (wrong method, wrong query, key paths).
 * Every iSchedule answer carries iSchedule-Version and the capabilities serial (draft §8.2, §8.3).
 */
import type { SigningKey } from "../../../src/dkim/sign.ts";
import { signRequest } from "../../../src/dkim/sign.ts";
import { ISCHEDULE_NS } from "../../../src/ischedule/namespaces.ts";
import { parseXml } from "../../../src/ischedule/xml-reader.ts";
import { ics, statuses } from "../../support/isched.ts";
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../../support/raw-http.ts";
import { type Case, clip, differs, type Verdict } from "./_cases.ts";
import { peerKeys } from "./_world.ts";

export const BERNARD = "mailto:bernard@peer.test";
export const ANN = "mailto:ann@org.test";
export const BOB = "mailto:bob@org.test";
export const ENDPOINT_PATH = "/.well-known/ischedule";

/** Where the endpoint listens and the capabilities serial its answers carry. */
export interface EndpointTarget {
  port: number;
  serial: number;
}

export function calendar(lines: string[], o: { method?: string; eol?: string } = {}): string {
  const all = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//peer.test//battery//EN",
    `METHOD:${o.method ?? "REQUEST"}`,
    ...lines,
    "END:VCALENDAR",
  ];
  return o.eol === undefined ? ics(...all) : `${all.join(o.eol)}${o.eol}`;
}

export function veventLines(uid: string, extra: string[] = [], o: { attendees?: string[] } = {}): string[] {
  return [
    "BEGIN:VEVENT",
    `UID:${uid}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "DTEND:20261202T110000Z",
    "SUMMARY:Quarterly planning",
    `ORGANIZER;CN=Bernard:${BERNARD}`,
    ...(o.attendees ?? [ANN, BOB]).map((a) => `ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:${a}`),
    ...extra,
    "END:VEVENT",
  ];
}

export const uid = () => `battery-${crypto.randomUUID()}`;
export const invitation = () => calendar(veventLines(uid()));

export interface Build {
  body?: string | Uint8Array;
  recipients?: string[];
  originator?: string;
  key?: SigningKey;
  nowMs?: number;
  /** The Content-Type field; by default from the body's METHOD and component. */
  contentType?: string;
  /** Changes the DKIM-Signature value after signing. */
  signature?: (value: string) => string;
  /** Options of signRequest (h=, q=, x=). */
  sign?: { signedHeaders?: string[]; queryMethods?: string[]; expireSeconds?: number };
}

/** The header fields of a valid signed POST, in wire order, Host first and Content-Length last. */
export function validFields(b: Build = {}): RawField[] {
  const body = Buffer.from(b.body ?? invitation());
  const text = body.toString("latin1");
  const method = /^METHOD:(\S+)/m.exec(text)?.[1] ?? "REQUEST";
  const component = /^BEGIN:(VEVENT|VTODO|VFREEBUSY|VJOURNAL)/m.exec(text)?.[1] ?? "VEVENT";
  const fields: [string, string][] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", crypto.randomUUID()],
    ["Originator", b.originator ?? BERNARD],
    ["Recipient", (b.recipients ?? [ANN, BOB]).join(", ")],
    ["Content-Type", b.contentType ?? `text/calendar; component=${component}; method=${method}`],
    ["Cache-Control", "no-cache, no-transform"],
    ["User-Agent", "peer-battery/1.0"],
  ];
  const signature = signRequest({
    key: b.key ?? peerKeys.rsa,
    fields,
    body,
    nowMs: b.nowMs ?? Date.now(),
    ...(b.sign?.signedHeaders && { signedHeaders: b.sign.signedHeaders }),
    ...(b.sign?.queryMethods && { queryMethods: b.sign.queryMethods as never }),
    ...(b.sign?.expireSeconds !== undefined && { expireSeconds: b.sign.expireSeconds }),
  });
  return [
    ["Host", "isched.org.test"],
    ["DKIM-Signature", b.signature ? b.signature(signature) : signature],
    ...fields,
    ["Content-Length", String(body.length)],
  ];
}

export function send(
  t: EndpointTarget,
  fields: RawField[],
  body: string | Uint8Array,
  o: { method?: string; path?: string } = {},
): Promise<RawResponse> {
  return rawExchange({
    port: t.port,
    request: requestBytes({
      method: o.method,
      path: o.path ?? ENDPOINT_PATH,
      fields,
      body,
      contentLength: false,
    }),
  });
}

/** A POST whose head is these lines, exactly, then the body. */
export function sendLines(
  t: EndpointTarget,
  lines: string[],
  body: string | Uint8Array,
): Promise<RawResponse> {
  const head = Buffer.from(
    `POST ${ENDPOINT_PATH} HTTP/1.1\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`,
    "latin1",
  );
  return rawExchange({ port: t.port, request: Buffer.concat([head, Buffer.from(body)]) });
}

/** A valid request for `body`, with `change` applied to its fields. */
export function sendBody(
  t: EndpointTarget,
  body: string | Uint8Array,
  b: Omit<Build, "body"> = {},
  change = (f: RawField[]) => f,
): Promise<RawResponse> {
  return send(t, change(validFields({ ...b, body })), body);
}

export type Expected =
  /** An iSchedule refusal with this error element; the description must match when given. */
  | { status: number; element: string; description?: RegExp }
  /** Accepted: each recipient's request-status. */
  | { status: 200; statuses: Record<string, string> }
  /** Refused by Bun's HTTP parser before isched runs: a bare status, no iSchedule body. */
  | { http: number }
  /**
   * A plain-text answer with this status (and text, when given); from the iSchedule path itself
   * (`ischedule`) it carries the iSchedule headers too.
   */
  | { text: number; body?: RegExp; ischedule?: boolean }
  /** The capabilities document (draft §5), as a GET ?action=capabilities gets it. */
  | { capabilities: true }
  /** Bun's parser closes the connection without a word (an unknown method): isched never runs. */
  | { dropped: true };

export const refused = (status: number, element: string, description?: RegExp): Expected => ({
  status,
  element,
  description,
});
export const BOTH_DELIVERED: Expected = {
  status: 200,
  statuses: { [ANN]: "2.0;Success", [BOB]: "2.0;Success" },
};
export const delivered = (...recipients: string[]): Expected => ({
  status: 200,
  statuses: Object.fromEntries(recipients.map((r) => [r, "2.0;Success"])),
});
export const httpLayer = (status: number): Expected => ({ http: status });
export const VF = (description?: RegExp) => refused(403, "verification-failed", description);
export const CAL = (description?: RegExp) => refused(400, "invalid-calendar-data", description);
export const ISM = (description?: RegExp) => refused(400, "invalid-scheduling-message", description);
export const BARE_400 = httpLayer(400);
export const CAPABILITIES: Expected = { capabilities: true };
export const DROPPED: Expected = { dropped: true };

export const TOO_LONG = httpLayer(431);

const MAX_DESCRIPTION_CHARS = 1000;

/** The problems of an answer against what was expected (an empty list when it matched). */
export function check(t: EndpointTarget, r: RawResponse, expected: Expected): Verdict {
  // A 505 for an HTTP version the server does not speak is the protocol's answer (RFC 9110 §15.6.6).
  const serverError = r.status >= 500 && !("http" in expected && expected.http === 505);
  const problems = [
    ...(serverError ? [`HTTP ${r.status}: ${clip(r.text)}`] : []),
    ...compare(t, r, expected),
  ];
  return { problems, serverError };
}

function compare(t: EndpointTarget, r: RawResponse, expected: Expected): string[] {
  if ("dropped" in expected)
    return [`HTTP ${r.status}: expected the connection to be closed without an answer`];
  if ("http" in expected) {
    // Bun's own refusal: isched never saw the request.
    return differs("answer", [r.status, r.headers.get("ischedule-version")], [expected.http, null]);
  }
  const common = differs(
    "iSchedule headers",
    [r.headers.get("ischedule-version"), r.headers.get("ischedule-capabilities")],
    ["1.0", String(t.serial)],
  );
  if ("capabilities" in expected) {
    let root = "";
    try {
      const doc = parseXml(r.text);
      root = `${doc.ns} ${doc.name}`;
    } catch (e) {
      root = (e as Error).message;
    }
    return [
      ...common,
      ...differs(
        "answer",
        [r.status, r.headers.get("content-type"), root],
        [200, "application/xml; charset=utf-8", `${ISCHEDULE_NS} query-result`],
      ),
    ];
  }
  if ("text" in expected) {
    const problems = [
      ...(expected.ischedule ? common : []),
      ...differs(
        "status and type",
        [r.status, r.headers.get("content-type")],
        [expected.text, "text/plain; charset=utf-8"],
      ),
    ];
    if (expected.body && !expected.body.test(r.text))
      problems.push(`text ${clip(r.text)} does not match ${expected.body}`);
    return problems;
  }
  if ("statuses" in expected) {
    return [
      ...common,
      ...differs("answer", { status: r.status, statuses: statuses(r.text) }, expected),
      ...(r.status === 200 ? [] : [`text: ${clip(r.text)}`]),
    ];
  }
  let root: ReturnType<typeof parseXml>;
  try {
    root = parseXml(r.text);
  } catch (e) {
    return [
      ...common,
      `HTTP ${r.status} with a body that is not XML (${(e as Error).message}): ${clip(r.text)}`,
    ];
  }
  const description = root.children.find((c) => c.name === "response-description")?.text.trim() ?? "";
  const problems = [
    ...common,
    ...differs(
      "answer",
      {
        status: r.status,
        root: `${root.ns} ${root.name}`,
        element: root.children[0]?.ns === ISCHEDULE_NS ? root.children[0].name : undefined,
      },
      { status: expected.status, root: `${ISCHEDULE_NS} error`, element: expected.element },
    ),
  ];
  if (problems.length > 0 && description !== "") problems.push(`(its description: ${clip(description)})`);
  // A refusal quotes what it refuses, clipped: never the sender's kilobytes back at it.
  if (description.length > MAX_DESCRIPTION_CHARS)
    problems.push(
      `the description is ${description.length} characters long (at most ${MAX_DESCRIPTION_CHARS})`,
    );
  if (description === "") problems.push("the error has no response-description");
  else if (expected.description && !expected.description.test(description))
    problems.push(`description "${clip(description)}" does not match ${expected.description}`);
  return problems;
}

/** A valid signed invitation: delivered to both recipients, the endpoint still works. */
export const endpointControl = (t: () => EndpointTarget): Case =>
  endpointCase(t, "control: a valid signed invitation is delivered", BOTH_DELIVERED, (x) =>
    sendBody(x, invitation()),
  );

/** A case of the endpoint area. */
export function endpointCase(
  t: () => EndpointTarget,
  name: string,
  expected: Expected,
  run: (t: EndpointTarget) => Promise<RawResponse>,
  o: { slow?: boolean } = {},
): Case {
  return {
    area: "endpoint",
    name,
    ...(o.slow && { slow: true }),
    async run() {
      let r: RawResponse;
      try {
        r = await run(t());
      } catch (e) {
        if ("dropped" in expected && /closed the connection after 0 bytes/.test((e as Error).message))
          return { problems: [] };
        throw e;
      }
      return check(t(), r, expected);
    },
  };
}
