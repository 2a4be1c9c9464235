import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { parseScheduleResponse } from "../../src/ischedule/response-reader.ts";
import { STATUS } from "../../src/ischedule/status.ts";
import { XmlSyntaxError } from "../../src/ischedule/xml-reader.ts";
import { errorXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import { FIXTURES, readHttpFixture } from "../support/http-fixture.ts";

// The draft's example responses (draft Appendix A.1-A.3), with the closing tags the RFC artwork splits
// across lines ("<" newline "/response-description>") joined back.
const A1_RESPONSE = `<?xml version="1.0" encoding="utf-8" ?>
<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule">
  <response>
    <recipient>mailto:cyrus@example.org</recipient>
    <request-status>2.0;Success</request-status>
    <response-description>Delivered to recipient</response-description>
  </response>
</schedule-response>
`;

const A2_FREEBUSY = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example Corp.//EN
METHOD:REPLY
BEGIN:VFREEBUSY
DTSTAMP:20040901T200200Z
ORGANIZER:mailto:bernard@example.com
DTSTART:20040902T000000Z
DTEND:20040903T000000Z
UID:34222-232@example.com
ATTENDEE;CN=Cyrus Daboo:mailto:cyrus@example.org
FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20040902T000000Z/
 20040902T090000Z,20040902T170000Z/20040903T000000Z
FREEBUSY;FBTYPE=BUSY:20040902T120000Z/20040902T130000Z
END:VFREEBUSY
END:VCALENDAR
`;

const A2_RESPONSE = `<?xml version="1.0" encoding="utf-8" ?>
<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule">
  <response>
    <recipient>mailto:cyrus@example.org</recipient>
    <request-status>2.0;Success</request-status>
    <calendar-data>${A2_FREEBUSY}    </calendar-data>
  </response>
  <response>
    <recipient>mailto:mike@example.org</recipient>
    <request-status>5.3;No scheduling support for user</request-status>
    <response-description>Unknown calendar user</response-description>
  </response>
</schedule-response>
`;

const A3_ERROR = `<?xml version="1.0" encoding="utf-8" ?>
<error xmlns="urn:ietf:params:xml:ns:ischedule">
  <verification-failed />
  <response-description>Unable to verify request</response-description>
</error>
`;

describe("parseScheduleResponse() on the draft's examples", () => {
  test("A.1: one delivered recipient with a description", () => {
    expect(parseScheduleResponse(A1_RESPONSE)).toEqual({
      kind: "responses",
      responses: [
        {
          recipient: "mailto:cyrus@example.org",
          requestStatus: "2.0;Success",
          description: "Delivered to recipient",
        },
      ],
    });
  });

  test("A.2: free/busy data for one recipient, 5.3 for the other", () => {
    const r = parseScheduleResponse(A2_RESPONSE);
    expect(r).toEqual({
      kind: "responses",
      responses: [
        {
          recipient: "mailto:cyrus@example.org",
          requestStatus: "2.0;Success",
          // The artwork's LF line ends come back as iCalendar's CRLF.
          calendarData: `${A2_FREEBUSY.replace(/\n/g, "\r\n")}    `,
        },
        {
          recipient: "mailto:mike@example.org",
          requestStatus: "5.3;No scheduling support for user",
          description: "Unknown calendar user",
        },
      ],
    });
  });

  test("A.3: an overall verification failure", () => {
    expect(parseScheduleResponse(A3_ERROR)).toEqual({
      kind: "error",
      element: "verification-failed",
      description: "Unable to verify request",
    });
  });
});

describe("parseScheduleResponse() also reads", () => {
  test("prefixed elements, CDATA calendar data and the -06 content-type attribute", () => {
    const xml = `<I:schedule-response xmlns:I="urn:ietf:params:xml:ns:ischedule"><I:response>
      <I:recipient> mailto:a@example.org </I:recipient><I:request-status>1.2;Delivered</I:request-status>
      <I:calendar-data content-type="application/calendar+json"><![CDATA[["vcalendar",[],[]]]]></I:calendar-data>
      <I:error><I:recipient-invalid/></I:error></I:response></I:schedule-response>`;
    expect(parseScheduleResponse(xml)).toEqual({
      kind: "responses",
      responses: [
        {
          recipient: "mailto:a@example.org",
          requestStatus: "1.2;Delivered",
          calendarData: '["vcalendar",[],[]]',
          calendarDataContentType: "application/calendar+json",
          error: "recipient-invalid",
        },
      ],
    });
  });

  test("the CalDAV-namespace form of pre-2012 CalendarServer (DAV:href, DAV:responsedescription)", () => {
    const xml = `<C:schedule-response xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:D="DAV:">
      <C:response><C:recipient><D:href>mailto:a@example.org</D:href></C:recipient>
      <C:request-status>3.7;Invalid calendar user</C:request-status>
      <D:error><C:recipient-exists/></D:error><D:responsedescription>No such user</D:responsedescription>
      </C:response></C:schedule-response>`;
    expect(parseScheduleResponse(xml)).toEqual({
      kind: "responses",
      responses: [
        {
          recipient: "mailto:a@example.org",
          requestStatus: "3.7;Invalid calendar user",
          error: "recipient-exists",
          description: "No such user",
        },
      ],
    });
  });

  test("an empty schedule-response (the DTD allows response*)", () => {
    expect(parseScheduleResponse('<schedule-response xmlns="urn:ietf:params:xml:ns:ischedule"/>')).toEqual({
      kind: "responses",
      responses: [],
    });
  });

  test("an error document that names no element", () => {
    expect(
      parseScheduleResponse(
        '<error xmlns="urn:ietf:params:xml:ns:ischedule"><response-description>Nope</response-description></error>',
      ),
    ).toEqual({ kind: "error", description: "Nope" });
  });
});

/** The body of a captured CalendarServer answer (test/fixtures/calendarserver). */
const csBody = (name: string) => readHttpFixture(join(FIXTURES, "calendarserver", name)).body;

describe("parseScheduleResponse() on CalendarServer's answers", () => {
  test("its CDATA calendar-data keeps the CRLF line ends iCalendar needs (RFC 5545 §3.1)", () => {
    const parsed = parseScheduleResponse(csBody("freebusy-response.http"));
    const data = parsed.kind === "responses" ? parsed.responses[0]?.calendarData : undefined;
    expect(data).toStartWith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\n");
    expect(data).toContain("FREEBUSY;FBTYPE=BUSY:20261202T150000Z/PT1H\r\n");
    expect(data).toEndWith("END:VCALENDAR\r\n");
    expect(data).not.toMatch(/[^\r]\n/);
  });

  test("its DAV:error keeps the text of twisted's error-description", () => {
    expect(parseScheduleResponse(csBody("error-originator-missing.http"))).toEqual({
      kind: "error",
      element: "originator-missing",
      description: "Missing originator",
    });
  });

  test("its IS:error names CalendarServer's own elements", () => {
    expect(parseScheduleResponse(csBody("error-organizer-denied.http"))).toEqual({
      kind: "error",
      element: "organizer-denied",
      description: "Organizer cannot schedule",
    });
  });
});

describe("parseScheduleResponse() refuses", () => {
  test("a document whose root is neither schedule-response nor error", () => {
    expect(() => parseScheduleResponse("<html><body>OK</body></html>")).toThrow(
      'Not an iSchedule response: the root element is <html> in namespace ""',
    );
    expect(() =>
      parseScheduleResponse(
        '<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities/></query-result>',
      ),
    ).toThrow(XmlSyntaxError);
  });

  test("a schedule-response without the iSchedule namespace", () => {
    expect(() => parseScheduleResponse("<schedule-response/>")).toThrow("Not an iSchedule response");
  });

  test("a response without recipient or request-status, saying which", () => {
    const ns = 'xmlns="urn:ietf:params:xml:ns:ischedule"';
    expect(() =>
      parseScheduleResponse(
        `<schedule-response ${ns}>\n<response><request-status>2.0</request-status></response></schedule-response>`,
      ),
    ).toThrow("<response> #1 (line 2) has no <recipient>");
    expect(() =>
      parseScheduleResponse(
        `<schedule-response ${ns}><response><recipient>mailto:a@b.c</recipient><request-status>2.0</request-status></response>` +
          `<response><recipient>mailto:d@e.f</recipient></response></schedule-response>`,
      ),
    ).toThrow("<response> #2 (line 1) for mailto:d@e.f has no <request-status>");
    expect(() =>
      parseScheduleResponse(
        `<schedule-response ${ns}><response><recipient>mailto:a@b.c</recipient><request-status> </request-status></response></schedule-response>`,
      ),
    ).toThrow("has an empty <request-status>");
  });
});

describe("scheduleResponseXml()", () => {
  test("writes the draft's A.1 response", () => {
    expect(
      scheduleResponseXml([
        {
          recipient: "mailto:cyrus@example.org",
          requestStatus: STATUS.success,
          description: "Delivered to recipient",
        },
      ]),
    ).toBe(A1_RESPONSE);
  });

  test("round-trips free/busy data with CRLF line ends exactly", () => {
    const crlf = A2_FREEBUSY.replace(/\n/g, "\r\n");
    const xml = scheduleResponseXml([
      { recipient: "mailto:cyrus@example.org", requestStatus: STATUS.success, calendarData: crlf },
      {
        recipient: "mailto:mike@example.org",
        requestStatus: STATUS.noSchedulingSupport,
        error: "recipient-invalid",
      },
    ]);
    expect(xml).not.toContain("\r");
    expect(parseScheduleResponse(xml)).toEqual({
      kind: "responses",
      responses: [
        { recipient: "mailto:cyrus@example.org", requestStatus: "2.0;Success", calendarData: crlf },
        {
          recipient: "mailto:mike@example.org",
          requestStatus: STATUS.noSchedulingSupport,
          error: "recipient-invalid",
        },
      ],
    });
  });

  test('escapes <&>" in recipients, descriptions and calendar data, and they round-trip', () => {
    const nasty = `a<b>&c"d']]>e&amp;`;
    const xml = scheduleResponseXml([
      {
        recipient: `mailto:${nasty}@example.org`,
        requestStatus: `2.0;${nasty}`,
        calendarData: `SUMMARY:${nasty}\r\n`,
        calendarDataContentType: `text/calendar; x="${nasty}"`,
        description: nasty,
      },
    ]);
    expect(xml).not.toContain("]]>");
    expect(xml).toContain("a&lt;b&gt;&amp;c\"d']]&gt;e&amp;amp;");
    expect(xml).toContain('content-type="text/calendar; x=&quot;a&lt;b&gt;&amp;c&quot;d');
    expect(parseScheduleResponse(xml)).toEqual({
      kind: "responses",
      responses: [
        {
          recipient: `mailto:${nasty}@example.org`,
          requestStatus: `2.0;${nasty}`,
          calendarData: `SUMMARY:${nasty}\r\n`,
          calendarDataContentType: `text/calendar; x="${nasty}"`,
          description: nasty,
        },
      ],
    });
  });

  test("replaces characters XML cannot carry with U+FFFD", () => {
    const xml = scheduleResponseXml([
      { recipient: "mailto:a@b.c", requestStatus: "2.0", description: "x\u0000y\uFFFEz" },
    ]);
    expect(parseScheduleResponse(xml)).toMatchObject({ responses: [{ description: "x\uFFFDy\uFFFDz" }] });
  });

  test("refuses an error name that is not an element name", () => {
    expect(() =>
      scheduleResponseXml([{ recipient: "mailto:a@b.c", requestStatus: "2.0", error: "a b" }]),
    ).toThrow(TypeError);
  });
});

describe("errorXml()", () => {
  test("writes the draft's A.3 document (modulo the empty element's spacing)", () => {
    expect(errorXml("verification-failed", "Unable to verify request")).toBe(
      A3_ERROR.replace("<verification-failed />", "<verification-failed/>"),
    );
  });

  test("round-trips an escaped description", () => {
    expect(parseScheduleResponse(errorXml("originator-invalid", 'Originator "<x>" & co'))).toEqual({
      kind: "error",
      element: "originator-invalid",
      description: 'Originator "<x>" & co',
    });
  });

  test("leaves the description out when there is none", () => {
    expect(errorXml("recipient-missing")).not.toContain("response-description");
    expect(parseScheduleResponse(errorXml("recipient-missing"))).toEqual({
      kind: "error",
      element: "recipient-missing",
    });
  });
});
