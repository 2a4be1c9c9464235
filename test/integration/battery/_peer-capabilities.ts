/**
 * The fake peer's capabilities documents (draft §5, §9.2): the one it serves for fake.test, and one
 * per capabilities case, each served on a static route of its own (`capN.test` → `/caps/N`), since
 * isched caches capabilities per endpoint. Each with the delivery state it must lead to: a document
 * isched cannot read, or one that says the message cannot be taken, ends the delivery (5.2, or iMIP
 * where isched sends email); an unreachable one is retried.
 */
import { ISCHEDULE_NS } from "../../../src/ischedule/namespaces.ts";
import type { PeerAnswer, PeerRequest } from "./_fake-peer.ts";
import { DELIVERED, failed, nest, type PeerOutcome, retried, XML } from "./_peer-delivery.ts";

/** The capabilities document the fake peer serves for fake.test. */
export const CAPABILITIES = `<?xml version="1.0" encoding="utf-8"?>
<query-result xmlns="${ISCHEDULE_NS}"><capabilities>
<serial-number>1</serial-number>
<versions><version>1.0</version></versions>
<scheduling-messages>
<component name="VEVENT"><method name="REQUEST"/><method name="CANCEL"/><method name="REPLY"/></component>
</scheduling-messages>
<calendar-data-types><calendar-data-type content-type="text/calendar" version="2.0"/></calendar-data-types>
<max-content-length>1048576</max-content-length>
<max-recipients>100</max-recipients>
</capabilities></query-result>`;

const capsXml = (inner: string) =>
  `<?xml version="1.0" encoding="utf-8"?><query-result xmlns="${ISCHEDULE_NS}"><capabilities>${inner}</capabilities></query-result>`;
const BASIC_CAPS = `<versions><version>1.0</version></versions><scheduling-messages><component name="VEVENT"><method name="REQUEST"/></component></scheduling-messages><calendar-data-types><calendar-data-type content-type="text/calendar" version="2.0"/></calendar-data-types>`;
export const xmlAnswer = (body: string): PeerAnswer => ({ status: 200, headers: [XML], body });

/** Capabilities answers (GET ?action=capabilities of capN.test), by case. */
export const CAPABILITY_CASES: [string, (r: PeerRequest) => PeerAnswer, PeerOutcome][] = [
  ["the draft's minimal document (the control)", () => xmlAnswer(capsXml(BASIC_CAPS)), DELIVERED],
  ["an empty <capabilities/> (defaults assumed)", () => xmlAnswer(capsXml("")), DELIVERED],
  [
    "the -01 capability-set schema (DAViCal)",
    () =>
      xmlAnswer(
        `<?xml version="1.0"?><query-result xmlns="${ISCHEDULE_NS}"><capability-set><supported-version-set><version>1.0</version></supported-version-set></capability-set></query-result>`,
      ),
    DELIVERED,
  ],
  [
    "a serial-number that is not a number",
    () => xmlAnswer(capsXml(`<serial-number>many</serial-number>${BASIC_CAPS}`)),
    DELIVERED,
  ],
  [
    "10,000 version elements",
    () =>
      xmlAnswer(
        capsXml(`<versions>${"<version>9.9</version>".repeat(10_000)}<version>1.0</version></versions>`),
      ),
    DELIVERED,
  ],
  [
    "only version 2.0",
    () => xmlAnswer(capsXml("<versions><version>2.0</version></versions>")),
    failed(/the peer supports iSchedule 2\.0, not 1\.0/),
  ],
  [
    "no VEVENT REQUEST in scheduling-messages",
    () =>
      xmlAnswer(
        capsXml(
          `<scheduling-messages><component name="VTODO"><method name="REQUEST"/></component></scheduling-messages>`,
        ),
      ),
    failed(/VEVENT|REQUEST/, /./),
  ],
  [
    "only application/calendar+xml",
    () =>
      xmlAnswer(
        capsXml(
          `<calendar-data-types><calendar-data-type content-type="application/calendar+xml" version="2.0"/></calendar-data-types>`,
        ),
      ),
    failed(/text\/calendar|calendar-data/, /./),
  ],
  [
    "max-content-length 10",
    () => xmlAnswer(capsXml(`${BASIC_CAPS}<max-content-length>10</max-content-length>`)),
    failed(/the peer accepts at most 10/),
  ],
  [
    "max-recipients 0",
    () => xmlAnswer(capsXml(`${BASIC_CAPS}<max-recipients>0</max-recipients>`)),
    { state: "delivered" },
  ],
  [
    "max-recipients -5",
    () => xmlAnswer(capsXml(`${BASIC_CAPS}<max-recipients>-5</max-recipients>`)),
    { state: "delivered" },
  ],
  [
    "a max-date-time before the event",
    () => xmlAnswer(capsXml(`${BASIC_CAPS}<max-date-time>20000101T000000Z</max-date-time>`)),
    failed(
      /the first instance of the message starts at 20261202T100000Z, after the maximum 20000101T000000Z/,
    ),
  ],
  [
    "a document that is not XML",
    () => xmlAnswer("capabilities: yes"),
    failed(/does not serve iSchedule capabilities: Text before the root element/),
  ],
  [
    "a DOCTYPE",
    () =>
      xmlAnswer(
        `<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "b">]>${capsXml(BASIC_CAPS).replace(/^<\?xml[^>]*\?>/, "")}`,
      ),
    failed(/does not serve iSchedule capabilities: DOCTYPE declarations are not allowed/),
  ],
  [
    "elements nested 10,000 deep",
    () => xmlAnswer(capsXml(nest(10_000, ""))),
    failed(/does not serve iSchedule capabilities: Elements are nested deeper than 32 levels/),
  ],
  [
    "a root that is not query-result",
    () => xmlAnswer(`<?xml version="1.0"?><error xmlns="${ISCHEDULE_NS}"><x/></error>`),
    failed(/does not serve iSchedule capabilities: Not a capabilities document/),
  ],
  [
    "a document of 2 MB",
    () => xmlAnswer(capsXml(`${BASIC_CAPS}<pad>${"p".repeat(2 * 1024 * 1024)}</pad>`)),
    { state: "failed" },
  ],
  ["404 (then also for query=capabilities)", () => ({ status: 404, body: "" }), { state: "failed" }],
  ["503", () => ({ status: 503, body: "" }), retried(/503/)],
  [
    "a redirect to itself",
    (r) => ({ status: 302, headers: [["Location", r.target]], body: "" }),
    { state: "failed" },
  ],
  [
    "an HTML page",
    () => ({ status: 200, headers: [["Content-Type", "text/html"]], body: "<html><body>hi</body></html>" }),
    failed(/does not serve iSchedule capabilities: Not a capabilities document: .* found <html>/),
  ],
  ["the connection reset", () => ({ reset: true }), retried(/./)],
];
