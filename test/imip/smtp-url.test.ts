import { describe, expect, test } from "bun:test";
import { parseSmtpUrl, redactSmtpUrl } from "../../src/imip/index.ts";

const PASSWORD = "s3cr:t/p@ss%wörd";
const ENCODED = encodeURIComponent(PASSWORD);

describe("parseSmtpUrl()", () => {
  test("smtp:// defaults to port 587 and STARTTLS when offered", () => {
    expect(parseSmtpUrl("smtp://mail.example.net")).toEqual({
      scheme: "smtp",
      host: "mail.example.net",
      port: 587,
      tls: "starttls-if-offered",
    });
  });

  test("smtps:// defaults to port 465 with TLS from the first byte", () => {
    expect(parseSmtpUrl("SMTPS://Mail.Example.NET")).toEqual({
      scheme: "smtps",
      host: "mail.example.net",
      port: 465,
      tls: "implicit",
    });
  });

  test("an explicit port, an IPv4 and a bracketed IPv6 address, and a trailing slash", () => {
    expect(parseSmtpUrl("smtp://127.0.0.1:25/")).toMatchObject({ host: "127.0.0.1", port: 25 });
    expect(parseSmtpUrl("smtp://[::1]:2525")).toMatchObject({ host: "::1", port: 2525 });
    expect(parseSmtpUrl(" smtp://relay.:26 ")).toMatchObject({ host: "relay", port: 26 });
  });

  test("percent-decodes the user and the password", () => {
    const url = parseSmtpUrl(`smtp://isched%40example.net:${ENCODED}@mail.example.net`);
    expect(url.auth?.user).toBe("isched@example.net");
    expect(url.auth?.password).toBe(PASSWORD);
  });

  test("a bare @ in the password still parses: the last @ ends the user information", () => {
    expect(parseSmtpUrl("smtp://isched:p@ss@mail.example.net:587").auth?.password).toBe("p@ss");
  });

  test("credentials make STARTTLS required, so the password never travels in clear text", () => {
    expect(parseSmtpUrl("smtp://u:p@mail.example.net").tls).toBe("starttls");
    expect(parseSmtpUrl("smtps://u:p@mail.example.net").tls).toBe("implicit");
  });

  test("?starttls=required requires STARTTLS without credentials", () => {
    expect(parseSmtpUrl("smtp://mail.example.net?starttls=required").tls).toBe("starttls");
    expect(parseSmtpUrl("smtp://mail.example.net:25/?starttls=required").tls).toBe("starttls");
  });

  test("the password is left out of JSON and of console output", () => {
    const url = parseSmtpUrl(`smtp://isched:${ENCODED}@mail.example.net`);
    expect(JSON.stringify(url)).not.toContain("s3cr");
    expect(Bun.inspect(url)).not.toContain("s3cr");
    expect(Bun.inspect({ config: { smtp: url } })).not.toContain("s3cr");
    expect(JSON.stringify(url)).toContain('"user":"isched"');
  });

  test("refuses other schemes and values that are not URLs, with one precise message", () => {
    const cases: [string, string][] = [
      [
        "http://mail.example.net",
        "--smtp: scheme must be smtp or smtps (smtp[s]://[user:password@]host[:port])",
      ],
      ["mail.example.net:25", "--smtp: expected smtp[s]://[user:password@]host[:port]"],
      ["smtp://", "--smtp: the host is missing"],
      ["smtp://:25", "--smtp: the host is missing"],
      ["smtp://mail.example.net:0", "--smtp: the port is not a number in 1..65535"],
      ["smtp://mail.example.net:65536", "--smtp: the port is not a number in 1..65535"],
      ["smtp://mail.example.net:", "--smtp: the port is not a number in 1..65535"],
      [
        "smtp://mail.example.net:smtp",
        "--smtp: the host and port are malformed (expected host, host:port or [IPv6]:port)",
      ],
      ["smtp://mail_host!:25", "--smtp: the host is not a host name or IP address"],
      ["smtp://[not-v6]:25", "--smtp: the host is not a host name or IP address"],
      ["smtp://isched@mail.example.net", "--smtp: the user name has no password (write user:password@host)"],
      ["smtp://:pw@mail.example.net", "--smtp: the user name is empty"],
      ["smtp://isched:@mail.example.net", "--smtp: the password is empty"],
      [
        "smtp://isched:100%@mail.example.net",
        '--smtp: the password has a malformed percent-encoding (write "%" as %25)',
      ],
      ["smtp://mail.example.net/path", "--smtp: nothing but ?starttls=required may follow host[:port]"],
      ["smtp://mail.example.net?tls=off", "--smtp: unknown parameter (the only one is starttls=required)"],
      [
        "smtps://mail.example.net?starttls=required",
        "--smtp: starttls=required is for smtp://; smtps:// is TLS throughout",
      ],
    ];
    for (const [value, message] of cases) {
      expect(() => parseSmtpUrl(value)).toThrow(message);
    }
    expect(() => parseSmtpUrl("ftp://x", "config smtp")).toThrow(/^config smtp: scheme must be/);
  });

  test("no error message repeats any part of a malformed value that may hold the password", () => {
    const malformed = [
      `smtp://isched:${PASSWORD}`,
      "smtp://isched:123456",
      "smtp://isched:hunter2%zz@mail.example.net",
      "smtp://mail.example.net/hunter2",
      "smtp://mail.example.net?hunter2",
      "smtp://mail.example.net#hunter2",
      "hunter2://mail.example.net",
      "isched:hunter2@mail.example.net",
    ];
    for (const value of malformed) {
      let message = "";
      try {
        parseSmtpUrl(value);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toStartWith("--smtp: ");
      for (const secret of ["hunter2", "123456", "s3cr", "p@ss"]) expect(message).not.toContain(secret);
    }
  });
});

describe("redactSmtpUrl()", () => {
  test("shows a parsed URL with *** for the password", () => {
    const url = parseSmtpUrl(`smtp://isched%40example.net:${ENCODED}@mail.example.net`);
    expect(redactSmtpUrl(url)).toBe("smtp://isched%40example.net:***@mail.example.net:587");
    expect(redactSmtpUrl(parseSmtpUrl("smtps://[::1]"))).toBe("smtps://[::1]:465");
    expect(redactSmtpUrl(parseSmtpUrl("smtp://relay?starttls=required"))).toBe(
      "smtp://relay:587?starttls=required",
    );
  });

  test("hides the password of any string, parsable or not", () => {
    expect(redactSmtpUrl(`smtp://isched:${PASSWORD}@mail.example.net:587`)).toBe(
      "smtp://isched:***@mail.example.net:587",
    );
    expect(redactSmtpUrl("smtp://isched:p@ss@host")).toBe("smtp://isched:***@host");
    expect(redactSmtpUrl("isched:hunter2@host")).toBe("isched:***@host");
    expect(redactSmtpUrl("smtp://mail.example.net:25")).toBe("smtp://mail.example.net:25");
    expect(redactSmtpUrl("smtp://isched@mail.example.net:25")).toBe("smtp://isched@mail.example.net:25");
  });
});
