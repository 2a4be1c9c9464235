/**
 * Fake-peer cases: isched delivers outbound to a fake iSchedule receiver (_fake-peer.ts) through the
 * static route `fake.test` (and `capN.test` for the capabilities cases), and the receiver answers
 * each delivery as its case says (_peer-post-answers.ts, _peer-capabilities.ts). The case's recipient
 * `mailto:pN-…@fake.test` tells the fake peer which answer is its.
 */
import type { ApiTarget } from "./_api-request.ts";
import type { Case } from "./_cases.ts";
import type { PeerAnswer, PeerRequest } from "./_fake-peer.ts";
import { CAPABILITIES, CAPABILITY_CASES, xmlAnswer } from "./_peer-capabilities.ts";
import { answering, checkOutcome, deliverTo, recipientOf } from "./_peer-delivery.ts";
import { POST_CASES, SLOW_POST_CASES } from "./_peer-post-answers.ts";
import { CAPABILITY_ROUTES, FAKE } from "./_world.ts";

if (CAPABILITY_CASES.length > CAPABILITY_ROUTES)
  throw new Error(
    `${CAPABILITY_CASES.length} capabilities cases, but the server has ${CAPABILITY_ROUTES} routes for them`,
  );

/** What the fake peer answers: capabilities for the routes, each case's answer for its recipient. */
export function peerAnswerer(): (r: PeerRequest, port: number) => PeerAnswer {
  return (r, port) => {
    const caps = /^\/caps\/(\d+)/.exec(r.target);
    if (r.method === "GET") {
      if (caps) return CAPABILITY_CASES[Number(caps[1])]?.[1](r) ?? { status: 404 };
      return xmlAnswer(CAPABILITIES);
    }
    const n = /^mailto:p(\d+)-/i.exec(recipientOf(r))?.[1];
    const all = [...POST_CASES, ...SLOW_POST_CASES];
    if (n !== undefined && all[Number(n)] && !caps) return all[Number(n)]![1](r, port);
    return answering("2.0;Success")(r, port);
  };
}

export function peerCases(target: () => ApiTarget): Case[] {
  const cases: Case[] = [];
  const all = [...POST_CASES, ...SLOW_POST_CASES];
  for (const [i, [what, , expected]] of all.entries()) {
    const slow = i >= POST_CASES.length;
    cases.push({
      area: "fake peer",
      name: `a peer answering ${what}`,
      ...(slow && { slow: true }),
      async run() {
        const r = await deliverTo(
          target(),
          `mailto:p${i}-${crypto.randomUUID().slice(0, 8)}@${FAKE}`,
          slow ? 40_000 : 20_000,
        );
        return r.delivery ? { problems: checkOutcome(r.delivery, expected) } : r;
      },
    });
  }
  for (const [i, [what, , expected]] of CAPABILITY_CASES.entries()) {
    cases.push({
      area: "fake peer",
      name: `a peer whose capabilities are ${what}`,
      async run() {
        const r = await deliverTo(
          target(),
          `mailto:x${crypto.randomUUID().slice(0, 8)}@cap${i}.test`,
          20_000,
        );
        return r.delivery ? { problems: checkOutcome(r.delivery, expected) } : r;
      },
    });
  }
  return cases;
}
