/**
 * The bad-input battery: over 1,000 generated cases against the compiled `dist/isched`, run as its
 * own process with every face a stranger or a careless client can reach:
 *
 * - the iSchedule endpoint (battery/_endpoint-*.ts): every header dropped, repeated and garbled in 25
 *   ways, DKIM-Signature tags broken one at a time and key records published wrong, iCalendar bodies
 *   cut, mis-encoded and wrong property by property, bodies too large or too slow, broken framing,
 *   other methods and paths;
 * - the console/API (battery/_api-*.ts): every route GET /api/v1/routes lists, with missing and
 *   wrong credentials, cross-site and rebinding requests, missing CSRF tokens, wrong methods, bodies
 *   that are not JSON, fields of the wrong type or value, bad ids, filters and limits;
 * - the SMTP intake (battery/_smtp-*.ts): commands out of order, bad envelopes, bad AUTH, bad MIME
 *   and iMIP, oversized messages;
 * - a fake iSchedule receiver over TLS (battery/_peer-*.ts) that isched delivers to, answering
 *   hostile or broken XML, odd statuses, redirects, broken HTTP and silence.
 *
 * Each case states its expected answer (an iSchedule 4xx with its error element, a precise JSON
 * error, an SMTP reply code, a recorded delivery state with its reason); a few requests never reach
 * isched because Bun's HTTP parser refuses them first, and those cases expect Bun's bare answer.
 * No client mistake may get a 5xx, the process must not crash, each area must still serve a valid
 * request after each run, and the process's resident memory (VmRSS) may grow by less than 20 MB in
 * the second full run.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { apiBodyCases } from "./battery/_api-bodies.ts";
import { apiParamCases } from "./battery/_api-params.ts";
import type { ApiTarget } from "./battery/_api-request.ts";
import { apiControl, apiRouteCases, type RouteInfo } from "./battery/_api-routes.ts";
import { sessionCases, submissionCases } from "./battery/_api-sessions.ts";
import { AREAS, type Case, describeFailures, runCases } from "./battery/_cases.ts";
import { bodyCases } from "./battery/_endpoint-bodies.ts";
import { dkimCases } from "./battery/_endpoint-dkim.ts";
import { headerCases } from "./battery/_endpoint-headers.ts";
import { httpCases } from "./battery/_endpoint-http.ts";
import { propertyCases } from "./battery/_endpoint-properties.ts";
import { type EndpointTarget, endpointControl } from "./battery/_endpoint-request.ts";
import { peerAnswerer, peerCases } from "./battery/_peer-cases.ts";
import { peerControl } from "./battery/_peer-delivery.ts";
import { describeRun, type FullRun, runAll } from "./battery/_run.ts";
import { smtpCommandCases } from "./battery/_smtp-commands.ts";
import { smtpControl } from "./battery/_smtp-dialog.ts";
import { smtpPartCases } from "./battery/_smtp-imip-parts.ts";
import { smtpMessageCases } from "./battery/_smtp-messages.ts";
import { ADMIN_PASSWORD, startWorld, type World } from "./battery/_world.ts";

/** The second full run may add this much to the server's resident memory. */
const RSS_SECOND_RUN_LIMIT_MB = 20;

let world: World;
let endpoint: EndpointTarget;
let api: ApiTarget;
let routes: RouteInfo[] = [];
let cases: Case[] = [];
let controls: Case[] = [];
const rss: { before?: number; afterFirst?: number; afterSecond?: number } = {};

