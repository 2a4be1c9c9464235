import { describe, expect, test } from "bun:test";
import { isSecretName, redactSecrets } from "../../src/text/redact.ts";

describe("secrets out of text", () => {
  test("a password in a URL; the user stays", () => {
    expect(redactSecrets("relay smtp://isched:s3cret@mail.example.com:587 refused")).toBe(
      "relay smtp://isched:***@mail.example.com:587 refused",
    );
    expect(redactSecrets("ischedule:https://cyrus:p%40ss@127.0.0.1:8008/ischedule")).toBe(
      "ischedule:https://cyrus:***@127.0.0.1:8008/ischedule",
    );
    expect(redactSecrets("https://example.com/path?x=1")).toBe("https://example.com/path?x=1");
  });

  test("Authorization and Cookie header values", () => {
    expect(redactSecrets("Authorization: Bearer abc.def-123")).toBe("Authorization: Bearer ***");
    expect(redactSecrets("authorization: Basic dXNlcjpwYXNz")).toBe("authorization: Basic ***");
    expect(redactSecrets("Proxy-Authorization: xyz")).toBe("Proxy-Authorization: ***");
    expect(redactSecrets("Cookie: isched_session=abcdef; theme=dark")).toBe("Cookie: ***");
    expect(redactSecrets("Set-Cookie: isched_session=abcdef; HttpOnly")).toBe("Set-Cookie: ***");
  });

  test("secret-named parameters, in a query string or a key=value list, quoted or not", () => {
    expect(redactSecrets("GET /cb?code=1&access_token=zzz&state=2")).toBe(
      "GET /cb?code=1&access_token=***&state=2",
    );
    expect(redactSecrets("password=hunter2 user=bob")).toBe("password=*** user=bob");
    expect(redactSecrets('{"apiToken":"abc","client_secret": \'q\'}')).toBe(
      '{"apiToken":"***","client_secret": \'***\'}',
    );
    expect(redactSecrets("ISCHED_SMTP_PASSWORD=xyz")).toBe("ISCHED_SMTP_PASSWORD=***");
  });

  test("a PEM private key goes whole, a certificate or a public key stays", () => {
    const key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
    expect(redactSecrets(`loaded ${key} ok`)).toBe("loaded [private key] ok");
    expect(redactSecrets("-----BEGIN RSA PRIVATE KEY-----\nMIIE")).toBe("[private key]");
    const pub = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----";
    expect(redactSecrets(pub)).toBe(pub);
  });

  test("what isched logs every day is left alone", () => {
    for (const text of [
      "v=1; a=rsa-sha256; d=example.com; s=is202611; bh=abc=; b=def=",
      "delivered to mailto:bob@example.com (2.0;Success)",
      "author: Alice; passes: 3; selector=s1",
      "SMTP auth: 535 5.7.8 Authentication failed; dkim pass: example.com",
      "the DKIM key is202611._domainkey.example.com is not visible in DNS yet",
    ])
      expect(redactSecrets(text)).toBe(text);
  });

  test("names of fields that hold secrets", () => {
    for (const n of [
      "password",
      "smtpPassword",
      "token",
      "apiToken",
      "authorization",
      "cookie",
      "secret",
      "privateKey",
      "api_key",
    ])
      expect(isSecretName(n), n).toBe(true);
    for (const n of ["domain", "selector", "keySource", "from", "status", "recipient", "message", "passes"])
      expect(isSecretName(n), n).toBe(false);
  });
});
