import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { parseAuthFile } from "../../src/smtp-intake/auth-file.ts";
import { createRetryMemory, transactionKey } from "../../src/smtp-intake/retry-memory.ts";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("parseAuthFile()", () => {
  test("verifies {sha256}, salted (argon2id, bcrypt) and plain-text secrets, and nothing else", async () => {
    const argon = await Bun.password.hash("argon-pw", { algorithm: "argon2id" });
    const bcrypt = await Bun.password.hash("bcrypt-pw", { algorithm: "bcrypt", cost: 4 });
    const accounts = parseAuthFile(
      [
        "# comment",
        "",
        `cyrus:{SHA256}${sha256("hashed-pw").toUpperCase()}`,
        `sogo:${argon}`,
        `nc:${bcrypt}`,
        "plain:pa:ss",
      ].join("\n"),
    );
    expect(accounts.size).toBe(4);
    expect(await accounts.verify("cyrus", "hashed-pw")).toBe(true);
    expect(await accounts.verify("sogo", "argon-pw")).toBe(true);
    expect(await accounts.verify("nc", "bcrypt-pw")).toBe(true);
    expect(await accounts.verify("plain", "pa:ss")).toBe(true);
    expect(await accounts.verify("cyrus", "wrong")).toBe(false);
    expect(await accounts.verify("sogo", "wrong")).toBe(false);
    expect(await accounts.verify("nobody", "")).toBe(false);
    expect(await accounts.verify("nobody", "hashed-pw")).toBe(false);
  });

  test("refuses mistakes with the line number and never repeats a secret", () => {
    const cases: [string, RegExp][] = [
      ["ok:pw\nno-colon-here", /line 2: expected user:secret/],
      ["ok:pw\nok:other-secret", /line 2: the user ok is listed twice/],
      [":secret-value", /line 1: the user name is empty/],
      ["user:", /line 1: the secret is empty/],
      ["user:{sha256}abc", /line 1: \{sha256\} must be followed by 64 hex digits/],
      ["# only a comment", /no account/],
    ];
    for (const [text, want] of cases) {
      let message = "";
      try {
        parseAuthFile(text);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(want);
      expect(message).not.toContain("secret-value");
      expect(message).not.toContain("other-secret");
    }
  });
});

describe("createRetryMemory()", () => {
  test("remembers handled recipients per transaction, case-insensitively, until forgotten", () => {
    const m = createRetryMemory();
    const key = transactionKey(new TextEncoder().encode("message"), "alice@example.com");
    m.remember(key, ["Bob@Example.org"]);
    m.remember(key, ["carol@example.net"]);
    expect([...m.handled(key)]).toEqual(["bob@example.org", "carol@example.net"]);
    expect(m.handled(transactionKey(new TextEncoder().encode("message!"), "alice@example.com")).size).toBe(0);
    expect(m.handled(transactionKey(new TextEncoder().encode("message"), "other@example.com")).size).toBe(0);
    m.forget(key);
    expect(m.handled(key).size).toBe(0);
  });

  test("forgets entries after their time to live and beyond its size, oldest first", () => {
    let now = 0;
    const m = createRetryMemory({ ttlMs: 1000, maxEntries: 2, nowMs: () => now });
    m.remember("a", ["x@a.example"]);
    now = 500;
    m.remember("b", ["x@b.example"]);
    m.remember("c", ["x@c.example"]);
    expect([m.handled("a").size, m.handled("b").size, m.handled("c").size]).toEqual([0, 1, 1]);
    now = 1600;
    expect([m.handled("b").size, m.handled("c").size, m.size]).toEqual([0, 0, 0]);
  });
});
