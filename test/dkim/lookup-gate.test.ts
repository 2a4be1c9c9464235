import { describe, expect, test } from "bun:test";
import { createLookupGate } from "../../src/dkim/lookup-gate.ts";

describe("createLookupGate", () => {
  test("admits up to the per-domain and overall limits, and a place left is free again", () => {
    const gate = createLookupGate({ maxWaiting: 3, maxWaitingPerDomain: 2 });
    const a1 = gate.enter("a.example");
    const a2 = gate.enter("a.example");
    expect([a1.ok, a2.ok]).toEqual([true, true]);
    const a3 = gate.enter("a.example");
    expect(a3.ok).toBe(false);
    if (!a3.ok) expect(a3.message).toContain("for a.example");
    expect(gate.enter("b.example").ok).toBe(true);
    const c = gate.enter("c.example");
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.message).toContain("(3 at most)");
    if (a1.ok) {
      a1.leave();
      a1.leave(); // a second leave() changes nothing
    }
    expect(gate.enter("c.example").ok).toBe(true);
    expect(gate.enter("d.example").ok).toBe(false);
  });
});
