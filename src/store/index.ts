/** The SQLite store: opening and migrating the database, and the typed queries on its tables. */
export * from "./attempts.ts";
export * from "./data-lock.ts";
export * from "./database.ts";
export * from "./deliveries.ts";
export * from "./errors.ts";
export * from "./messages.ts";
export * from "./migrations.ts";
