/** The `postgres` package (postgres.js, by porsager) for scripts/bench/pg-drivers.ts. */
import postgres from "postgres";
import type { OpenDriver } from "./_pg-driver.ts";
import { type TaggedClient, taggedDriver } from "./_pg-tagged.ts";

export const open: OpenDriver = (url, o) => {
  const sql = postgres(url, { max: o.max, onnotice: () => {} });
  return taggedDriver("postgres", sql as unknown as TaggedClient, () => sql.end({ timeout: 1 }));
};
