import { describe, expect, test } from "bun:test";
import { IScheduleError, type IScheduleErrorElement } from "../../src/ischedule/errors.ts";
import { parseOriginator, parseRecipients, parseVersionHeader } from "../../src/ischedule/headers.ts";

/** Runs `fn`, expects an IScheduleError, and returns it. */
function refusal(fn: () => unknown): IScheduleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IScheduleError) return e;
    throw e;
  }
  throw new Error("expected an IScheduleError, nothing was thrown");
}

function expectRefusal(
  fn: () => unknown,
  element: IScheduleErrorElement,
  status: number,
  message?: string,
): void {
  const e = refusal(fn);
  expect(e.element).toBe(element);
  expect(e.httpStatus).toBe(status);
  if (message !== undefined) expect(e.publicMessage).toContain(message);
}

describe("parseVersionHeader()", () => {
  test("accepts 1.0", () => {
    expect(parseVersionHeader(["1.0"])).toBe("1.0");
  });

  test("picks the supported version from a comma list with whitespace (draft §8.2)", () => {
    expect(parseVersionHeader(["2.0 , 1.0"])).toBe("1.0");
    expect(parseVersionHeader(["2.0", "1.0"])).toBe("1.0");
  });

  test("compares numerically: 1.00 is 1.0", () => {
    expect(parseVersionHeader(["1.00"])).toBe("1.0");
  });

  test("refuses a missing header with version-not-supported (400)", () => {
    expectRefusal(() => parseVersionHeader([]), "version-not-supported", 400, "no iSchedule-Version");
    expectRefusal(() => parseVersionHeader([" "]), "version-not-supported", 400);
  });

  test("refuses a value outside the ABNF, such as 1", () => {
    expectRefusal(
      () => parseVersionHeader(["1"]),
      "version-not-supported",
      400,
      '"1" is not a version number',
    );
    expectRefusal(() => parseVersionHeader(["v1.0"]), "version-not-supported", 400);
  });

  test("refuses an unsupported version and says which are supported", () => {
    expectRefusal(() => parseVersionHeader(["2.0"]), "version-not-supported", 400, "supported: 1.0");
  });
});

describe("parseOriginator()", () => {
  test("returns the address in normal form", () => {
    expect(parseOriginator(["MAILTO:Bernard@Example.COM"])).toBe("mailto:Bernard@example.com");
  });

  test("refuses a missing Originator with originator-missing (400)", () => {
    expectRefusal(() => parseOriginator([]), "originator-missing", 400);
    expectRefusal(() => parseOriginator([""]), "originator-missing", 400);
  });

  test("refuses two Originator fields with too-many-originators (400)", () => {
    expectRefusal(
      () => parseOriginator(["mailto:a@example.com", "mailto:b@example.com"]),
      "too-many-originators",
      400,
      "2 Originator headers",
    );
  });

  test("refuses two Originator fields joined by the HTTP stack with too-many-originators", () => {
    expectRefusal(
      () => parseOriginator(["mailto:a@example.com, mailto:b@example.com"]),
      "too-many-originators",
      400,
    );
  });

  test("refuses a value that is not an absolute URI with originator-invalid (400)", () => {
    expectRefusal(
      () => parseOriginator(["bernard@example.com"]),
      "originator-invalid",
      400,
      "bernard@example.com",
    );
    expectRefusal(() => parseOriginator(["mailto:"]), "originator-invalid", 400);
    expectRefusal(() => parseOriginator(["mailto:bernard"]), "originator-invalid", 400);
    expectRefusal(() => parseOriginator(["mailto:a b@example.com"]), "originator-invalid", 400);
    expectRefusal(() => parseOriginator(["mailto:a@example.com#frag"]), "originator-invalid", 400);
  });

  test("refuses a mailto: with two addresses as originator-invalid, not as two originators", () => {
    expectRefusal(() => parseOriginator(["mailto:a@example.com,b@example.com"]), "originator-invalid", 400);
  });

  test("accepts non-mailto calendar user addresses", () => {
    expect(parseOriginator(["urn:uuid:6F0A4C4E-1D3A-4F2B-9C6E-2A7B5C8D9E01"])).toBe(
      "urn:uuid:6F0A4C4E-1D3A-4F2B-9C6E-2A7B5C8D9E01",
    );
    expect(parseOriginator(["HTTPS://Cal.Example.COM/principals/bernard/"])).toBe(
      "https://cal.example.com/principals/bernard/",
    );
  });
});

describe("parseRecipients()", () => {
  test("splits every field on commas and trims (draft §8.6)", () => {
    const r = parseRecipients(
      ["mailto:cyrus@example.org ,  mailto:mike@example.org", "mailto:ken@example.org"],
      10,
    );
    expect(r.map((x) => x.address)).toEqual([
      "mailto:cyrus@example.org",
      "mailto:mike@example.org",
      "mailto:ken@example.org",
    ]);
  });

  test("keeps the original spelling and adds the normal form", () => {
    expect(parseRecipients(["MAILTO:Cyrus@Example.ORG"], 10)).toEqual([
      { address: "MAILTO:Cyrus@Example.ORG", normalized: "mailto:Cyrus@example.org" },
    ]);
  });

  test("drops duplicates case-insensitively, keeping the first spelling", () => {
    const r = parseRecipients(
      ["mailto:Cyrus@example.org", "MAILTO:cyrus@EXAMPLE.org, mailto:mike@example.org"],
      10,
    );
    expect(r.map((x) => x.address)).toEqual(["mailto:Cyrus@example.org", "mailto:mike@example.org"]);
  });

  test("ignores empty list items (RFC 9110 §5.6.1)", () => {
    expect(parseRecipients([", mailto:a@example.org,,"], 10)).toHaveLength(1);
  });

  test("refuses no Recipient with recipient-missing (400)", () => {
    expectRefusal(() => parseRecipients([], 10), "recipient-missing", 400, "no Recipient");
    expectRefusal(() => parseRecipients([" , "], 10), "recipient-missing", 400);
  });

  test("refuses an item that is not a calendar user address with recipient-missing", () => {
    expectRefusal(
      () => parseRecipients(["mailto:a@example.org, cyrus@example.org"], 10),
      "recipient-missing",
      400,
      '"cyrus@example.org" is not a valid calendar user address',
    );
  });

  test("refuses more distinct recipients than the limit with max-recipients (400)", () => {
    expectRefusal(
      () => parseRecipients(["mailto:a@x.org, mailto:b@x.org, mailto:c@x.org"], 2),
      "max-recipients",
      400,
      "3 recipients; at most 2",
    );
  });

  test("counts the limit after removing duplicates", () => {
    expect(parseRecipients(["mailto:a@x.org, mailto:A@X.org"], 1)).toHaveLength(1);
  });
});
