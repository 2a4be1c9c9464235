/**
 * The backends the store contract runs on: test/support/store-backends.ts, the helper the queue,
 * intake, delivery and console suites share. `contract(title, cases)` declares the cases once per
 * backend.
 */
export { onBothBackends as contract, type StoreBackend } from "../../support/store-backends.ts";
