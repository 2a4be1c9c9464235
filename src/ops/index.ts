/**
 * Operating isched: /healthz and /readyz, systemd's notifications, reloading files on SIGHUP, and a
 * shutdown within a bound. Each part takes what it looks at as functions (probes, appliers, steps),
 * so the server wires them in a few lines.
 */
export * from "./drain.ts";
export * from "./health-checks.ts";
export * from "./reload-plan.ts";
export * from "./reloader.ts";
export * from "./sd-notify.ts";
