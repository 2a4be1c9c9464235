/**
 * --database and --node-id: where `isched serve` keeps what several nodes share, and the name this
 * node leases deliveries and records its heartbeat under. Without --database the store is SQLite in
 * the data folder, as it always was; with it, PostgreSQL (src/store/postgres), which several nodes
 * may share. Each parser throws an Error that says what is wrong without repeating a password.
 */
import { redactSecrets } from "../text/redact.ts";

/** A PostgreSQL connection URL, checked for its form only (reaching the server is start-up's job). */
export function parseDatabaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`"${redactSecrets(raw)}" is not a URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:")
    throw new Error(
      `${url.protocol}// is not a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE); without --database isched keeps its database in --data`,
    );
  if (url.hostname === "") throw new Error(`"${redactSecrets(raw)}" names no host`);
  if (url.pathname.length <= 1) throw new Error(`"${redactSecrets(raw)}" names no database (…/DATABASE)`);
  return raw;
}

/**
 * A node's name: what its leases carry (`NODE:PID`) and its row in the nodes table. Letters,
 * digits, dot, dash and underscore, as a host name has; no colon, which separates the process id.
 */
export function parseNodeId(raw: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(raw))
    throw new Error(
      `"${raw}" is not a node name (1-63 letters, digits, '.', '-' or '_', starting with a letter or digit)`,
    );
  return raw;
}
