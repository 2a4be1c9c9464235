/**
 * serveApp() behind the TLS front: the routes still learn the real client's address from
 * `app.server.requestIP()` (address-based trust, --trust D=unsigned:CIDR, and the sign-in throttle
 * depend on it), although the backend sees every connection come from the front on 127.0.0.1.
 */
import { afterAll, expect, test } from "bun:test";
import { request } from "node:https";
import { type AnyElysia, Elysia } from "elysia";
import { serveApp } from "../../src/http/serve-app.ts";
import { createTestCa } from "../support/pki.ts";

const ca = createTestCa();
afterAll(() => ca.remove());

/** GET / from `localAddress`, trusting the test CA; the answer's text. */
function getFrom(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        localAddress,
        ca: ca.caCertPem,
        servername: "localhost",
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve(text));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("behind the TLS front, app.server.requestIP() gives the client's own address, before and after a certificate swap", async () => {
  const [a, b] = [ca.issue(["localhost"]), ca.issue(["localhost"])];
  const app: AnyElysia = new Elysia();
  app.get("/", ({ request }): string => app.server?.requestIP(request)?.address ?? "none");
  const served = serveApp(app, {
    host: "127.0.0.1",
    port: 0,
    tls: { cert: a.certPem, key: a.keyPem },
    idleTimeoutS: 5,
  });
  try {
    expect(await getFrom(served.port, "127.0.0.2")).toBe("127.0.0.2");
    expect(await getFrom(served.port, "127.0.0.3")).toBe("127.0.0.3");
    await served.setCertificate!({ cert: b.certPem, key: b.keyPem });
    expect(await getFrom(served.port, "127.0.0.2")).toBe("127.0.0.2");
  } finally {
    await served.stop();
  }
});
