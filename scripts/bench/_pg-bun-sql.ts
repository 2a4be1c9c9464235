/** Bun's built-in PostgreSQL client (`Bun.SQL`) for scripts/bench/pg-drivers.ts. */
import { SQL } from "bun";
import type { OpenDriver } from "./_pg-driver.ts";
import { type TaggedClient, taggedDriver } from "./_pg-tagged.ts";

export const open: OpenDriver = (url, o) => {
  const sql = new SQL({ url, max: o.max });
  return taggedDriver("Bun.SQL", sql as unknown as TaggedClient, () => sql.close({ timeout: 1 }));
};
