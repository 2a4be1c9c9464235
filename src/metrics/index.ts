/** Prometheus metrics: the registry and exposition format, isched's metrics, who may read them. */
export * from "./access.ts";
export * from "./isched-metrics.ts";
export * from "./registry.ts";
