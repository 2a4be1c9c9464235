import { describe, expect, test } from "bun:test";
import { parseTrustRule } from "../../src/config/rules.ts";

describe("--trust DOMAIN=POLICY[,signers=D,...]", () => {
  test("dkim with extra signers, each a lower-case domain, named by the rule", () => {
    expect(parseTrustRule("Example.NET=dkim,signers=cal.example.net,Hosting.Example")).toEqual({
      domain: "example.net",
      policy: {
        mode: "dkim",
        signers: { domains: ["cal.example.net", "hosting.example"], namedBy: "--trust example.net" },
      },
    });
  });

  test("unsigned addresses and signers in one rule: the list of addresses ends where signers= begins", () => {
    const rule = parseTrustRule("peer.test=unsigned:127.0.0.1,10.0.0.0/8,signers=cal.peer.test");
    expect(rule.policy.mode).toBe("unsigned");
    if (rule.policy.mode !== "unsigned") return;
    expect(rule.policy.from.map((c) => c.text)).toEqual(["127.0.0.1", "10.0.0.0/8"]);
    expect(rule.policy.signers?.domains).toEqual(["cal.peer.test"]);
  });

  test("without signers= the rules read as before", () => {
    expect(parseTrustRule("peer.test=dkim")).toEqual({ domain: "peer.test", policy: { mode: "dkim" } });
    expect(parseTrustRule("peer.test=deny")).toEqual({ domain: "peer.test", policy: { mode: "deny" } });
  });

  test("a signer that is not a domain name is refused, naming it", () => {
    expect(() => parseTrustRule("peer.test=dkim,signers=cal.peer.test,bad!name")).toThrow(
      '--trust peer.test: signers=: "bad!name" is not a domain name',
    );
  });
});
