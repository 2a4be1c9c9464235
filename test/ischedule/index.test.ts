import { expect, test } from "bun:test";
import * as ischedule from "../../src/ischedule/index.ts";

test("index.ts re-exports the public API and keeps the parser internals private", () => {
  const names = Object.keys(ischedule).sort();
  for (const name of [
    "IScheduleError",
    "HTTP_STATUS_FOR",
    "STATUS",
    "acceptsMessage",
    "capabilitiesXml",
    "classifyStatus",
    "errorXml",
    "normalizeAddress",
    "parseCapabilities",
    "parseContentType",
    "parseOriginator",
    "parseRecipients",
    "parseScheduleResponse",
    "parseVersionHeader",
    "parseXml",
    "scheduleResponseXml",
    "supportsVersion",
  ]) {
    expect(names).toContain(name);
  }
  expect(names).not.toContain("Parser");
  // A round trip through the barrel only.
  const xml = ischedule.errorXml("originator-denied", "Not allowed");
  expect(ischedule.parseScheduleResponse(xml)).toEqual({
    kind: "error",
    element: "originator-denied",
    description: "Not allowed",
  });
});
