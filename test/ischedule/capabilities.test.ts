import { describe, expect, test } from "bun:test";
import {
  acceptsMessage,
  type Capabilities,
  supportsVersion,
  toICalendarUtc,
} from "../../src/ischedule/capabilities.ts";
import { parseCapabilities } from "../../src/ischedule/capabilities-reader.ts";
import { capabilitiesXml } from "../../src/ischedule/xml-writer.ts";

// draft §5.1, the split </administrator> joined back.
const DRAFT_EXAMPLE = `<?xml version="1.0" encoding="utf-8" ?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule">
  <capabilities>
    <serial-number>123</serial-number>
    <versions>
      <version>1.0</version>
    </versions>
    <scheduling-messages>
      <component name="VEVENT">
        <method name="REQUEST"/>
        <method name="ADD"/>
        <method name="REPLY"/>
        <method name="CANCEL"/>
      </component>
      <component name="VTODO">
        <method name="REQUEST"/>
        <method name="ADD"/>
        <method name="REPLY"/>
        <method name="CANCEL"/>
      </component>
      <component name="VFREEBUSY">
        <method name="REQUEST"/>
      </component>
    </scheduling-messages>
    <calendar-data-types>
      <calendar-data-type
       content-type="text/calendar" version="2.0"/>
    </calendar-data-types>
    <attachments>
      <inline/>
      <external/>
    </attachments>
    <rscales>
      <rscale>GREGORIAN</rscale>
      <rscale>CHINESE</rscale>
    </rscales>
    <max-content-length>102400</max-content-length>
    <min-date-time>19910101T000000Z</min-date-time>
    <max-date-time>20381231T000000Z</max-date-time>
    <max-instances>150</max-instances>
    <max-recipients>250</max-recipients>
    <administrator>mailto:ischedule-admin@example.com</administrator>
  </capabilities>
</query-result>
`;

const METHODS = ["REQUEST", "ADD", "REPLY", "CANCEL"];
const DRAFT_MODEL: Capabilities = {
  serialNumber: 123,
  versions: ["1.0"],
  components: [
    { name: "VEVENT", methods: METHODS },
    { name: "VTODO", methods: METHODS },
    { name: "VFREEBUSY", methods: ["REQUEST"] },
  ],
  calendarDataTypes: [{ contentType: "text/calendar", version: "2.0" }],
  attachments: { inline: true, external: true },
  rscales: ["GREGORIAN", "CHINESE"],
  maxContentLength: 102400,
  minDateTime: "19910101T000000Z",
  maxDateTime: "20381231T000000Z",
  maxInstances: 150,
  maxRecipients: 250,
  administrator: "mailto:ischedule-admin@example.com",
};

// As Cyrus's http_ischedule.c writes it (docs/interop.md): prefixed, empty max-recipients and
// administrator, no max-instances, inline attachments only, jCal as a second type.
const CYRUS = `<?xml version="1.0" encoding="utf-8"?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities><serial-number>1718000003</serial-number>
<versions><version>1.0</version></versions><scheduling-messages>
<component name="VEVENT"><method name="REQUEST"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VTODO"><method name="REQUEST"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VPOLL"><method name="POLLSTATUS"/><method name="REQUEST"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VFREEBUSY"><method name="REQUEST"/></component></scheduling-messages>
<calendar-data-types><calendar-data-type content-type="text/calendar" version="2.0"/>
<calendar-data-type content-type="application/calendar+json" version="2.0"/></calendar-data-types>
<attachments><inline/></attachments><rscales><rscale>GREGORIAN</rscale><rscale>HEBREW</rscale></rscales>
<max-content-length>2147483647</max-content-length><min-date-time>19000101T000000Z</min-date-time>
<max-date-time>20380119T031407Z</max-date-time><max-recipients/><administrator/></capabilities></query-result>`;

