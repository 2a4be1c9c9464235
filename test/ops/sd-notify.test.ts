import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import {
  createNotifier,
  notification,
  sendNotification,
  socketAddress,
  watchdogIntervalMs,
} from "../../src/ops/sd-notify.ts";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { type NotifyReceiver, startNotifyReceiver } from "../support/notify-receiver.ts";
import { running, serveProcess } from "../support/serve-process.ts";

const receivers: NotifyReceiver[] = [];
afterEach(() => {
  for (const r of receivers.splice(0)) r.stop();
  removeTempDirs();
});

async function receiver(o: { dir: string } | { abstract: string }): Promise<NotifyReceiver> {
  const r = await startNotifyReceiver(o);
  receivers.push(r);
  return r;
}

describe("the notification datagram", () => {
  test("one KEY=value line per field; a newline in a value cannot start another assignment", () => {
    expect(notification({ READY: 1, STATUS: "migrating\nschema 9", MAINPID: 42 })).toBe(
      "READY=1\nSTATUS=migrating schema 9\nMAINPID=42",
    );
    expect(() => notification({ "READY=1\nX": 1 })).toThrow("is not a notification variable");
  });

  test("the socket address: a path with its NUL, an abstract name after a NUL, nothing else", () => {
    const path = socketAddress("/run/systemd/notify") as Uint8Array;
    expect([...path.slice(0, 3)]).toEqual([1, 0, "/".charCodeAt(0)]);
    expect(path.length).toBe(2 + "/run/systemd/notify".length + 1);
    const abstract = socketAddress("@isched/notify") as Uint8Array;
    expect([...abstract.slice(0, 4)]).toEqual([1, 0, 0, "i".charCodeAt(0)]);
    expect(abstract.length).toBe(2 + 1 + "isched/notify".length);
    expect(socketAddress("run/notify")).toBe(
      "NOTIFY_SOCKET=run/notify is neither an absolute path nor @abstract",
    );
    expect(socketAddress(`/${"x".repeat(107)}`)).toBe("NOTIFY_SOCKET is longer than 107 bytes");
  });

  test("the watchdog is ours when WATCHDOG_USEC is set and WATCHDOG_PID is unset or our pid", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 7)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 7)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "8" }, 7)).toBeUndefined();
    expect(watchdogIntervalMs({}, 7)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "soon" }, 7)).toBeUndefined();
  });
});

describe("sending to a real datagram socket (socat listening)", () => {
  test("on a path: READY, STATUS, STOPPING, WATCHDOG, RELOADING and EXTEND_TIMEOUT_USEC arrive as sent", async () => {
    const r = await receiver({ dir: tempDir() });
    const n = createNotifier({ env: { NOTIFY_SOCKET: r.socket }, pid: 4242, monotonicUs: () => 123456789n });
    expect(n.enabled).toBe(true);
    expect(n.ready("serving example.com")).toEqual({ sent: true });
    await r.waitFor("READY=1\nMAINPID=4242\nSTATUS=serving example.com");
    expect(n.reloading()).toEqual({ sent: true });
    await r.waitFor("RELOADING=1\nMONOTONIC_USEC=123456789");
    expect(n.extendTimeout(30_000)).toEqual({ sent: true });
    await r.waitFor("EXTEND_TIMEOUT_USEC=30000000");
    expect(n.watchdog()).toEqual({ sent: true });
    await r.waitFor("WATCHDOG=1");
    expect(n.stopping("draining 3 deliveries")).toEqual({ sent: true });
    await r.waitFor("STOPPING=1\nSTATUS=draining 3 deliveries");
  });

  test("on an abstract socket (NOTIFY_SOCKET=@name)", async () => {
    const name = `isched-test-${process.pid}-${Date.now()}`;
    const r = await receiver({ abstract: name });
    expect(sendNotification(`@${name}`, { READY: 1 })).toEqual({ sent: true });
    await r.waitFor("READY=1");
  });

  test("nobody listening: the result says why, and nothing throws", () => {
    const dir = tempDir();
    expect(sendNotification(join(dir, "absent"), { READY: 1 })).toEqual({
      sent: false,
      reason: `sendto ${join(dir, "absent")} failed: ENOENT`,
    });
    expect(createNotifier({ env: {} }).ready()).toEqual({ sent: false, reason: "NOTIFY_SOCKET is not set" });
    expect(createNotifier({ env: {} }).enabled).toBe(false);
  });

  test("from an executable built with bun build --compile, as dist/isched is", async () => {
    const dir = tempDir();
    const exe = join(dir, "notify-main");
    const build = spawnSync(
      process.execPath,
      ["build", "--compile", join(import.meta.dir, "_notify-main.ts"), "--outfile", exe],
      { encoding: "utf8" },
    );
    expect(build.status, build.stderr).toBe(0);
    for (const where of [{ dir }, { abstract: `isched-compiled-${process.pid}-${Date.now()}` }]) {
      const r = await receiver(where);
      const run = spawnSync(exe, ["READY=1", "STATUS=compiled"], {
        encoding: "utf8",
        env: { ...process.env, NOTIFY_SOCKET: r.socket },
      });
      expect(run.stdout).toBe('{"sent":true}\n{"sent":true}\n');
      await r.waitFor("READY=1STATUS=compiled");
    }
  }, 60_000);
});

