import { describe, expect, test } from "bun:test";
import { parsePeerFlag, parsePeerFlags } from "../../src/outbound/static-routes.ts";

describe("parsePeerFlag", () => {
  test("reads DOMAIN=URL with every option", () => {
    expect(
      parsePeerFlag(
        "Example.COM.=https://cal.example.com:8443/ischedule,key=/etc/isched/example.pem,selector=cal2,trust=unsigned,sign=no",
      ),
    ).toEqual({
      domain: "example.com",
      url: "https://cal.example.com:8443/ischedule",
      keyFile: "/etc/isched/example.pem",
      selector: "cal2",
      trust: "unsigned",
      sign: false,
    });
  });

  test("signs by default and leaves unset options out", () => {
    expect(parsePeerFlag("example.com=https://cal.example.com/isched")).toEqual({
      domain: "example.com",
      url: "https://cal.example.com/isched",
      sign: true,
    });
  });

  test("a URL naming only a host means the draft's well-known endpoint on it", () => {
    expect(parsePeerFlag("example.com=https://cal.example.com").url).toBe(
      "https://cal.example.com/.well-known/ischedule",
    );
    expect(parsePeerFlag("example.com=https://cal.example.com/").url).toBe("https://cal.example.com/");
  });

  test("keeps the URL's query and percent-encoded commas", () => {
    expect(parsePeerFlag("example.com=https://cal.example.com/a%2Cb?x=1,sign=yes").url).toBe(
      "https://cal.example.com/a%2Cb?x=1",
    );
  });

  test("option names are case-insensitive and may have spaces around them", () => {
    const route = parsePeerFlag("example.com=https://c.example.com/i, Trust = deny , SIGN=no");
    expect(route.trust).toBe("deny");
    expect(route.sign).toBe(false);
  });

  test("refuses plain http unless the peer is named legacy-http, and says how", () => {
    expect(() => parsePeerFlag("test.internal=http://127.0.0.1:8008/ischedule")).toThrow(
      '--peer test.internal: "http://127.0.0.1:8008/ischedule" is plain http; iSchedule peers are reached over https (draft §10), unless this one is named legacy: --peer test.internal=http://127.0.0.1:8008/ischedule,legacy-http',
    );
    expect(parsePeerFlag("test.internal=http://127.0.0.1:8008/ischedule,legacy-http")).toEqual({
      domain: "test.internal",
      url: "http://127.0.0.1:8008/ischedule",
      legacyHttp: true,
      sign: true,
    });
  });

  test("DOMAIN=legacy-http keeps DNS discovery and allows this peer plain HTTP", () => {
    expect(parsePeerFlag("Old.Example=legacy-http,trust=dkim")).toEqual({
      domain: "old.example",
      legacyHttp: true,
      trust: "dkim",
      sign: true,
    });
    expect(() => parsePeerFlag("old.example=legacy-http,legacy-http")).toThrow(
      '--peer old.example: option "legacy-http" is given twice',
    );
    expect(() => parsePeerFlag("old.example=https://c.old.example/i,legacy-http=yes")).toThrow(
      '--peer old.example: option "legacy-http" takes no value',
    );
  });

  const mistakes: [string, string][] = [
    ["example.com", '--peer: "example.com" needs =URL'],
    ["", '--peer: "" needs =URL'],
    ["example.com,key=a.pem", '--peer: "example.com" needs =URL'],
    ["exa mple.com=https://x.test/", '--peer: "exa mple.com" is not a domain name'],
    ["example.com=", '--peer example.com: needs a URL (or legacy-http) after "="'],
    ["example.com=cal.example.com", '--peer example.com: "cal.example.com" is not a URL'],
    [
      "example.com=ftp://cal.example.com/",
      '--peer example.com: "ftp://cal.example.com/" is not an https URL',
    ],
    [
      "example.com=https://u:p@cal.example.com/",
      '--peer example.com: "cal.example.com": a URL with credentials is refused',
    ],
    ["example.com=https://cal.example.com/#x", "has a fragment"],
    [
      "example.com=https://c.example.com/i,foo=1",
      '--peer example.com: unknown option "foo" (did you mean "key"?)',
    ],
    ["example.com=https://c.example.com/i,selctor=s", 'unknown option "selctor" (did you mean "selector"?)'],
    ["example.com=https://c.example.com/i,key", '--peer example.com: option "key" needs a value (key=FILE)'],
    ["example.com=https://c.example.com/i,key=", 'option "key" needs a value (key=FILE)'],
    ["example.com=https://c.example.com/i,,sign=no", "an option is empty"],
    ["example.com=https://c.example.com/i,sign=no,", "an option is empty"],
    ["example.com=https://c.example.com/i,key=a,key=b", 'option "key" is given twice'],
    ["example.com=https://c.example.com/i,trust=maybe", 'trust "maybe" is not one of dkim, unsigned, deny'],
    ["example.com=https://c.example.com/i,sign=off", 'sign "off" is not yes or no'],
    ["example.com=https://c.example.com/i,selector=s1", "selector=s1 needs key=FILE"],
    ["example.com=https://c.example.com/i,key=k.pem,selector=a b", 'selector "a b" is not a DKIM selector'],
    ["example.com=https://c.example.com/i,key=k.pem,trust=deny", "trust=deny refuses this peer"],
  ];
  for (const [raw, message] of mistakes) {
    test(`refuses ${JSON.stringify(raw)} saying ${JSON.stringify(message)}`, () => {
      expect(() => parsePeerFlag(raw)).toThrow(message);
    });
  }
});

describe("parsePeerFlags", () => {
  test("one route per flag, in order", () => {
    const routes = parsePeerFlags(["a.test=https://x.a.test/i", "b.test=https://y.b.test/i,sign=no"]);
    expect(routes.map((r) => [r.domain, r.sign])).toEqual([
      ["a.test", true],
      ["b.test", false],
    ]);
  });

  test("refuses a domain given twice, whatever its case", () => {
    expect(() => parsePeerFlags(["a.test=https://x.a.test/i", "A.TEST=https://y.a.test/i"])).toThrow(
      "--peer a.test: given more than once (one --peer per domain)",
    );
  });
});