beforeAll(async () => {
  world = await startWorld({ answer: peerAnswerer() });
  const caps = await fetch(
    `http://127.0.0.1:${world.endpointPort}/.well-known/ischedule?action=capabilities`,
  );
  endpoint = { port: world.endpointPort, serial: Number(caps.headers.get("ischedule-capabilities")) };
  const consoleUrl = `http://127.0.0.1:${world.consolePort}/api/v1`;
  const signIn = await fetch(`${consoleUrl}/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ password: ADMIN_PASSWORD }),
  });
  if (signIn.status !== 200) throw new Error(`signing in failed: ${signIn.status} ${await signIn.text()}`);
  const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0]!;
  const { csrfToken } = (await signIn.json()) as { csrfToken: string };
  api = { port: world.consolePort, token: world.token, session: { cookie, csrf: csrfToken } };
  const listed = await fetch(`${consoleUrl}/routes`, { headers: { Authorization: `Bearer ${world.token}` } });
  routes = ((await listed.json()) as { routes: RouteInfo[] }).routes;
  cases = [
    ...headerCases(() => endpoint),
    ...dkimCases(() => endpoint),
    ...propertyCases(() => endpoint),
    ...bodyCases(() => endpoint),
    ...httpCases(() => endpoint),
    ...apiRouteCases(() => api, routes),
    ...apiBodyCases(() => api, routes),
    ...apiParamCases(() => api),
    ...sessionCases(() => api),
    ...submissionCases(() => api),
    ...smtpCommandCases(() => ({ port: world.smtpPort })),
    ...smtpMessageCases(() => ({ port: world.smtpPort })),
    ...smtpPartCases(() => ({ port: world.smtpPort })),
    ...peerCases(() => api),
  ];
  controls = [
    endpointControl(() => endpoint),
    apiControl(() => api),
    smtpControl(() => ({ port: world.smtpPort })),
    peerControl(() => api),
  ];
  // The baseline is a warm server: every area has served a valid request (JIT, SQLite, key caches).
  const warm = await runCases(controls, 1);
  if (warm.failures.length > 0) throw new Error(describeFailures(warm.failures).join("\n"));
  rss.before = world.rssMb();
}, 60_000);

afterAll(async () => {
  await world?.close();
});

/** What must hold after each run, besides each case's own answer. */
async function afterRun(label: string, run: FullRun): Promise<void> {
  console.log(describeRun(label, run));
  expect(describeFailures(run.failures)).toEqual([]);
  expect(run.serverErrors).toBe(0);
  expect(world.alive()).toBe(true);
  const after = await runCases(controls, 1);
  expect(describeFailures(after.failures)).toEqual([]);
  // A client's mistake is never an internal error: isched (at --log-level warn) logged none.
  expect(world.stderr().match(/^\S+ error .*$/gm) ?? []).toEqual([]);
}

describe("bad-input battery against dist/isched", () => {
  test("has over 1,000 cases with distinct names, in every area, for every API route", () => {
    const perArea = AREAS.map((a) => `${a}: ${cases.filter((c) => c.area === a).length}`).join(", ");
    console.log(`battery: ${cases.length} cases (${perArea})`);
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    expect(new Set(cases.map((c) => `${c.area}: ${c.name}`)).size).toBe(cases.length);
    for (const area of AREAS) expect(cases.filter((c) => c.area === area).length).toBeGreaterThanOrEqual(60);
    for (const r of routes) {
      expect({
        route: `${r.method} ${r.path}`,
        cases: cases.some((c) => c.name.startsWith(`${r.method} ${r.path} `)),
      }).toEqual({
        route: `${r.method} ${r.path}`,
        cases: true,
      });
    }
  });

  test("run 1: every case gets its expected answer, none a 5xx, the server still serves", async () => {
    const run = await runAll(cases);
    rss.afterFirst = world.rssMb();
    await afterRun("run 1", run);
  }, 180_000);

  test(`run 2: the same answers, and resident memory grows by less than ${RSS_SECOND_RUN_LIMIT_MB} MB`, async () => {
    const run = await runAll(cases);
    rss.afterSecond = world.rssMb();
    await afterRun("run 2", run);
    const mb = (n?: number) => `${(n ?? 0).toFixed(1)} MB`;
    console.log(
      `battery RSS of isched (pid ${world.pid}): warm ${mb(rss.before)}, after run 1 ${mb(rss.afterFirst)}, after run 2 ${mb(rss.afterSecond)}; second run +${mb((rss.afterSecond ?? 0) - (rss.afterFirst ?? 0))}`,
    );
    expect(rss.afterFirst).toBeDefined();
    expect(rss.afterSecond! - rss.afterFirst!).toBeLessThan(RSS_SECOND_RUN_LIMIT_MB);
  }, 180_000);
});
