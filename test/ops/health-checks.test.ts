import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import {
  createReadiness,
  HEALTH_CONTENT_TYPE,
  type HealthReport,
  healthResponse,
  type ReadinessProbes,
} from "../../src/ops/health-checks.ts";
import { openDatabase } from "../../src/store/sqlite/database.ts";
import { MIN_FREE_BYTES, PROBE_SETTING, probeWrite } from "../../src/store/sqlite/health-probe.ts";
import { getSetting } from "../../src/store/sqlite/settings.ts";
import { removeTempDirs, tempDatabasePath } from "../store/_temp-dir.ts";

afterEach(removeTempDirs);

const T0 = Date.UTC(2026, 0, 5, 9);

function probes(extra: Partial<ReadinessProbes> = {}): ReadinessProbes {
  return {
    databaseWritable: () => {},
    dispatcherHeartbeatMs: () => T0 - 5_000,
    listeners: () => [
      { name: "--listen", up: true },
      { name: "--console", up: true },
    ],
    ownKeys: () => [{ domain: "example.com", visible: true }],
    signUnpublished: false,
    problems: () => [],
    ...extra,
  };
}

/** /readyz served over a real socket, as a load balancer asks it. */
async function ask(
  report: () => Promise<HealthReport>,
): Promise<{ status: number; type: string | null; body: HealthReport }> {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async () => healthResponse(await report()),
  });
  try {
    const r = await fetch(`http://127.0.0.1:${server.port}/readyz`);
    return { status: r.status, type: r.headers.get("content-type"), body: (await r.json()) as HealthReport };
  } finally {
    server.stop(true);
  }
}

const statuses = (r: HealthReport) =>
  Object.fromEntries(Object.entries(r.checks).map(([k, v]) => [k, v.map((x) => x.status).join(",")]));

describe("/readyz", () => {
  test("everything working: 200, pass, one entry per check", async () => {
    const readiness = createReadiness({ probes: probes(), version: "1.2.3", nowMs: () => T0 });
    const r = await ask(() => readiness.ready());
    expect(r.status).toBe(200);
    expect(r.type).toBe(HEALTH_CONTENT_TYPE);
    expect(r.body.status).toBe("pass");
    expect(r.body.version).toBe("1.2.3");
    expect(statuses(r.body)).toEqual({
      "database:writable": "pass",
      "dispatcher:heartbeat": "pass",
      "listeners:up": "pass,pass",
      "dkim:published": "pass",
      "database:checkpoints": "pass",
      "database:retention": "pass",
    });
  });

  test("a key not yet in DNS and failing checkpoints warn: still 200", async () => {
    const readiness = createReadiness({
      probes: probes({
        ownKeys: () => [{ domain: "example.com", visible: false }],
        problems: () => [
          { id: "checkpoints", text: "WAL checkpoints cannot complete" },
          { id: "risky-setting:trust", text: "a risky setting is not a readiness matter" },
        ],
      }),
      version: "1",
      nowMs: () => T0,
    });
    const r = await ask(() => readiness.ready());
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("warn");
    expect(r.body.checks["dkim:published"]).toEqual([
      {
        status: "warn",
        componentId: "example.com",
        output: "isched's DKIM key is not visible in DNS yet: outbound iSchedule waits",
        time: new Date(T0).toISOString(),
      },
    ]);
    expect(r.body.checks["database:checkpoints"]![0]!.output).toBe("WAL checkpoints cannot complete");
    expect(Object.keys(r.body.checks)).not.toContain("risky-setting");
  });

  test("with --sign-unpublished a key not in DNS is the operator's choice: pass", async () => {
    const readiness = createReadiness({
      probes: probes({ ownKeys: () => [{ domain: "example.com", visible: false }], signUnpublished: true }),
      version: "1",
      nowMs: () => T0,
    });
    expect((await readiness.ready()).status).toBe("pass");
  });

  test("a stale dispatcher, one listener down: 503, fail, saying which", async () => {
    const readiness = createReadiness({
      probes: probes({
        dispatcherHeartbeatMs: () => T0 - 90_000,
        listeners: () => [
          { name: "--listen", up: true },
          { name: "--smtp-listen", up: false },
        ],
      }),
      version: "1",
      nowMs: () => T0,
    });
    const r = await ask(() => readiness.ready());
    expect(r.status).toBe(503);
    expect(r.body.status).toBe("fail");
    expect(r.body.checks["dispatcher:heartbeat"]![0]!.output).toBe("no heartbeat for 90 s");
    expect(r.body.checks["listeners:up"]!.map((c) => [c.componentId, c.status])).toEqual([
      ["--listen", "pass"],
      ["--smtp-listen", "fail"],
    ]);
  });

  test("a dispatcher not started yet fails", async () => {
    const readiness = createReadiness({
      probes: probes({ dispatcherHeartbeatMs: () => undefined }),
      version: "1",
      nowMs: () => T0,
    });
    expect((await readiness.ready()).checks["dispatcher:heartbeat"]![0]).toMatchObject({
      status: "fail",
      output: "the dispatcher has not started",
    });
  });

  test("a probe that does not answer in time fails", async () => {
    const readiness = createReadiness({
      probes: probes({ databaseWritable: () => new Promise(() => {}) }),
      version: "1",
      probeTimeoutMs: 20,
    });
    expect((await readiness.ready()).checks["database:writable"]![0]).toMatchObject({
      status: "fail",
      output: "no answer within 20 ms",
    });
  });

  test("answers are reused for a second: a flood of /readyz costs one write a second", async () => {
    let writes = 0;
    let t = T0;
    const readiness = createReadiness({
      probes: probes({ databaseWritable: () => void writes++ }),
      version: "1",
      nowMs: () => t,
    });
    await Promise.all(Array.from({ length: 50 }, () => readiness.ready()));
    t += 999;
    await readiness.ready();
    expect(writes).toBe(1);
    t += 1;
    await readiness.ready();
    expect(writes).toBe(2);
  });
});

