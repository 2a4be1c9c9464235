import { describe, expect, test } from "bun:test";
import {
  classifyStatus,
  formatRequestStatus,
  parseRequestStatus,
  STATUS,
} from "../../src/ischedule/status.ts";

describe("parseRequestStatus()", () => {
  test("reads code, class and description", () => {
    expect(parseRequestStatus("2.0;Success")).toEqual({ code: "2.0", major: 2, description: "Success" });
  });

  test("accepts a missing description and surrounding whitespace", () => {
    expect(parseRequestStatus("  1.2  ")).toEqual({ code: "1.2", major: 1, description: "" });
    expect(parseRequestStatus(" 3.7 ; Invalid calendar user ")).toEqual({
      code: "3.7",
      major: 3,
      description: "Invalid calendar user",
    });
  });

  test("keeps extdata and undoes TEXT escapes in the description", () => {
    expect(parseRequestStatus("3.1;Invalid property value\\; see DTSTART;DTSTART:96-Apr-01")).toEqual({
      code: "3.1",
      major: 3,
      description: "Invalid property value; see DTSTART",
      extra: "DTSTART:96-Apr-01",
    });
  });

  test("accepts three-part codes", () => {
    expect(parseRequestStatus("2.8.1;Ok").code).toBe("2.8.1");
  });

  test("throws SyntaxError when there is no status code", () => {
    expect(() => parseRequestStatus("Success")).toThrow(SyntaxError);
    expect(() => parseRequestStatus("")).toThrow('"" is not a status code');
    expect(() => parseRequestStatus("2;Success")).toThrow(SyntaxError);
  });
});

describe("formatRequestStatus()", () => {
  test("round-trips through parseRequestStatus, escaping ; and ,", () => {
    const value = formatRequestStatus({ code: "3.8", description: "No authority; ask, please" });
    expect(value).toBe("3.8;No authority\\; ask\\, please");
    expect(parseRequestStatus(value).description).toBe("No authority; ask, please");
  });

  test("writes extdata after a second semicolon", () => {
    expect(
      formatRequestStatus({ code: "5.1", description: "Service unavailable", extra: "mailto:a@b.c" }),
    ).toBe("5.1;Service unavailable;mailto:a@b.c");
  });

  test("refuses a malformed code", () => {
    expect(() => formatRequestStatus({ code: "x" })).toThrow(RangeError);
  });
});

describe("classifyStatus()", () => {
  const cases: [string, string][] = [
    [STATUS.pending, "pending"],
    ["1.5", "pending"],
    [STATUS.sent, "delivered"],
    [STATUS.delivered, "delivered"],
    [STATUS.success, "delivered"],
    ["2.8;Success, repeating event ignored", "delivered"],
    [STATUS.invalidUser, "permanent"],
    [STATUS.noAuthority, "permanent"],
    ["3.14;Unsupported capability", "permanent"],
    ["4.0;Event conflict", "permanent"],
    [STATUS.notSupported, "permanent"],
    [STATUS.serviceUnavailable, "temporary"],
    [STATUS.invalidService, "permanent"],
    [STATUS.noSchedulingSupport, "permanent"],
    ["5.9;Something new", "temporary"],
    ["6.0;Unknown class", "temporary"],
    ["garbage", "temporary"],
  ];
  test.each(cases)("%s is %s", (value, expected) => {
    expect(classifyStatus(value)).toBe(expected as ReturnType<typeof classifyStatus>);
  });

  test("accepts a bare code", () => {
    expect(classifyStatus("5.3")).toBe("permanent");
    expect(classifyStatus("5.1")).toBe("temporary");
  });
});

test("STATUS constants are the RFC values", () => {
  expect(STATUS).toMatchObject({
    success: "2.0;Success",
    delivered: "1.2;Delivered",
    pending: "1.0;Pending",
    invalidUser: "3.7;Invalid calendar user",
    noAuthority: "3.8;No authority",
    serviceUnavailable: "5.1;Service unavailable",
    invalidService: "5.2;Invalid calendar service",
    noSchedulingSupport: "5.3;No scheduling support for user",
  });
});