describe("dist/isched serve tells its supervisor (NOTIFY_SOCKET on a socat listener)", () => {
  const serveA = async (dir: string, env: Record<string, string>) =>
    running(
      await serveProcess(
        [
          "--domain",
          "a.test",
          "--data",
          join(dir, "data"),
          "--listen",
          "127.0.0.1:0",
          "--console",
          "127.0.0.1:0",
        ],
        { env },
      ),
    );

  test("READY=1 with MAINPID and STATUS once it listens, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 at SIGTERM, in that order", async () => {
    const dir = tempDir();
    const r = await receiver({ dir });
    // 400 ms: a ping every 200 ms.
    const s = await serveA(dir, { NOTIFY_SOCKET: r.socket, WATCHDOG_USEC: "400000" });
    try {
      await r.waitFor("READY=1");
      // READY came once the endpoint listens and the start-up summary (keys loaded) was printed.
      expect((await fetch(`${s.url}/.well-known/ischedule?action=capabilities`)).status).toBe(200);
      expect(s.stdout()).toContain("isched is serving a.test");
      await r.waitFor("WATCHDOG=1WATCHDOG=1WATCHDOG=1");
      s.process.kill("SIGTERM");
      expect(await s.process.exited).toBe(0);
      await r.waitFor("STOPPING=1");
      // Datagrams arrive one after another without separators: the whole stream, in order, and
      // nothing (no watchdog ping) after STOPPING.
      const escaped = s.url.replace(/[.:/]/g, (c) => `\\${c}`);
      expect(r.received()).toMatch(
        new RegExp(
          `^READY=1\\nMAINPID=${s.process.pid}\\nSTATUS=serving a\\.test at ${escaped}(WATCHDOG=1){3,}STOPPING=1\\nSTATUS=stopping: finishing delivery attempts and closing the database \\(20s at most\\)$`,
        ),
      );
    } finally {
      s.process.kill("SIGKILL");
    }
  }, 60_000);

  test("a SIGHUP is RELOADING=1 (with MONOTONIC_USEC) and then READY=1 with how the reload went", async () => {
    const dir = tempDir();
    const r = await receiver({ dir });
    const s = await serveA(dir, { NOTIFY_SOCKET: r.socket });
    try {
      await r.waitFor("READY=1");
      const atStart = r.received().length;
      s.process.kill("SIGHUP");
      await r.waitFor("STATUS=reloaded");
      expect(r.received().slice(atStart)).toMatch(
        new RegExp(
          `^RELOADING=1\\nMONOTONIC_USEC=\\d+\\nSTATUS=reloading certificates, keys and secretsREADY=1\\nMAINPID=${s.process.pid}\\nSTATUS=reloaded: nothing changed$`,
        ),
      );
      // Still serving after the reload.
      expect((await fetch(`${s.url}/.well-known/ischedule?action=capabilities`)).status).toBe(200);
      s.process.kill("SIGTERM");
      expect(await s.process.exited).toBe(0);
    } finally {
      s.process.kill("SIGKILL");
    }
  }, 60_000);

  test("without NOTIFY_SOCKET serve starts and stops as before, and logs nothing about notifications", async () => {
    expect(process.env.NOTIFY_SOCKET).toBeUndefined();
    const s = await serveA(tempDir(), { WATCHDOG_USEC: "400000" });
    s.process.kill("SIGTERM");
    expect(await s.process.exited).toBe(0);
    expect(s.stderr()).not.toMatch(/notify/i);
  }, 60_000);
});