// SQLite only: the probe's SQLite form, against a file's write lock, read-only mode and free space.
describe("the database probe", () => {
  test("writes to a real database file; fails while another connection holds the write lock, or on a read-only one", async () => {
    const path = tempDatabasePath();
    const db = openDatabase(path);
    db.run("PRAGMA busy_timeout = 50");
    let now = T0;
    const readiness = createReadiness({
      probes: probes({ databaseWritable: () => probeWrite(db, now) }),
      version: "1",
      nowMs: () => now,
    });
    expect((await readiness.ready()).checks["database:writable"]![0]!.status).toBe("pass");
    expect(getSetting(db, PROBE_SETTING)).toBe(String(T0));

    const other = new Database(path);
    other.run("BEGIN IMMEDIATE");
    now += 1000;
    const locked = await readiness.ready();
    expect(locked.status).toBe("fail");
    expect(locked.checks["database:writable"]![0]!.output).toBe("the database takes no write");
    other.run("ROLLBACK");
    other.close();

    const readOnly = openDatabase(path, { readOnly: true });
    const ro = createReadiness({
      probes: probes({ databaseWritable: () => probeWrite(readOnly, now) }),
      version: "1",
    });
    expect((await ro.ready()).status).toBe("fail");
    readOnly.close();
    db.close();
  });
  test("fails when the data folder's file system has less room than a few messages need, before writing", () => {
    const db = openDatabase(tempDatabasePath());
    const room = (free: number) => ({ dir: "/data", freeBytes: () => free });
    expect(() => probeWrite(db, T0, room(MIN_FREE_BYTES - 1))).toThrow(
      "the file system of the database has 1048575 bytes free",
    );
    expect(getSetting(db, PROBE_SETTING)).toBeUndefined();
    probeWrite(db, T0, room(MIN_FREE_BYTES));
    expect(getSetting(db, PROBE_SETTING)).toBe(String(T0));
    db.close();
  });
});

describe("/healthz", () => {
  test("passes whenever the process answers", async () => {
    const readiness = createReadiness({
      probes: probes({
        databaseWritable: () => {
          throw new Error("disk full");
        },
      }),
      version: "1",
      nowMs: () => T0,
    });
    const r = await ask(async () => readiness.live());
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      status: "pass",
      version: "1",
      checks: { "process:alive": [{ status: "pass", time: new Date(T0).toISOString() }] },
    });
  });
});
