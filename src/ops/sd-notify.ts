/**
 * systemd's readiness protocol (sd_notify(3), "Type=notify"), without libsystemd: one datagram of
 * newline-separated `VARIABLE=value` assignments to the AF_UNIX SOCK_DGRAM socket named by
 * $NOTIFY_SOCKET, a path, or an abstract socket when it starts with `@` (the `@` stands for the
 * leading NUL byte, unix(7)).
 *
 * Bun has no Unix datagram sockets (Bun.udpSocket and node:dgram are UDP only; Bun.connect's `unix`
 * is a stream socket, which a datagram socket refuses), so the three libc calls go through bun:ffi:
 * socket(2), sendto(2) and close(2). bun:ffi is part of the runtime, so this works in the
 * executable `bun build --compile` makes as well (test/ops/sd-notify.test.ts sends from one).
 * Linux only: elsewhere $NOTIFY_SOCKET is not set and nothing is sent.
 *
 * As libsystemd does, a notification that cannot be sent is not an error of the program: the
 * result says why, once, and the server logs it.
 */
import { dlopen, FFIType, read } from "bun:ffi";
import { constants } from "node:os";

/** sockaddr_un: sa_family_t (2 bytes) and sun_path[108] on Linux. */
const SUN_PATH_BYTES = 108;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** sendto's flag: a peer that went away is an EPIPE, not a SIGPIPE that kills the process. */
const MSG_NOSIGNAL = 0x4000;

export type NotifyResult = { readonly sent: true } | { readonly sent: false; readonly reason: string };

/** The address of $NOTIFY_SOCKET as sockaddr_un bytes, or why it is not one. */
export function socketAddress(name: string): Uint8Array | string {
  const abstract = name.startsWith("@");
  if (!abstract && !name.startsWith("/"))
    return `NOTIFY_SOCKET=${name} is neither an absolute path nor @abstract`;
  const path = new TextEncoder().encode(abstract ? name.slice(1) : name);
  // A path needs its terminating NUL inside sun_path; an abstract name has the leading NUL instead.
  if (path.length + 1 > SUN_PATH_BYTES) return `NOTIFY_SOCKET is longer than ${SUN_PATH_BYTES - 1} bytes`;
  const address = new Uint8Array(2 + 1 + path.length);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(path, abstract ? 3 : 2);
  return address;
}

/**
 * The datagram for `fields`: `KEY=value` lines. A value cannot hold a newline (it would start
 * another assignment): newlines become spaces. Keys are upper-case letters, digits and `_`.
 */
export function notification(fields: Readonly<Record<string, string | number>>): string {
  return Object.entries(fields)
    .map(([k, v]) => {
      if (!/^[A-Z][A-Z0-9_]*$/.test(k)) throw new TypeError(`"${k}" is not a notification variable`);
      return `${k}=${String(v).replace(/[\r\n]+/g, " ")}`;
    })
    .join("\n");
}

/**
 * How often to send WATCHDOG=1: half of $WATCHDOG_USEC (sd_watchdog_enabled(3)), when the watchdog
 * is meant for this process ($WATCHDOG_PID unset or ours); undefined otherwise.
 */
export function watchdogIntervalMs(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, addrlen: number): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | string | undefined;

/** ECONNREFUSED rather than 111. */
function errnoName(n: number): string {
  return Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
}

function loadLibc(): Libc | string {
  libc ??= openLibc();
  return libc;
}

function openLibc(): Libc | string {
  if (process.platform !== "linux") return "sd_notify is for Linux";
  const symbols = {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sendto: {
      args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
      returns: FFIType.i64_fast,
    },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  } as const;
  let problem = "";
  // glibc names it libc.so.6; musl's loader answers to libc.so.
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      const { symbols: s } = dlopen(name, symbols);
      return {
        socket: (d, t, p) => s.socket(d, t, p),
        sendto: (fd, buf, len, flags, addr, addrlen) => Number(s.sendto(fd, buf, len, flags, addr, addrlen)),
        close: (fd) => s.close(fd),
        errno: () => {
          const at = s.__errno_location();
          return at === null ? 0 : read.i32(at, 0);
        },
      };
    } catch (e) {
      problem = e instanceof Error ? e.message : String(e);
    }
  }
  return `cannot load libc for sd_notify: ${problem}`;
}

