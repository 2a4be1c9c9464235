/**
 * The HTTP-01 solver (RFC 8555 §8.3): puts each challenge's key authorization into the challenge
 * store that the port-80 listener answers from, and takes it out when the CA is done.
 */
import type { ChallengeSolver } from "./client.ts";
import type { HttpChallenges } from "./http-challenges.ts";

export function httpSolver(challenges: HttpChallenges): ChallengeSolver {
  return {
    type: "http-01",
    present: (c) => challenges.add(c.token, c.keyAuthorization),
    cleanUp: (c) => challenges.remove(c.token),
  };
}