// CalendarServer's doCapabilities (docs/interop.md): the serial number as a stray <version>, no
// <serial-number>, external attachments only, administrator = the request URL.
const CALENDAR_SERVER = `<?xml version='1.0' encoding='UTF-8'?>
<query-result xmlns='urn:ietf:params:xml:ns:ischedule'><capabilities><version>7</version>
<versions><version>1.0</version></versions><scheduling-messages>
<component name='VEVENT'><method name='REQUEST'/><method name='CANCEL'/><method name='REPLY'/></component>
<component name='VFREEBUSY'><method name='REQUEST'/></component></scheduling-messages>
<calendar-data-types><calendar-data-type content-type='text/calendar' version='2.0'/></calendar-data-types>
<attachments><external/></attachments><max-content-length>102400</max-content-length>
<min-date-time>20250101T000000Z</min-date-time><max-date-time>20360615T120000Z</max-date-time>
<max-instances>1000</max-instances><max-recipients>100</max-recipients>
<administrator>https://cal.example.com:8443/ischedule</administrator></capabilities></query-result>`;

// Bedework's IscheduleGetHandler (docs/interop.md): version "1", <calendar-data> for
// <calendar-data-type>, a namespace prefix.
const BEDEWORK = `<?xml version="1.0" encoding="UTF-8"?>
<ns1:query-result xmlns:ns1="urn:ietf:params:xml:ns:ischedule"><ns1:capabilities>
<ns1:serial-number>1</ns1:serial-number><ns1:versions><ns1:version>1</ns1:version></ns1:versions>
<ns1:scheduling-messages><ns1:component name="VEVENT"><ns1:method name="REQUEST"/><ns1:method name="ADD"/>
<ns1:method name="REPLY"/><ns1:method name="CANCEL"/></ns1:component>
<ns1:component name="VPOLL"><ns1:method name="POLLSTATUS"/></ns1:component>
<ns1:component name="VFREEBUSY"><ns1:method name="REQUEST"/></ns1:component></ns1:scheduling-messages>
<ns1:calendar-data-types><ns1:calendar-data content-type="text/calendar" version="2.0"/>
<ns1:calendar-data content-type="application/calendar+xml" version="2.0"/></ns1:calendar-data-types>
<ns1:attachments><ns1:inline/><ns1:external/></ns1:attachments>
<ns1:max-content-length>10000000</ns1:max-content-length><ns1:min-date-time>19000101T000000Z</ns1:min-date-time>
<ns1:max-date-time>21001231T000000Z</ns1:max-date-time><ns1:max-instances>1000</ns1:max-instances>
<ns1:max-recipients>100</ns1:max-recipients><ns1:administrator>mailto:admin@bedework.org</ns1:administrator>
</ns1:capabilities></ns1:query-result>`;

// DAViCal's static -01 era answer to ?query=capabilities (docs/interop.md).
const DAVICAL = `<?xml version="1.0" encoding="utf-8" ?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule">
  <capability-set>
    <supported-version-set><version>1.0</version></supported-version-set>
    <supported-scheduling-message-set>
      <comp name="VEVENT"><method name="REQUEST"/><method name="ADD"/><method name="REPLY"/><method name="CANCEL"/></comp>
      <comp name="VTODO"/>
      <comp name="VFREEBUSY"/>
    </supported-scheduling-message-set>
    <supported-calendar-data-type><calendar-data-type content-type="text/calendar" version="2.0"/></supported-calendar-data-type>
    <supported-attachment-values><inline-attachment/></supported-attachment-values>
    <supported-recipient-uri-scheme-set><scheme>mailto</scheme></supported-recipient-uri-scheme-set>
    <max-content-length>102400</max-content-length>
    <min-date-time>19910101T000000Z</min-date-time>
    <max-date-time>20381231T000000Z</max-date-time>
    <max-instances>150</max-instances>
    <max-recipients>250</max-recipients>
    <administrator>mailto:admin@davical.example</administrator>
  </capability-set>
</query-result>`;