/** Sends one notification to `socket` (the value of $NOTIFY_SOCKET). */
export function sendNotification(
  socket: string,
  fields: Readonly<Record<string, string | number>>,
): NotifyResult {
  const address = socketAddress(socket);
  if (typeof address === "string") return { sent: false, reason: address };
  const c = loadLibc();
  if (typeof c === "string") return { sent: false, reason: c };
  const message = new TextEncoder().encode(notification(fields));
  const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return { sent: false, reason: `socket() failed: ${errnoName(c.errno())}` };
  try {
    const sent = c.sendto(fd, message, message.length, MSG_NOSIGNAL, address, address.length);
    if (sent < 0) return { sent: false, reason: `sendto ${socket} failed: ${errnoName(c.errno())}` };
    if (sent !== message.length)
      return { sent: false, reason: `sendto ${socket} sent ${sent} of ${message.length} bytes` };
    return { sent: true };
  } finally {
    c.close(fd);
  }
}

export interface Notifier {
  /** $NOTIFY_SOCKET is set: systemd (or another supervisor) listens. */
  readonly enabled: boolean;
  /** Start-up is done: systemd starts what waits for isched, and `systemctl start` returns. */
  ready(status?: string): NotifyResult;
  /** A line for `systemctl status`. */
  status(text: string): NotifyResult;
  /** Shutdown has begun (SIGTERM): the drain that follows is expected. */
  stopping(status?: string): NotifyResult;
  /** A reload (SIGHUP) has begun; ready() again when it is done. */
  reloading(status?: string): NotifyResult;
  /** A long step (a migration, the drain) needs this much more time than TimeoutStartSec/StopSec. */
  extendTimeout(ms: number): NotifyResult;
  /** Alive, for WatchdogSec=: send every watchdogIntervalMs. */
  watchdog(): NotifyResult;
  /** Half the watchdog timeout, when systemd expects WATCHDOG=1 from this process. */
  readonly watchdogIntervalMs: number | undefined;
}

export function createNotifier(
  o: {
    env?: Readonly<Record<string, string | undefined>>;
    pid?: number;
    /** CLOCK_MONOTONIC in microseconds, for RELOADING=1 (systemd reads MONOTONIC_USEC with it). */
    monotonicUs?: () => bigint;
    send?: (socket: string, fields: Readonly<Record<string, string | number>>) => NotifyResult;
  } = {},
): Notifier {
  const env = o.env ?? process.env;
  const socket = env.NOTIFY_SOCKET;
  const send = o.send ?? sendNotification;
  const monotonic = o.monotonicUs ?? (() => process.hrtime.bigint() / 1000n);
  const notify = (fields: Record<string, string | number>): NotifyResult =>
    socket === undefined || socket === ""
      ? { sent: false, reason: "NOTIFY_SOCKET is not set" }
      : send(socket, fields);
  const withStatus = (fields: Record<string, string | number>, status?: string) =>
    notify(status === undefined ? fields : { ...fields, STATUS: status });
  return {
    enabled: socket !== undefined && socket !== "",
    ready: (status) => withStatus({ READY: 1, MAINPID: o.pid ?? process.pid }, status),
    status: (text) => notify({ STATUS: text }),
    stopping: (status) => withStatus({ STOPPING: 1 }, status),
    reloading: (status) => withStatus({ RELOADING: 1, MONOTONIC_USEC: monotonic().toString() }, status),
    extendTimeout: (ms) => notify({ EXTEND_TIMEOUT_USEC: Math.ceil(ms * 1000) }),
    watchdog: () => notify({ WATCHDOG: 1 }),
    watchdogIntervalMs: watchdogIntervalMs(env, o.pid ?? process.pid),
  };
}
