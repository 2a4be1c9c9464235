/**
 * The endpoint's listener routes as it did before it declared routes: scheduling paths exactly as
 * written (a `--path` with `:` or `*` is not a pattern), every method on them reaches the endpoint
 * (405 with Allow for the ones it does not take, also when the Host header is empty and Bun gives a
 * bare path), key records by GET and HEAD only, and a plain-text 404 for the rest.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { keysOfDomain } from "../../src/store/sqlite/dkim-keys.ts";
import { startIsched, type TestServer } from "../support/isched.ts";
import { rawExchange, requestBytes } from "../support/raw-http.ts";

let isched: TestServer;
const port = () => Number(new URL(isched.url).port);

beforeAll(async () => {
  isched = await startIsched({ domains: ["org.test"], paths: ["/cal/:user", "/any/*", "/plain/ischedule"] });
});
afterAll(() => isched.close());

describe("scheduling paths", () => {
  test("each --path answers the capabilities, as written and not as a pattern", async () => {
    for (const path of ["/.well-known/ischedule", "/plain/ischedule", "/cal/:user", "/any/*"]) {
      const r = await fetch(`${isched.url}${path}?action=capabilities`);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
      expect(await r.text()).toContain("<query-result");
    }
    for (const path of ["/cal/bob", "/any/thing", "/plain/ischedule/", "/.well-known/ischedule/"]) {
      const r = await fetch(`${isched.url}${path}?action=capabilities`);
      expect({ path, status: r.status, type: r.headers.get("content-type") }).toEqual({
        path,
        status: 404,
        type: "text/plain; charset=utf-8",
      });
    }
  });

  test("a method the endpoint does not take is 405 with Allow, on a --path pattern and with an empty Host", async () => {
    for (const [path, host] of [
      ["/.well-known/ischedule", "127.0.0.1"],
      ["/cal/:user", "127.0.0.1"],
      ["/.well-known/ischedule", ""],
    ] as const) {
      const r = await rawExchange({
        port: port(),
        request: requestBytes({ method: "DELETE", path, fields: [["Host", host]] }),
      });
      expect({ path, host, status: r.status, allow: r.headers.get("allow") }).toEqual({
        path,
        host,
        status: 405,
        allow: "GET, HEAD, POST, OPTIONS",
      });
      expect(r.headers.get("ischedule-version")).toBe("1.0");
    }
  });

  test("OPTIONS and HEAD reach the endpoint", async () => {
    const options = await fetch(`${isched.url}/cal/:user`, { method: "OPTIONS" });
    expect(options.status).toBe(200);
    expect(options.headers.get("allow")).toBe("GET, HEAD, POST, OPTIONS");
    const head = await fetch(`${isched.url}/.well-known/ischedule?action=capabilities`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("etag")).toMatch(/^"/);
    expect(await head.text()).toBe("");
  });

  test("a POST with an empty Host header reaches the endpoint", async () => {
    const r = await rawExchange({
      port: port(),
      request: requestBytes({
        method: "POST",
        path: "/.well-known/ischedule",
        fields: [
          ["Host", ""],
          ["Content-Type", "text/plain"],
        ],
        body: "hello",
      }),
    });
    // The endpoint's own answer: an iSchedule error element, not a 404.
    expect(r.status).toBe(400);
    expect(r.headers.get("ischedule-version")).toBe("1.0");
    expect(r.text).toContain("<version-not-supported/>");
  });
});

describe("key records", () => {
  test("GET and HEAD give our record; other methods are 404", async () => {
    const selector = keysOfDomain(isched.db, "org.test")[0]!.selector;
    const path = `/.well-known/domainkey/org.test/${selector}`;
    const get = await fetch(`${isched.url}${path}`);
    expect(get.status).toBe(200);
    expect(await get.text()).toStartWith("v=DKIM1;");
    const head = await fetch(`${isched.url}${path}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect((await fetch(`${isched.url}${path}`, { method: "POST", body: "x" })).status).toBe(404);
  });

  test("a dot segment in place of a domain or selector is no key path", async () => {
    const r = await rawExchange({
      port: port(),
      request: requestBytes({
        method: "GET",
        path: "/.well-known/domainkey/%2e%2e/x",
        fields: [["Host", "127.0.0.1"]],
      }),
    });
    expect(r.status).toBe(404);
    expect(r.text).toBe("Not found.\n");
  });

  test("the segments reach the endpoint percent-encoded, as sent", async () => {
    const r = await fetch(`${isched.url}/.well-known/domainkey/org%2Etest/%E0%A4%A`);
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("percent-escape");
  });
});
