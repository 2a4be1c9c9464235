/**
 * Replacing the HTTPS certificate while clients keep sending requests, over real sockets: every
 * request must succeed, new connections must get the new certificate, and the old backend must stop.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import { startHotTlsListener } from "../../src/acme/hot-tls-listener.ts";
import { createTestCa } from "../support/pki.ts";
import { startRequestLoop } from "../support/request-loop.ts";

const ca = createTestCa();
afterAll(() => ca.remove());

function peerSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca: ca.caCertPem, servername: "localhost" }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on("error", reject);
  });
}

describe("the hot TLS listener", () => {
  test("a client loop sees no failed request while the certificate is replaced ten times", async () => {
    const certs = [ca.issue(["localhost", "127.0.0.1"]), ca.issue(["localhost", "127.0.0.1"])];
    const listener = startHotTlsListener({
      host: "127.0.0.1",
      port: 0,
      tls: { cert: certs[0]!.certPem, key: certs[0]!.keyPem },
      fetch: async (request) => new Response(`got ${(await request.text()).length}`),
    });
    const clients = startRequestLoop({
      url: `https://127.0.0.1:${listener.port}/`,
      ca: ca.caCertPem,
      bodyBytes: 1000,
      expect: "got 1000",
    });
    try {
      for (let i = 1; i <= 10; i++) {
        await Bun.sleep(100);
        const c = certs[i % 2]!;
        const swapped = listener.setCertificate({ cert: c.certPem, key: c.keyPem });
        // New connections get the new certificate at once, before the old backend has drained.
        const serial = await peerSerial(listener.port);
        expect(serial).toBe(new X509Certificate(c.certPem).serialNumber);
        await swapped;
      }
      await Bun.sleep(100);
    } finally {
      const { ok, failures } = await clients.stop();
      await listener.stop();
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(100);
    }
  });

  test("the handler sees the real client address, not the front's", async () => {
    const c = ca.issue(["localhost"]);
    let seen: string | undefined;
    const listener = startHotTlsListener({
      host: "127.0.0.1",
      port: 0,
      tls: { cert: c.certPem, key: c.keyPem },
      fetch: (request, server) => {
        seen = listener.clientAddress(request, server)?.address;
        return new Response("ok");
      },
    });
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = tls.connect(
          {
            host: "127.0.0.1",
            port: listener.port,
            localAddress: "127.0.0.2",
            ca: ca.caCertPem,
            servername: "localhost",
          } as tls.ConnectionOptions,
          () => s.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        );
        let text = "";
        s.on("data", (d) => {
          text += d.toString();
        });
        s.on("end", () => resolve(text));
        s.on("error", reject);
      });
      expect(answer).toStartWith("HTTP/1.1 200");
      expect(seen).toBe("127.0.0.2");
    } finally {
      await listener.stop();
    }
  });
});
