/**
 * SIGHUP to a running process reloads its certificate through src/ops/reloader.ts, without a failed
 * request from clients that keep sending meanwhile; a wrong file changes nothing; systemd hears
 * RELOADING=1 and READY=1 around each reload.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fingerprintSources } from "../../src/ops/reload-plan.ts";
import { createReloader } from "../../src/ops/reloader.ts";
import { removeTempDirs, tempDir } from "../store/_temp-dir.ts";
import { startNotifyReceiver } from "../support/notify-receiver.ts";
import { createTestCa, peerSerial } from "../support/pki.ts";
import { startRequestLoop } from "../support/request-loop.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  removeTempDirs();
});

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

/** Lines of the child's standard error (its JSON log), as they come. */
function lines(child: ChildProcess): {
  all: string[];
  waitFor(pred: (l: Record<string, string>) => boolean): Promise<Record<string, string>>;
} {
  const all: string[] = [];
  let buffer = "";
  child.stderr!.on("data", (c: Buffer) => {
    buffer += c.toString("utf8");
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    all.push(...parts);
  });
  return {
    all,
    async waitFor(pred) {
      for (let i = 0; i < 1000; i++) {
        for (const l of all) {
          try {
            const o = JSON.parse(l) as Record<string, string>;
            if (pred(o)) return o;
          } catch {}
        }
        await Bun.sleep(10);
      }
      throw new Error(`no such log line; got:\n${all.join("\n")}`);
    },
  };
}

describe("SIGHUP", () => {
  test("swaps the certificate while clients keep sending; a wrong key changes nothing", async () => {
    const ca = createTestCa();
    cleanups.push(() => ca.remove());
    const dir = tempDir();
    const [a, b] = [ca.issue(["localhost", "127.0.0.1"]), ca.issue(["localhost", "127.0.0.1"])];
    const certFile = join(dir, "tls.pem");
    const keyFile = join(dir, "tls.key");
    copyFileSync(a.certFile, certFile);
    copyFileSync(a.keyFile, keyFile);
    const notify = await startNotifyReceiver({ dir });
    cleanups.push(() => notify.stop());
    const child = spawn(process.execPath, [join(import.meta.dir, "_reload-main.ts"), certFile, keyFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NOTIFY_SOCKET: notify.socket },
    });
    cleanups.push(() => child.kill("SIGKILL"));
    const log = lines(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (c: Buffer) => {
        const m = /listening (\d+)/.exec(c.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${log.all.join("\n")}`)));
    });
    await notify.waitFor("READY=1");
    expect(await peerSerial(port, ca.caCertPem)).toBe(serialOf(a.certPem));

    const clients = startRequestLoop({ url: `https://127.0.0.1:${port}/`, ca: ca.caCertPem, expect: "ok\n" });
    try {
      await Bun.sleep(200);
      copyFileSync(b.certFile, certFile);
      copyFileSync(b.keyFile, keyFile);
      child.kill("SIGHUP");
      const done = await log.waitFor((l) => l.msg === "reload: now in use" && l.item === "tls");
      expect(done.level).toBe("info");
      expect(await peerSerial(port, ca.caCertPem)).toBe(serialOf(b.certPem));
      await notify.waitFor("RELOADING=1");
      await notify.waitFor("STATUS=reloaded: tls");

      // A key that is not the certificate's: refused in one line, the certificate in use stays.
      copyFileSync(a.keyFile, keyFile);
      child.kill("SIGHUP");
      const refused = await log.waitFor((l) => l.msg?.startsWith("reload refused") === true);
      expect(refused).toMatchObject({
        level: "error",
        msg: `reload refused, nothing changed: --tls-key ${keyFile}: not the private key of the certificate in --tls-cert ${certFile}`,
      });
      expect(await peerSerial(port, ca.caCertPem)).toBe(serialOf(b.certPem));
      await notify.waitFor("STATUS=reload refused: --tls-key");
      await Bun.sleep(200);
    } finally {
      const { ok, failures } = await clients.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(20);
    }
    // Still alive and serving after both.
    expect(child.exitCode).toBeNull();
  }, 30_000);
});

describe("the reloader", () => {
  /** A webhook secret file and a reloader over it whose applier takes `applyMs`. */
  function setup(o: { applyMs?: number; withApplier?: boolean } = {}) {
    const dir = tempDir();
    const file = join(dir, "secret");
    writeFileSync(file, "one\n");
    const sources = { webhookSecretFile: file };
    const applied: string[] = [];
    const logged: string[] = [];
    const reloader = createReloader({
      sources,
      loaded: fingerprintSources(sources),
      appliers:
        o.withApplier === false
          ? {}
          : {
              "webhook-secret": async (c) => {
                await Bun.sleep(o.applyMs ?? 0);
                applied.push(c.secret);
              },
            },
      log: {
        log: (level, message, fields) => logged.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
      },
    });
    return { file, reloader, applied, logged };
  }

  test("reloads do not overlap: SIGHUPs during one make one more run after it", async () => {
    const { file, reloader, applied } = setup({ applyMs: 50 });
    writeFileSync(file, "two\n");
    const first = reloader.reload();
    await Bun.sleep(10);
    writeFileSync(file, "three\n");
    const more = [reloader.reload(), reloader.reload(), reloader.reload()];
    expect(more[0]).toBe(more[1]);
    await Promise.all([first, ...more]);
    expect(applied).toEqual(["two", "three"]);
  });

  test("a changed file nobody can take is reported, not silently kept", async () => {
    const { file, reloader, logged } = setup({ withApplier: false });
    writeFileSync(file, "two\n");
    const outcome = await reloader.reload();
    expect(outcome.errors).toEqual([
      "webhook-secret changed, and this configuration takes it only at a restart",
    ]);
    expect(logged).toEqual(['warn reload: a changed file needs a restart {"item":"webhook-secret"}']);
  });

  test("nothing changed: said once, nothing applied", async () => {
    const { reloader, applied, logged } = setup();
    expect(await reloader.reload()).toEqual({ applied: [], unchanged: ["webhook-secret"], errors: [] });
    expect(applied).toEqual([]);
    expect(logged).toEqual(["info reload: no file changed {}"]);
  });
});
