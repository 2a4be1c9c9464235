/** The durable delivery queue and its retry policy. */
export * from "./queue.ts";
export * from "./retry-policy.ts";
