/** The port-80 listener over real sockets: challenges answered, our names redirected, others refused. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHttpChallenges } from "../../src/acme/http-challenges.ts";
import { type AcmeHttpListener, startAcmeHttpListener } from "../../src/acme/http-listener.ts";
import { rawExchange } from "../support/raw-http.ts";

const TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
const challenges = createHttpChallenges();
let listener: AcmeHttpListener;
let base: string;

beforeAll(() => {
  listener = startAcmeHttpListener({
    host: "127.0.0.1",
    port: 0,
    challenges,
    names: ["isched.example.test"],
    httpsPort: 8443,
  });
  base = `http://127.0.0.1:${listener.port}`;
  challenges.add(TOKEN, `${TOKEN}.thumbprint`);
});
afterAll(() => listener.stop());

describe("the ACME HTTP listener", () => {
  test("answers a challenge it holds with the key authorization", async () => {
    const r = await fetch(`${base}/.well-known/acme-challenge/${TOKEN}`, {
      headers: { Host: "isched.example.test" },
    });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe(`${TOKEN}.thumbprint`);
  });
  test("answers 404 for a token it does not hold, and after the challenge is removed", async () => {
    const other = await fetch(`${base}/.well-known/acme-challenge/${"A".repeat(43)}`);
    expect(other.status).toBe(404);
    challenges.add("B".repeat(43), "x");
    challenges.remove("B".repeat(43));
    expect((await fetch(`${base}/.well-known/acme-challenge/${"B".repeat(43)}`)).status).toBe(404);
  });
  test("redirects a request for our name to the same path on https, keeping the method (308)", async () => {
    const r = await fetch(`${base}/.well-known/ischedule?action=capabilities`, {
      headers: { Host: "ISCHED.example.test:80" },
      redirect: "manual",
    });
    expect(r.status).toBe(308);
    expect(r.headers.get("location")).toBe(
      "https://isched.example.test:8443/.well-known/ischedule?action=capabilities",
    );
  });
  test("is not an open redirect: another host, an IP address or no Host gets 404", async () => {
    for (const host of ["evil.example", "127.0.0.1"]) {
      const r = await fetch(`${base}/`, { headers: { Host: host }, redirect: "manual" });
      expect(r.status).toBe(404);
      expect(r.headers.get("location")).toBeNull();
    }
    const raw = await rawExchange({
      port: listener.port,
      request: new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"),
    });
    expect(raw.status).toBe(404);
  });
  test("refuses to hold a token that is not base64url", () => {
    expect(() => challenges.add("../../etc/passwd", "x")).toThrow(RangeError);
  });
});
