/**
 * One gateway per port. Every listener isched opens refuses to share its port (no SO_REUSEPORT:
 * with it, a second `isched serve` on the same ports would start and the kernel would split the
 * connections between the two). And before anything is written (the data folder, a DKIM key), each
 * address is tried once, so that a second isched stops with one line saying which address is taken.
 */
import { createServer } from "node:net";

/** An address isched cannot listen on; the command line reports it with exit code 1. */
export class ListenError extends Error {
  override readonly name = "ListenError";
}

export interface ListenAddress {
  /** The flag that set it, for the message. */
  readonly flag: string;
  readonly host: string;
  readonly port: number;
}

const hostForText = (host: string) => (host.includes(":") ? `[${host}]` : host);

/** The one-line refusal for an address that cannot be listened on. */
export function listenError(a: ListenAddress, e: unknown): ListenError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const where = `${a.flag} ${hostForText(a.host)}:${a.port}`;
  if (code === "EADDRINUSE")
    return new ListenError(`${where}: the address is in use (is another isched or server running there?)`);
  if (code === "EACCES")
    return new ListenError(`${where}: permission denied (ports below 1024 need privileges)`);
  if (code === "EADDRNOTAVAIL") return new ListenError(`${where}: no such address on this machine`);
  return new ListenError(`${where}: cannot listen (${code ?? (e as Error)?.message ?? String(e)})`);
}

const WILDCARD = new Set(["0.0.0.0", "::", ""]);

/**
 * Tries each address (port 0, "any free port", needs no try); throws ListenError for the first one
 * that is taken, or that two of isched's own listeners would share.
 */
export async function checkAddressesFree(addresses: readonly ListenAddress[]): Promise<void> {
  for (const [i, a] of addresses.entries()) {
    if (a.port === 0) continue;
    const twin = addresses
      .slice(0, i)
      .find((b) => b.port === a.port && (b.host === a.host || WILDCARD.has(a.host) || WILDCARD.has(b.host)));
    if (twin)
      throw new ListenError(
        `${a.flag} ${hostForText(a.host)}:${a.port}: the same port as ${twin.flag} ${hostForText(twin.host)}:${twin.port}`,
      );
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once("error", (e) => reject(listenError(a, e)));
      server.listen({ host: a.host, port: a.port, exclusive: true }, () => server.close(() => resolve()));
    });
  }
}
