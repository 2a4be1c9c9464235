import { describe, expect, test } from "bun:test";
import { IScheduleError } from "../../src/ischedule/errors.ts";
import {
  isAcceptedMediaType,
  parseContentType,
  requireAcceptedMediaType,
} from "../../src/ischedule/media-type.ts";

describe("parseContentType()", () => {
  test("reads the draft's Content-Type", () => {
    expect(parseContentType("text/calendar; component=VEVENT; method=REQUEST")).toEqual({
      mediaType: "text/calendar",
      component: "VEVENT",
      method: "REQUEST",
      params: { component: "VEVENT", method: "REQUEST" },
    });
  });

  test("is case-insensitive on names and on component, method and charset values", () => {
    const ct = parseContentType('Text/Calendar;CHARSET="UTF-8";Method=reply;Component=vevent');
    expect(ct.mediaType).toBe("text/calendar");
    expect(ct.charset).toBe("utf-8");
    expect(ct.method).toBe("REPLY");
    expect(ct.component).toBe("VEVENT");
    expect(ct.params).toEqual({ charset: "UTF-8", method: "reply", component: "vevent" });
  });

  test("unquotes quoted-string values with quoted-pairs", () => {
    expect(parseContentType('text/calendar; x-note="a \\"b\\"; c"').params["x-note"]).toBe('a "b"; c');
  });

  test("ignores empty parameters and whitespace (RFC 9110 §5.6.6)", () => {
    expect(parseContentType(" text/calendar ;; method=CANCEL ; ").method).toBe("CANCEL");
  });

  test("refuses a missing Content-Type with invalid-calendar-data-type (400)", () => {
    for (const v of [undefined, null, "  "]) {
      const e = (() => {
        try {
          parseContentType(v);
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(IScheduleError);
      expect((e as IScheduleError).element).toBe("invalid-calendar-data-type");
      expect((e as IScheduleError).httpStatus).toBe(400);
    }
  });

  test.each([
    ["text", 'expected "/"'],
    ["text/", "no subtype"],
    ["text/calendar; method", 'parameter "method" has no value'],
    ["text/calendar; method=", "empty or invalid value"],
    ['text/calendar; x="open', "unterminated quoted value"],
    ["text/calendar; method=REQUEST; METHOD=CANCEL", 'parameter "method" appears twice'],
    ["text/calendar, text/plain", 'unexpected ","'],
  ])("refuses %p (%s)", (value, why) => {
    expect(() => parseContentType(value)).toThrow(why);
  });
});

describe("requireAcceptedMediaType()", () => {
  const accepted = [{ contentType: "text/calendar", version: "2.0" }];

  test("passes an advertised media type", () => {
    expect(() =>
      requireAcceptedMediaType(parseContentType("text/calendar; method=REQUEST"), accepted),
    ).not.toThrow();
  });

  test("refuses another one with invalid-calendar-data-type, listing the accepted ones", () => {
    expect(() => requireAcceptedMediaType(parseContentType("application/calendar+json"), accepted)).toThrow(
      "Content-Type application/calendar+json is not accepted here; accepted: text/calendar",
    );
  });

  test("isAcceptedMediaType() ignores case and parameters", () => {
    expect(isAcceptedMediaType("TEXT/Calendar; charset=utf-8", accepted)).toBe(true);
    expect(isAcceptedMediaType("text/plain", accepted)).toBe(false);
  });
});
