/** isched on PostgreSQL, for several nodes on one database: its migrations, the migrator, the store. */
export * from "./migrate.ts";
export * from "./migrations.ts";
export * from "./store.ts";
