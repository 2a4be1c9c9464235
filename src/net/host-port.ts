/**
 * A host and a port, as isched listens on them and reaches DNS servers and peers, and the
 * `HOST:PORT` syntax flags give them in. Each parser throws an Error that says what is wrong.
 */

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST:PORT`, `[v6]:PORT`, or `:PORT` (host defaults to `defaultHost`). */
export function parseHostPort(raw: string, defaultHost = "127.0.0.1"): HostPort {
  return parseHostPortWith(raw, defaultHost, 1);
}

/** For a listening address: port 0 asks the system for a free port (printed at start-up). */
export const parseListenAddress = (raw: string): HostPort => parseHostPortWith(raw, "127.0.0.1", 0);

function parseHostPortWith(raw: string, defaultHost: string, minPort: number): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) throw new Error(`"${raw}" is not HOST:PORT`);
  const port = Number(m[3]);
  if (port < minPort || port > 65535) throw new Error(`port ${m[3]} is outside ${minPort}..65535`);
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? defaultHost : host, port };
}

/** `HOST:PORT`, or `HOST` alone with `defaultPort`. */
export function parseHostOptionalPort(raw: string, defaultPort: number): HostPort {
  if (/:\d+$/.test(raw) && !/^[0-9a-fA-F:]+$/.test(raw)) return parseHostPort(raw);
  if (/^\[.*\]:\d+$/.test(raw)) return parseHostPort(raw);
  const host = raw.replace(/^\[(.*)\]$/, "$1").trim();
  if (host === "") throw new Error(`"${raw}" is not a host name or address`);
  return { host, port: defaultPort };
}
