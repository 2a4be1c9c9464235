import { describe, expect, test } from "bun:test";
import { drain } from "../../src/ops/drain.ts";

describe("a bounded drain", () => {
  test("runs the steps in order and reports them completed", async () => {
    const order: string[] = [];
    const report = await drain(
      [
        { name: "stop accepting", run: () => void order.push("a") },
        {
          name: "finish attempts",
          run: async () => {
            await Bun.sleep(20);
            order.push("b");
          },
        },
        { name: "close the database", run: () => void order.push("c") },
      ],
      { totalMs: 1000 },
    );
    expect(order).toEqual(["a", "b", "c"]);
    expect(report).toMatchObject({
      completed: ["stop accepting", "finish attempts", "close the database"],
      overran: [],
      failed: [],
    });
  });

  test("a step that overruns its bound is left behind; the database is still closed, within the total", async () => {
    let closed = false;
    const logged: string[] = [];
    const started = performance.now();
    const report = await drain(
      [
        { name: "stop listeners", run: () => new Promise<void>(() => {}), boundMs: 50 },
        { name: "finish attempts", run: () => new Promise<void>(() => {}) },
        {
          name: "close the database",
          run: () => {
            closed = true;
          },
        },
      ],
      { totalMs: 300, log: { log: (level, message, f) => logged.push(`${level} ${message} ${f?.step}`) } },
    );
    const took = performance.now() - started;
    expect(closed).toBe(true);
    expect(report.overran).toEqual(["stop listeners", "finish attempts"]);
    expect(report.completed).toEqual(["close the database"]);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1000);
    expect(logged[0]).toBe("warn shutdown: a step did not finish in time; going on stop listeners");
  });

  test("a step that fails is logged and the next one runs", async () => {
    const report = await drain(
      [
        {
          name: "flush the refusal log",
          run: () => {
            throw new Error("disk full");
          },
        },
        { name: "close the database", run: () => {} },
      ],
      { totalMs: 100 },
    );
    expect(report.failed).toEqual([{ name: "flush the refusal log", error: "disk full" }]);
    expect(report.completed).toEqual(["close the database"]);
  });
});
