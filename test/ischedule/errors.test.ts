import { describe, expect, test } from "bun:test";
import {
  HTTP_STATUS_FOR,
  ISCHEDULE_ERROR_ELEMENTS,
  IScheduleError,
  isIScheduleErrorElement,
} from "../../src/ischedule/errors.ts";

describe("IScheduleError", () => {
  test("carries the element, its HTTP status and the public message", () => {
    const cause = new Error("key lookup for jupiter._domainkey.example.com timed out");
    const e = new IScheduleError("verification-failed", "Unable to verify request", { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("IScheduleError");
    expect(e.element).toBe("verification-failed");
    expect(e.httpStatus).toBe(403);
    expect(e.publicMessage).toBe("Unable to verify request");
    expect(e.message).toBe("Unable to verify request");
    expect(e.cause).toBe(cause);
  });

  test("lets the caller choose another status", () => {
    expect(new IScheduleError("max-recipients", "too many", { httpStatus: 403 }).httpStatus).toBe(403);
  });
});

describe("HTTP_STATUS_FOR", () => {
  test("maps every draft §6.1.2 element to the documented status", () => {
    expect(HTTP_STATUS_FOR).toEqual({
      "version-not-supported": 400,
      "invalid-calendar-data-type": 400,
      "invalid-calendar-data": 400,
      "invalid-scheduling-message": 400,
      "verification-failed": 403,
      "originator-missing": 400,
      "too-many-originators": 400,
      "originator-invalid": 400,
      "originator-denied": 403,
      "recipient-missing": 400,
      "recipient-mismatch": 400,
      "max-recipients": 400,
      "attachment-type-not-supported": 400,
      "max-content-length": 413,
      "min-date-time": 400,
      "max-date-time": 400,
      "max-instances": 400,
    });
    expect(ISCHEDULE_ERROR_ELEMENTS).toHaveLength(17);
  });

  test("isIScheduleErrorElement() knows the draft's elements only", () => {
    expect(isIScheduleErrorElement("originator-denied")).toBe(true);
    expect(isIScheduleErrorElement("recipient-invalid")).toBe(false); // CalendarServer-only
    expect(isIScheduleErrorElement("toString")).toBe(false);
  });
});
