/**
 * What isched's two listeners (the iSchedule endpoint, the console and API) ask of Bun.serve, through
 * Elysia's `listen`: never share the port with another process (Elysia's default is to share; ports
 * are checked before anything is written, src/server/ports.ts), leave body sizes to the capped reader
 * so that every refusal is a precise answer (read-body.ts), and no development error pages.
 */
import { UNCAPPED_AT_LISTENER } from "./read-body.ts";

export interface ListenAt {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Seconds a connection may stay idle. */
  readonly idleTimeoutS: number;
}

export function listenOptions(at: ListenAt) {
  return {
    hostname: at.host,
    port: at.port,
    tls: at.tls ? { cert: at.tls.cert, key: at.tls.key } : undefined,
    reusePort: false,
    maxRequestBodySize: UNCAPPED_AT_LISTENER,
    development: false,
    idleTimeout: at.idleTimeoutS,
  };
}
