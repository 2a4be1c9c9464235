/** isched's schema on PostgreSQL, for several nodes on one database: its migrations and the migrator. */
export * from "./migrate.ts";
export * from "./migrations.ts";
