/**
 * Who gets into the console: every API route refuses an unauthenticated call (401) and a cross-site
 * form post (403), the API token keeps working for programs, sessions need their CSRF token for
 * changes, failed sign-ins slow down, the setup token only sets the first password.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSetupToken } from "../../src/console/auth.ts";
import { FIRST_DELAY_MS } from "../../src/net/attempt-throttle.ts";
import { rawExchange, requestBytes } from "../support/raw-http.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { type ConsoleServer, PASSWORD, type Session, samplePath, startConsoleServer } from "./_console.ts";

interface RouteInfo {
  method: string;
  path: string;
  access: "public" | "read" | "change";
}

onBothBackends("console access", (b) => {
  describe("every API route", () => {
    let c: ConsoleServer;
    let routes: RouteInfo[];
    let session: Session;

    beforeAll(async () => {
      c = await startConsoleServer({ database: await b.serverDatabase() });
      const res = await c.token("/api/v1/routes");
      routes = ((await res.json()) as { routes: RouteInfo[] }).routes;
      session = await c.signIn();
    });
    afterAll(() => c.close());

    test("the route list covers the console's sections", () => {
      const paths = routes.map((r) => `${r.method} ${r.path}`);
      for (const p of [
        "GET /api/v1/overview",
        "GET /api/v1/messages",
        "GET /api/v1/messages/:id",
        "GET /api/v1/events",
        "POST /api/v1/deliveries/retry",
        "PUT /api/v1/peers/:domain/policy",
        "POST /api/v1/peers/:domain/test",
        "GET /api/v1/keys",
        "POST /api/v1/keys/:id/activate",
        "POST /api/v1/tools/verify",
        "POST /api/v1/messages",
      ]) {
        expect(paths).toContain(p);
      }
      expect(routes.length).toBeGreaterThan(25);
    });

    test("refuses an unauthenticated call with 401", async () => {
      for (const r of routes) {
        const res = await c.raw(samplePath(r.path), {
          method: r.method,
          headers: r.method === "GET" ? {} : { "Content-Type": "application/json" },
          body: r.method === "GET" ? undefined : "{}",
        });
        // The sign-in routes refuse a repeated guess from one address with 429 before looking at it;
        // "who is signed in" answers that nobody is (200), and shows nothing else.
        const refused = r.access === "public" && r.method === "POST" && res.status === 429 ? 401 : res.status;
        const whoIs = r.method === "GET" && r.path === "/api/v1/session";
        expect({ route: `${r.method} ${r.path}`, status: refused }).toEqual({
          route: `${r.method} ${r.path}`,
          status: whoIs ? 200 : 401,
        });
        if (whoIs) expect(await res.clone().json()).toEqual({ signedIn: false, setupNeeded: false });
        expect(res.headers.get("content-type")).toContain("application/json");
      }
    });

    test("refuses a cross-site form post with 403, even with a valid session cookie", async () => {
      for (const r of routes) {
        const res = await c.raw(samplePath(r.path), {
          method: "POST",
          headers: {
            Cookie: session.cookie,
            Origin: "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
            "Content-Type": "application/x-www-form-urlencoded",
          },
          body: "trust=unsigned&allowFrom=0.0.0.0/0&password=attackerpassword",
        });
        expect({ route: r.path, status: res.status }).toEqual({ route: r.path, status: 403 });
      }
      // Nothing changed: the peer has no console policy, and the session still works.
      const peer = await c.session(session, "/api/v1/peers/peer.example");
      expect(((await peer.json()) as { policy: { source: string } }).policy.source).toBe("default");
    });

    test("refuses a form post from another origin without Sec-Fetch-Site (an older browser)", async () => {
      const signInPaths = new Set(routes.filter((x) => x.access === "public").map((x) => x.path));
      for (const r of routes.filter((x) => !signInPaths.has(x.path))) {
        const res = await c.raw(samplePath(r.path), {
          method: "POST",
          headers: { Cookie: session.cookie, "Content-Type": "text/plain" },
          body: "{}",
        });
        // No CSRF token: a form cannot send the header.
        expect({ route: r.path, status: res.status }).toEqual({ route: r.path, status: 403 });
      }
    });

    test("the API token reads every read route", async () => {
      for (const r of routes.filter(
        (x) => x.method === "GET" && x.access === "read" && !x.path.includes(":"),
      )) {
        if (r.path.endsWith("/events") || r.path.endsWith("/inbox") || r.path.endsWith("/keys/zone"))
          continue;
        const res = await c.token(r.path);
        expect({ route: r.path, status: res.status }).toEqual({ route: r.path, status: 200 });
      }
    });

    test("a wrong API token is 401, not a fall-back to the cookie", async () => {
      const res = await c.raw("/api/v1/overview", {
        headers: { Authorization: "Bearer nope", Cookie: session.cookie },
      });
      expect(res.status).toBe(401);
    });

    test("a console bound to loopback refuses other Host names (DNS rebinding)", async () => {
      const res = await c.raw("/api/v1/overview", {
        headers: { Host: "attacker.example:8081", Cookie: session.cookie },
      });
      expect(res.status).toBe(403);
    });

    test("an empty Host is refused with 403 and a JSON error on every route, never a 500", async () => {
      const port = Number(new URL(c.base).port);
      const answers = await Promise.all(
        routes.map(async (r) => {
          const res = await rawExchange({
            port,
            request: requestBytes({
              method: r.method,
              path: samplePath(r.path),
              fields: [
                ["Host", ""],
                ["Authorization", `Bearer ${c.isched.apiToken}`],
              ],
            }),
          });
          return { route: `${r.method} ${r.path}`, status: res.status, error: JSON.parse(res.text).error };
        }),
      );
      expect(answers).toEqual(
        routes.map((r) => ({
          route: `${r.method} ${r.path}`,
          status: 403,
          error: 'this console answers to localhost, 127.0.0.1 or [::1], not ""',
        })),
      );
    });

    test("the page is served without signing in, with a CSP that allows only its own scripts", async () => {
      const res = await c.raw("/");
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain("Content-Security-Policy");
      expect(html).toMatch(/<script type="module" crossorigin src="\/[^"]+\.js"><\/script>/);
    });
  });

  /**
   * The console's clock, ahead of the real one by `skew.ms`: the sign-in throttle's delays pass by
   * moving it on (the server is given it), not by sleeping.
   */
  function skewedClock() {
    const skew = { ms: 0 };
    return { skew, nowMs: () => Date.now() + skew.ms };
  }

  describe("sessions", () => {
    let c: ConsoleServer;
    const clock = skewedClock();
    beforeAll(async () => {
      c = await startConsoleServer({ database: await b.serverDatabase() }, { nowMs: clock.nowMs });
    });
    afterAll(() => c.close());

    test("sign-in sets an HttpOnly, SameSite=Strict cookie and returns the CSRF token", async () => {
      const res = await c.raw("/api/v1/session", {
        method: "POST",
        headers: { "Content-Type": "application/json", Origin: c.base },
        body: JSON.stringify({ password: PASSWORD }),
      });
      expect(res.status).toBe(200);
      const cookie = res.headers.get("set-cookie") ?? "";
      expect(cookie).toMatch(/^isched_session=[A-Za-z0-9_-]{40,};/);
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("SameSite=Strict");
      expect(cookie).not.toContain("Secure"); // plain HTTP on loopback; Secure under TLS
      expect(((await res.json()) as { csrfToken: string }).csrfToken.length).toBeGreaterThan(20);
    });

    test("a change needs the session's CSRF token", async () => {
      const s = await c.signIn();
      const body = JSON.stringify({ trust: "deny" });
      const without = await c.raw("/api/v1/peers/peer.example/policy", {
        method: "PUT",
        headers: { Cookie: s.cookie, "Content-Type": "application/json", Origin: c.base },
        body,
      });
      expect(without.status).toBe(403);
      const wrong = await c.raw("/api/v1/peers/peer.example/policy", {
        method: "PUT",
        headers: { Cookie: s.cookie, "Content-Type": "application/json", "X-CSRF-Token": "x".repeat(32) },
        body,
      });
      expect(wrong.status).toBe(403);
      const right = await c.session(s, "/api/v1/peers/peer.example/policy", {
        method: "PUT",
        json: { trust: "deny" },
      });
      expect(right.status).toBe(200);
    });

    test("sign-out ends the session and clears the cookie", async () => {
      const s = await c.signIn();
      expect((await c.session(s, "/api/v1/session")).status).toBe(200);
      const out = await c.session(s, "/api/v1/session", { method: "DELETE" });
      expect(out.status).toBe(200);
      expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
      expect((await c.session(s, "/api/v1/overview")).status).toBe(401);
    });

    test("a new password signs every other session out", async () => {
      const a = await c.signIn();
      const b = await c.signIn();
      const res = await c.session(a, "/api/v1/admin/password", {
        method: "PUT",
        json: { current: PASSWORD, password: "another good password" },
      });
      expect(res.status).toBe(200);
      expect((await c.session(b, "/api/v1/overview")).status).toBe(401);
      // Put it back with the API token (what `isched admin set-password` does while isched runs).
      expect(
        (await c.token("/api/v1/admin/password", { method: "PUT", json: { password: PASSWORD } })).status,
      ).toBe(200);
    });

    test("failed sign-ins slow the address down: 429 with Retry-After before the delay is over", async () => {
      const attempt = () =>
        c.raw("/api/v1/session", {
          method: "POST",
          headers: { "Content-Type": "application/json", Origin: c.base },
          body: JSON.stringify({ password: "wrong password" }),
        });
      expect((await attempt()).status).toBe(401);
      const second = await attempt();
      expect(second.status).toBe(429);
      expect(Number(second.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      clock.skew.ms += FIRST_DELAY_MS + 50;
      expect((await attempt()).status).toBe(401);
      clock.skew.ms += 2 * FIRST_DELAY_MS + 50;
      expect((await c.signIn()).cookie).toContain("isched_session=");
    });
  });

  describe("guesses sent at once", () => {
    let c: ConsoleServer;
    beforeAll(async () => {
      c = await startConsoleServer({ database: await b.serverDatabase() });
    });
    afterAll(() => c.close());

    /** POST /api/v1/session with a wrong password, over its own connection from `localAddress`. */
    const wrongSignIn = (localAddress: string) => {
      const port = Number(new URL(c.base).port);
      return rawExchange({
        port,
        localAddress,
        request: requestBytes({
          path: "/api/v1/session",
          fields: [
            ["Host", `127.0.0.1:${port}`],
            ["Origin", c.base],
            ["Content-Type", "application/json"],
          ],
          body: JSON.stringify({ password: "a wrong guess" }),
        }),
      });
    };
    const tally = (statuses: number[]) => ({
      checked: statuses.filter((s) => s === 401).length,
      throttled: statuses.filter((s) => s === 429).length,
    });

    test("40 wrong passwords sent in parallel from one address: one is checked, 39 get 429", async () => {
      const answers = await Promise.all(Array.from({ length: 40 }, () => wrongSignIn("127.0.0.1")));
      expect(tally(answers.map((a) => a.status))).toEqual({ checked: 1, throttled: 39 });
      expect(JSON.parse(answers.find((a) => a.status === 429)!.text).error).toMatch(
        /^too many failed attempts from your address: wait \d+ s$/,
      );
    });

    test("40 wrong passwords sent in parallel from 40 addresses: the global ceiling holds", async () => {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => wrongSignIn(`127.0.1.${i + 1}`)),
      );
      const t = tally(answers.map((a) => a.status));
      expect(t.checked + t.throttled).toBe(40);
      // At most two checks run at a time, and at most 20 guesses go through a full bucket.
      expect(t.checked).toBeLessThanOrEqual(20);
      expect(answers.map((a) => a.text).join("\n")).toContain(
        "too many failed attempts from all addresses together",
      );
    });
  });

  describe("the setup token", () => {
    test("sets the first password once; no password, no sign-in", async () => {
      const clock = skewedClock();
      const c = await startConsoleServer(
        { database: await b.serverDatabase() },
        { password: null, nowMs: clock.nowMs },
      );
      try {
        const who = await c.raw("/api/v1/session");
        expect(who.status).toBe(200);
        expect(await who.json()).toEqual({ signedIn: false, setupNeeded: true });
        const token = (await createSetupToken(c.isched.store))!;
        const post = (body: unknown) =>
          c.raw("/api/v1/setup", {
            method: "POST",
            headers: { "Content-Type": "application/json", Origin: c.base },
            body: JSON.stringify(body),
          });
        expect((await post({ token: "guess", password: "a good long password" })).status).toBe(401);
        clock.skew.ms += FIRST_DELAY_MS + 50;
        expect((await post({ token, password: "short" })).status).toBe(400);
        const ok = await post({ token, password: "a good long password" });
        expect(ok.status).toBe(201);
        expect(ok.headers.get("set-cookie")).toContain("HttpOnly");
        clock.skew.ms += 2 * FIRST_DELAY_MS + 50;
        // The token is void once used.
        expect((await post({ token, password: "another long password" })).status).toBe(401);
        clock.skew.ms += FIRST_DELAY_MS + 50;
        expect((await c.signIn("a good long password")).csrf.length).toBeGreaterThan(20);
      } finally {
        await c.close();
      }
    });

    test("a new token replaces the previous one", async () => {
      const c = await startConsoleServer({ database: await b.serverDatabase() }, { password: null });
      try {
        const first = (await createSetupToken(c.isched.store))!;
        const second = (await createSetupToken(c.isched.store))!;
        const res = await c.raw("/api/v1/setup", {
          method: "POST",
          headers: { "Content-Type": "application/json", Origin: c.base },
          body: JSON.stringify({ token: first, password: "a good long password" }),
        });
        expect(res.status).toBe(401);
        expect(second).not.toBe(first);
      } finally {
        await c.close();
      }
    });
  });
});
