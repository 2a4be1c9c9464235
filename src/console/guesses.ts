/**
 * Guesses at the console's secrets (the password, the setup token) under the attempt throttle
 * (src/net/attempt-throttle.ts): a guess is checked only under a reservation of the client's
 * address, taken before anything is checked, so guesses sent in parallel wait their turn; a client
 * that must wait is answered 429 with Retry-After.
 */
import type { AttemptThrottle, Refusal, Reservation } from "../net/attempt-throttle.ts";
import { type Guess, json } from "./http.ts";

/** 429 with Retry-After: the client may try again after that many seconds. */
export function throttled(r: Refusal): Response {
  const seconds = Math.ceil(r.waitMs / 1000);
  const who = r.scope === "address" ? "your address" : "all addresses together";
  return json(
    429,
    { error: `too many failed attempts from ${who}: wait ${seconds} s`, retryAfterSeconds: seconds },
    { "Retry-After": String(seconds) },
  );
}

/** A reservation held for a whole request: a failure unless `succeeded()` was called; settled once. */
export interface HeldGuess extends Guess {
  settle(): void;
}

export function holdGuess(reservation: Reservation): HeldGuess {
  let outcome: "success" | "failure" = "failure";
  let settled = false;
  return {
    succeeded() {
      outcome = "success";
    },
    settle() {
      if (settled) return;
      settled = true;
      reservation.settle(outcome);
    },
  };
}

type Outcome = "success" | "failure";

/**
 * Checks one guess made inside a route (the current password when changing it) under a reservation
 * taken before anything is checked; 429 when the address, or everyone, must wait. Whatever `check`
 * throws counts as a failure.
 */
export async function guess<T extends Response | undefined>(
  throttle: AttemptThrottle,
  address: string,
  check: () => Promise<[T, Outcome]>,
): Promise<T | Response> {
  const reservation = throttle.reserve(address);
  if (!reservation.ok) return throttled(reservation);
  let outcome: Outcome = "failure";
  try {
    const [response, result] = await check();
    outcome = result;
    return response;
  } finally {
    reservation.settle(outcome);
  }
}
