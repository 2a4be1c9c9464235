import { describe, expect, test } from "bun:test";
import { classifyPeerStatus, redirectKind } from "../../src/delivery/policy.ts";
import { followRedirect, isDowngrade, isSameOrigin, resolveLocation } from "../../src/outbound/redirects.ts";

const FROM = "https://cal.example.test/.well-known/ischedule?action=capabilities";
const step = (
  location: string | null,
  extra: { status?: number; visited?: string[]; method?: "GET" | "POST" } = {},
) =>
  followRedirect({
    from: FROM,
    status: extra.status ?? 307,
    location,
    method: extra.method ?? "GET",
    visited: extra.visited ?? [FROM],
    maxRedirects: 3,
  });

describe("redirectKind", () => {
  test("301 and 308 are permanent, 302 and 307 temporary, for GET and POST", () => {
    for (const method of ["GET", "POST"] as const) {
      expect([301, 302, 307, 308].map((s) => redirectKind(s, method))).toEqual([
        "permanent",
        "temporary",
        "temporary",
        "permanent",
      ]);
    }
  });

  test("303 is followed for a GET but not for a POST, which would lose its body", () => {
    expect(redirectKind(303, "GET")).toBe("temporary");
    expect(redirectKind(303, "POST")).toBeUndefined();
  });

  test("300, 304, 305 and non-3xx statuses are not redirects", () => {
    for (const s of [200, 300, 304, 305, 306, 404, 500]) expect(redirectKind(s, "GET")).toBeUndefined();
  });
});

describe("followRedirect", () => {
  test("resolves a relative Location against the URL that sent it and drops the fragment", () => {
    expect(step("/ischedule?action=capabilities#top")).toEqual({
      ok: true,
      url: "https://cal.example.test/ischedule?action=capabilities",
      kind: "temporary",
    });
    expect(step("../x", { status: 301 })).toEqual({
      ok: true,
      url: "https://cal.example.test/x",
      kind: "permanent",
    });
  });

  test("refuses https to http", () => {
    const d = step("http://cal.example.test/ischedule");
    expect(d).toEqual({
      ok: false,
      reason: `refusing the redirect from ${FROM} to http://cal.example.test/ischedule: it leaves https for plain http`,
    });
  });

  test("allows http to https and http to http (internal test peers)", () => {
    const from = "http://127.0.0.1:8008/ischedule";
    const visited = [from];
    expect(
      followRedirect({
        from,
        status: 302,
        location: "https://a.test/",
        method: "POST",
        visited,
        maxRedirects: 3,
      }).ok,
    ).toBe(true);
    expect(
      followRedirect({ from, status: 302, location: "/b", method: "POST", visited, maxRedirects: 3 }).ok,
    ).toBe(true);
  });

  test("refuses a missing or empty Location", () => {
    expect(step(null)).toEqual({ ok: false, reason: `${FROM} answered 307 without a Location header` });
    expect(step("  ").ok).toBe(false);
  });

  test("refuses non-HTTP schemes and URLs with credentials", () => {
    expect(step("ftp://cal.example.test/x")).toMatchObject({
      ok: false,
      reason: expect.stringContaining("not an https URL"),
    });
    expect(step("https://u:p@cal.example.test/x")).toMatchObject({
      ok: false,
      reason: expect.stringContaining("credentials"),
    });
  });

  test("refuses a Location that is not a URL", () => {
    expect(step("https://[bad")).toMatchObject({
      ok: false,
      reason: expect.stringContaining("which is not a URL"),
    });
  });

  test("refuses a loop back to a URL already requested", () => {
    const b = "https://cal.example.test/b";
    const d = followRedirect({
      from: b,
      status: 302,
      location: FROM,
      method: "GET",
      visited: [FROM, b],
      maxRedirects: 3,
    });
    expect(d).toEqual({ ok: false, reason: `redirect loop: ${b} redirected back to ${FROM}` });
  });

  test("follows the third redirect and refuses the fourth", () => {
    const visited = [FROM, "https://a.test/1", "https://a.test/2"];
    expect(step("https://a.test/3", { visited }).ok).toBe(true);
    const d = step("https://a.test/4", { visited: [...visited, "https://a.test/3"] });
    expect(d).toMatchObject({ ok: false, reason: expect.stringMatching(/^more than 3 redirects \(/) });
  });

  test("refuses a status that is not a redirect to follow", () => {
    expect(step("/x", { status: 303, method: "POST" }).ok).toBe(false);
  });
});

describe("helpers", () => {
  test("resolveLocation keeps absolute URLs and resolves relative ones", () => {
    expect(resolveLocation("https://a.test/x/y", "z")).toBe("https://a.test/x/z");
    expect(resolveLocation("https://a.test/x/y", "//b.test/q")).toBe("https://b.test/q");
  });

  test("isDowngrade is true only from https to anything else", () => {
    expect(isDowngrade("https://a.test/", "http://a.test/")).toBe(true);
    expect(isDowngrade("http://a.test/", "http://b.test/")).toBe(false);
    expect(isDowngrade("https://a.test/", "https://b.test/")).toBe(false);
  });

  test("isSameOrigin compares scheme, host and port", () => {
    expect(isSameOrigin("https://a.test/x", "https://a.test:443/y?z")).toBe(true);
    expect(isSameOrigin("https://a.test/x", "https://a.test:8443/x")).toBe(false);
    expect(isSameOrigin("https://a.test/x", "https://b.test/x")).toBe(false);
  });
});

describe("classifyPeerStatus", () => {
  test("5xx (but 501), 408, 425 and 429 are temporary; other 4xx and 501 permanent", () => {
    const of = (s: number) => classifyPeerStatus(s, "POST");
    expect([500, 502, 503, 504, 408, 425, 429].map(of)).toEqual(Array(7).fill("temporary"));
    expect([400, 401, 403, 404, 405, 410, 413, 415, 501].map(of)).toEqual(Array(9).fill("permanent"));
  });

  test("2xx is success, 304 not-modified, followed redirects are redirects", () => {
    expect([200, 204].map((s) => classifyPeerStatus(s, "GET"))).toEqual(["success", "success"]);
    expect(classifyPeerStatus(304, "GET")).toBe("not-modified");
    expect(classifyPeerStatus(307, "POST")).toBe("redirect");
    expect(classifyPeerStatus(303, "GET")).toBe("redirect");
    expect(classifyPeerStatus(303, "POST")).toBe("permanent");
  });
});