describe("parseCapabilities()", () => {
  test("reads the draft's example into the model, without warnings", () => {
    expect(parseCapabilities(DRAFT_EXAMPLE)).toEqual({
      capabilities: DRAFT_MODEL,
      schema: "current",
      warnings: [],
    });
  });

  test("reads Cyrus: empty max-recipients and administrator mean none, inline attachments only", () => {
    const { capabilities: c, warnings } = parseCapabilities(CYRUS);
    expect(c.serialNumber).toBe(1718000003);
    expect(c.components.map((x) => x.name)).toEqual(["VEVENT", "VTODO", "VPOLL", "VFREEBUSY"]);
    expect(c.calendarDataTypes.map((t) => t.contentType)).toEqual([
      "text/calendar",
      "application/calendar+json",
    ]);
    expect(c.attachments).toEqual({ inline: true, external: false });
    expect(c.rscales).toEqual(["GREGORIAN", "HEBREW"]);
    expect(c.maxContentLength).toBe(2147483647);
    expect(c.maxRecipients).toBeUndefined();
    expect(c.maxInstances).toBeUndefined();
    expect(c.administrator).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  test("reads CalendarServer: a stray <version> under <capabilities> is the serial number", () => {
    const { capabilities: c, warnings } = parseCapabilities(CALENDAR_SERVER);
    expect(c.serialNumber).toBe(7);
    expect(c.versions).toEqual(["1.0"]);
    expect(c.attachments).toEqual({ inline: false, external: true });
    expect(c.administrator).toBe("https://cal.example.com:8443/ischedule");
    expect(c.rscales).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  test('reads Bedework: <calendar-data> entries and version "1" as 1.0', () => {
    const { capabilities: c } = parseCapabilities(BEDEWORK);
    expect(c.versions).toEqual(["1.0"]);
    expect(supportsVersion(c, "1.0")).toBe(true);
    expect(c.calendarDataTypes).toEqual([
      { contentType: "text/calendar", version: "2.0" },
      { contentType: "application/calendar+xml", version: "2.0" },
    ]);
    expect(c.components[1]).toEqual({ name: "VPOLL", methods: ["POLLSTATUS"] });
    expect(c.maxRecipients).toBe(100);
  });

  test("reads DAViCal's legacy capability-set schema onto the same model", () => {
    expect(parseCapabilities(DAVICAL)).toEqual({
      schema: "legacy",
      warnings: [],
      capabilities: {
        serialNumber: 0,
        versions: ["1.0"],
        components: [
          { name: "VEVENT", methods: METHODS },
          { name: "VTODO", methods: [] },
          { name: "VFREEBUSY", methods: [] },
        ],
        calendarDataTypes: [{ contentType: "text/calendar", version: "2.0" }],
        attachments: { inline: true, external: false },
        recipientUriSchemes: ["mailto"],
        maxContentLength: 102400,
        minDateTime: "19910101T000000Z",
        maxDateTime: "20381231T000000Z",
        maxInstances: 150,
        maxRecipients: 250,
        administrator: "mailto:admin@davical.example",
      },
    });
  });

  test("a bare capabilities element gets defaults, no limits, and warnings saying so", () => {
    const { capabilities: c, warnings } = parseCapabilities(
      '<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities><x-unknown/></capabilities></query-result>',
    );
    expect(c).toEqual({
      serialNumber: 0,
      versions: ["1.0"],
      components: [],
      calendarDataTypes: [{ contentType: "text/calendar", version: "2.0" }],
      attachments: { inline: true, external: true },
    });
    expect(warnings).toEqual([
      "no <serial-number>; assuming 0",
      "no <versions>; assuming 1.0",
      "no <scheduling-messages>; assuming any component and method",
      "no <calendar-data-types>; assuming text/calendar 2.0",
    ]);
  });

  test("unreadable limits become no limit, with a warning", () => {
    const { capabilities: c, warnings } = parseCapabilities(
      `<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities><serial-number>1</serial-number>
      <versions><version>1.0</version></versions><scheduling-messages><component name="VEVENT"/></scheduling-messages>
      <calendar-data-types><calendar-data-type/></calendar-data-types><attachments/>
      <max-content-length>-5</max-content-length><min-date-time>yesterday</min-date-time>
      <max-date-time>20380101</max-date-time><max-instances>0</max-instances></capabilities></query-result>`,
    );
    expect(c.maxContentLength).toBeUndefined();
    expect(c.minDateTime).toBeUndefined();
    expect(c.maxDateTime).toBe("20380101T000000Z");
    expect(c.maxInstances).toBeUndefined();
    expect(c.attachments).toEqual({ inline: false, external: false });
    expect(c.calendarDataTypes).toEqual([{ contentType: "text/calendar", version: "2.0" }]);
    expect(warnings).toEqual([
      '<max-content-length> "-5" is not a positive integer; assuming no limit',
      '<max-instances> "0" is not a positive integer; assuming no limit',
      '<min-date-time> "yesterday" is not a UTC DATE-TIME; assuming no limit',
    ]);
  });

  test("refuses a document that is not a capabilities document", () => {
    expect(() => parseCapabilities("<html/>")).toThrow(
      'Not a capabilities document: expected query-result/capabilities, found <html> in namespace ""',
    );
    expect(() => parseCapabilities('<query-result xmlns="urn:ietf:params:xml:ns:ischedule"/>')).toThrow(
      "found a query-result without capabilities",
    );
  });
});

describe("capabilitiesXml()", () => {
  test("writes the draft's example byte for byte, in the DTD's element order", () => {
    const expected = DRAFT_EXAMPLE.replace(
      '<calendar-data-type\n       content-type="text/calendar" version="2.0"/>',
      '<calendar-data-type content-type="text/calendar" version="2.0"/>',
    );
    expect(capabilitiesXml(DRAFT_MODEL)).toBe(expected);
  });

  test("round-trips a minimal model: no limits, no attachments, a component with any method", () => {
    const minimal: Capabilities = {
      serialNumber: 1,
      versions: ["1.0"],
      components: [{ name: "VEVENT", methods: [] }],
      calendarDataTypes: [{ contentType: "text/calendar", version: "2.0" }],
      attachments: { inline: false, external: false },
    };
    const xml = capabilitiesXml(minimal);
    expect(xml).toContain('<component name="VEVENT"/>');
    expect(xml).toContain("<attachments/>");
    expect(parseCapabilities(xml)).toEqual({ capabilities: minimal, schema: "current", warnings: [] });
  });

  test("escapes the administrator and attribute values", () => {
    const caps: Capabilities = {
      ...DRAFT_MODEL,
      administrator: "mailto:a@b.c?subject=x&body=<y>",
      components: [{ name: 'V"X', methods: [] }],
    };
    const xml = capabilitiesXml(caps);
    expect(xml).toContain("<administrator>mailto:a@b.c?subject=x&amp;body=&lt;y&gt;</administrator>");
    expect(xml).toContain('<component name="V&quot;X"/>');
    expect(parseCapabilities(xml).capabilities.administrator).toBe("mailto:a@b.c?subject=x&body=<y>");
  });

  test("refuses values the schema cannot carry", () => {
    expect(() => capabilitiesXml({ ...DRAFT_MODEL, serialNumber: 0 })).toThrow(
      "serialNumber must be a positive integer",
    );
    expect(() => capabilitiesXml({ ...DRAFT_MODEL, maxRecipients: 1.5 })).toThrow(
      "maxRecipients must be a positive integer",
    );
    expect(() => capabilitiesXml({ ...DRAFT_MODEL, minDateTime: "1991-01-01" })).toThrow(
      "minDateTime must be an iCalendar UTC DATE-TIME",
    );
    expect(() => capabilitiesXml({ ...DRAFT_MODEL, versions: [] })).toThrow("versions is empty");
  });
});

describe("acceptsMessage()", () => {
  const message = { component: "VEVENT", method: "REQUEST", contentType: "text/calendar", sizeBytes: 1000 };

  test("accepts a message within every advertised limit", () => {
    expect(
      acceptsMessage(DRAFT_MODEL, {
        ...message,
        scheduled: { firstStart: "20040902T130000Z", lastEnd: "20040902T140000Z" },
        instances: 150,
        hasInlineAttachment: true,
        hasExternalAttachment: true,
      }),
    ).toEqual({ ok: true });
  });

  test.each([
    [
      { contentType: "application/calendar+json" },
      "invalid-calendar-data-type",
      "does not accept application/calendar+json (accepts text/calendar)",
    ],
    [
      { component: "VJOURNAL" },
      "invalid-scheduling-message",
      "does not accept VJOURNAL messages (accepts VEVENT, VTODO, VFREEBUSY)",
    ],
    [
      { component: "VFREEBUSY", method: "reply" },
      "invalid-scheduling-message",
      "does not accept VFREEBUSY REPLY (accepts REQUEST)",
    ],
    [{ sizeBytes: 102401 }, "max-content-length", "102401 octets; the peer accepts at most 102400"],
    [
      { scheduled: { firstStart: "19891231", lastEnd: "19900101" } },
      "min-date-time",
      "every instance of the message is over by 19900101T000000Z, before the minimum 19910101T000000Z",
    ],
    [
      { scheduled: { firstStart: "20390101T000000Z" } },
      "max-date-time",
      "the first instance of the message starts at 20390101T000000Z, after the maximum 20381231T000000Z",
    ],
    [{ instances: 151 }, "max-instances", "151 instances; the peer accepts at most 150"],
  ] as const)("refuses %j with %s", (change, element, reason) => {
    const result = acceptsMessage(DRAFT_MODEL, { ...message, ...change });
    expect(result).toMatchObject({ ok: false, element });
    expect(result.ok ? "" : result.reason).toContain(reason);
  });

  test("takes a series that began before min-date-time while it has instances after it", () => {
    expect(
      acceptsMessage(DRAFT_MODEL, { ...message, scheduled: { firstStart: "19800101T000000Z" } }),
    ).toEqual({
      ok: true,
    });
    expect(
      acceptsMessage(DRAFT_MODEL, {
        ...message,
        scheduled: { firstStart: "19800101T000000Z", lastEnd: "19910101T010000Z" },
      }),
    ).toEqual({ ok: true });
    expect(
      acceptsMessage(DRAFT_MODEL, {
        ...message,
        scheduled: { firstStart: "20381231T000000Z", lastEnd: "20400101T000000Z" },
      }),
    ).toEqual({ ok: true });
  });

  test("refuses attachment forms the peer does not take", () => {
    const cyrus = parseCapabilities(CYRUS).capabilities;
    expect(acceptsMessage(cyrus, { ...message, hasInlineAttachment: true })).toEqual({ ok: true });
    expect(acceptsMessage(cyrus, { ...message, hasExternalAttachment: true })).toEqual({
      ok: false,
      element: "attachment-type-not-supported",
      reason: "the peer does not accept external (URI) attachments",
    });
  });

  test("treats a component without methods as any method, and no components as any component", () => {
    const davical = parseCapabilities(DAVICAL).capabilities;
    expect(acceptsMessage(davical, { ...message, component: "VTODO", method: "COUNTER" })).toEqual({
      ok: true,
    });
    const bare = { ...DRAFT_MODEL, components: [] };
    expect(acceptsMessage(bare, { ...message, component: "VJOURNAL", method: "PUBLISH" })).toEqual({
      ok: true,
    });
  });
});

describe("supportsVersion() and toICalendarUtc()", () => {
  test("supportsVersion() compares numerically", () => {
    expect(supportsVersion(DRAFT_MODEL, "1.0")).toBe(true);
    expect(supportsVersion(DRAFT_MODEL, "1.00")).toBe(true);
    expect(supportsVersion(DRAFT_MODEL, "2.0")).toBe(false);
  });

  test("toICalendarUtc() accepts DATE-TIME, DATE and Date, and nothing else", () => {
    expect(toICalendarUtc("20040902T130000Z")).toBe("20040902T130000Z");
    expect(toICalendarUtc("20040902")).toBe("20040902T000000Z");
    expect(toICalendarUtc(new Date("2004-09-02T13:00:00.250Z"))).toBe("20040902T130000Z");
    expect(toICalendarUtc("20040902T130000")).toBeUndefined();
    expect(toICalendarUtc(new Date(Number.NaN))).toBeUndefined();
  });
});
